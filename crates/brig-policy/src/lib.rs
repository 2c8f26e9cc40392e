//! brig-policy: flags and manifests become one immutable [`Plan`] before any syscall.
//!
//! Pure: no syscalls, no filesystem access, no environment reads. The caller passes the
//! manifest's text and the host context ([`Host`]); everything here is deterministic, never
//! panics on any input, and is fuzzed (`tests/fuzz_manifest.rs`).
//!
//! - [`plan`] — flags over an optional manifest → [`Plan`] (`brig run`);
//!   [`plan_for_check`] — a manifest alone (`brig check`).
//! - [`manifest`] — the TOML format; errors carry file, line, column and a fix.
//! - [`group`] — `[component.NAME]` groups joined by `[[channel]]`s.
//! - [`caps`] — named capabilities, their fd numbers, `[app]` rewriting.
//! - [`units`] — durations, sizes, counts.
//! - [`check`] — the authority a plan grants, in plain words, with warnings.
//! - [`system`] — the default view of the host system (runtime, `/etc` allow-list) as data.
#![forbid(unsafe_code)]

pub mod caps;
pub mod check;
pub mod egress;
mod error;
pub mod flags;
pub mod group;
pub mod manifest;
pub mod paths;
pub mod plan;
pub mod system;
pub mod units;

pub use error::{PolicyError, Pos, Problem};
pub use flags::{plan, plan_for_check, Flags, GrantFlag, Host};
pub use manifest::Manifest;
pub use plan::*;
