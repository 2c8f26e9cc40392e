//! brig-jail: the trusted core. Opens the grants, compiles the filters, clones the prison, builds
//! its view, locks it down, execs the program, and supervises it. `launch::run` is the entry.
#![forbid(unsafe_code)]

mod ask;
pub mod broker;
pub mod caps;
mod degrade;
mod dns;
pub mod doctor;
mod egress;
pub mod error;
pub mod exec;
pub mod explain;
pub mod grants;
pub mod group;
mod idmap;
mod inside;
pub mod landlock;
pub mod launch;
pub mod limits;
mod msg;
pub mod namespaces;
mod observe;
pub mod oci_cgroup;
pub mod report;
mod screen;
pub mod seccomp;
mod supervise;
mod terminal;

pub use error::JailError;
pub use launch::run;
pub use report::Report;
