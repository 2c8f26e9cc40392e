//! Errors of the launch, one variant per step, each carrying its operand.

use std::io;
use std::path::PathBuf;

/// Why brig refused to run or failed before the program ran (exit status 125).
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    #[error("grant {origin}: cannot open {path}: {source}")]
    OpenGrant { origin: String, path: PathBuf, source: io::Error },
    #[error("grant {origin}: {path} goes through a symlink, which brig refuses; grant the real path ({target}) instead")]
    GrantIsSymlink { origin: String, path: PathBuf, target: PathBuf },
    #[error("capability {name} ({origin}): {message}; {hint}")]
    Capability { name: String, origin: String, message: String, hint: String },
    #[error("system view: cannot read {path}: {source}")]
    SystemPath { path: PathBuf, source: io::Error },
    #[error("grant {origin}: the path is {path} (through root's symlinks), which is where it would be mounted, but {problem}; give it a destination of its own (PATH:DEST)")]
    ResolvedDest { origin: String, path: PathBuf, problem: String },
    #[error("{path} is granted twice (inside the prison)")]
    DuplicateDest { path: PathBuf },
    #[error("layer {layer} is required but unavailable: {why}; run with --best-effort to run without it")]
    LayerUnavailable { layer: &'static str, why: String },
    #[error("seccomp policy: {0}")]
    Seccomp(String),
    #[error("landlock ruleset: {0}")]
    Landlock(String),
    #[error("limits: {message}")]
    Limit { message: String },
    #[error("cgroup {path}: {source}")]
    Cgroup { path: PathBuf, source: io::Error },
    #[error("{step}: {source}")]
    Setup { step: &'static str, source: io::Error },
    #[error("inside the prison, step `{step}` failed for {operand}: {source}")]
    Child { step: &'static str, operand: String, source: io::Error },
}

impl JailError {
    pub fn setup(step: &'static str) -> impl FnOnce(io::Error) -> JailError {
        move |source| JailError::Setup { step, source }
    }
}
