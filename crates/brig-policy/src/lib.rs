//! brig-policy: flags and manifests become one immutable [`Plan`] before any syscall.
//!
//! Pure: no syscalls, no filesystem, no environment reads. The caller passes the manifest's text
//! and the host context ([`Host`]); everything here is deterministic and fuzzed.
#![forbid(unsafe_code)]

pub mod check;
mod error;
pub mod flags;
pub mod manifest;
mod paths;
mod plan;
pub mod units;

pub use error::PolicyError;
pub use flags::{plan, plan_for_check, Flags, GrantFlag, Host};
pub use plan::*;
