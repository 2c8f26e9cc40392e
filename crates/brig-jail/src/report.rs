//! The launch report: what each layer enforced, the limits and how, why the program ended.

use serde::Serialize;

/// State of one protection layer in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerState {
    Enforced,
    Degraded,
    Unavailable,
}

#[derive(Debug, Clone, Serialize)]
pub struct Layer {
    pub name: &'static str,
    pub state: LayerState,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LimitReport {
    pub name: &'static str,
    pub value: String,
    /// "rlimit", "cgroup v1", "cgroup v2", "supervisor", or several joined with " + "
    pub enforced_by: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Exit {
    /// "exited", "signaled", "wall", "cpu", "fsize", "memory", "not-found", "not-executable",
    /// "setup-failed", "inside-failed" (a step inside the prison, named in the message), "refused"
    pub cause: String,
    /// brig's own exit status
    pub status: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// Microseconds spent in each phase, measured by the supervisor (and by pid 1 inside).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Timings {
    pub grants_us: u64,
    pub compile_us: u64,
    pub clone_us: u64,
    pub inside_setup_us: u64,
    pub exec_us: u64,
    pub run_us: u64,
    pub total_us: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub brig_version: &'static str,
    pub command: Vec<String>,
    pub host_uid: u32,
    pub prison_uid: u32,
    pub layers: Vec<Layer>,
    pub limits: Vec<LimitReport>,
    /// The capabilities handed over, with a TCP listener's address as bound.
    pub capabilities: Vec<CapReport>,
    pub warnings: Vec<String>,
    /// Root runs: the writable grants id-mapped so that the prison's uid acts as their owner.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub id_mapped: Vec<String>,
    /// What the broker answered.
    pub broker: BrokerReport,
    /// Each refusal brig saw, once, with the layer and the fix (all of them with --explain;
    /// without it, seccomp's and exec's).
    pub refusals: Vec<crate::explain::Refusal>,
    /// `--ask`: what the user allowed "always", as manifest lines to keep it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_always: Vec<String>,
    /// `brig learn`: every path the run named, with what it asked (not in the JSON).
    #[serde(skip)]
    pub touched: Vec<(std::path::PathBuf, crate::explain::Touched)>,
    pub exit: Exit,
    /// How often a cgroup limit bit (absent when no cgroup counted them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hits: Option<Hits>,
    pub timings: Timings,
}

/// Limits that bit during the run, as their cgroups counted.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Hits {
    /// Processes the memory controller killed (out of memory).
    pub oom_kills: u64,
    /// Forks and new threads the pids controller refused.
    pub tasks_refused: u64,
}

/// The broker's answers during the run.
#[derive(Debug, Default, Clone, Serialize)]
pub struct BrokerReport {
    pub listen_allowed: u32,
    pub listen_refused: u32,
    pub memfd_made: u32,
    /// Calls refused (seccomp, or predicted by the view for an observed call).
    pub refused: u32,
    /// Opens the user allowed (`--ask`) and refused.
    pub asked_allowed: u32,
    pub asked_refused: u32,
    /// Connections made for the prison by host name (`--egress`).
    pub egress: u32,
    /// Calls observed and left to the kernel (exec; with --explain, paths and sockets).
    pub observed: u32,
}

/// One capability in the report.
#[derive(Debug, Clone, Serialize)]
pub struct CapReport {
    pub name: String,
    pub fd: i32,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl Report {
    pub fn layer(&mut self, name: &'static str, state: LayerState, detail: impl Into<String>) {
        self.layers.retain(|l| l.name != name);
        self.layers.push(Layer { name, state, detail: detail.into() });
    }
}
