//! The one-way channel from inside the prison (pid 1 and the program before exec) to the
//! supervisor: fixed-size records on a pipe, each written with one `write` (atomic below
//! PIPE_BUF). The supervisor treats every record as untrusted input: kinds and steps outside the
//! known range are ignored, operands are indices into the supervisor's own view, never strings.

/// Named steps of the inside sequence, for error messages.
pub const STEPS: &[&str] = &[
    "wait for the runner",          // 0
    "set prison uid/gid",           // 1
    "cgroup namespace",             // 2
    "make mounts private",          // 3
    "root tmpfs",                   // 4
    "re-open grant",                // 5
    "grant changed since planning", // 6
    "mountpoint",                   // 7
    "bind mount",                   // 8
    "procfs",                       // 9
    "tmpfs",                        // 10
    "symlink",                      // 11
    "write file",                   // 12
    "read-only root",               // 13
    "pivot_root",                   // 14
    "hostname",                     // 15
    "loopback up",                  // 16
    "rlimit",                       // 17
    "drop capabilities",            // 18
    "no_new_privs",                 // 19
    "landlock",                     // 20
    "seccomp",                      // 21
    "fork program",                 // 22
    "setsid",                       // 23
    "chdir",                        // 24
    "exec",                         // 25
    "network namespace",            // 26
    "place capabilities",           // 27
    "capability mode",              // 28
    "directory capability",         // 29
    "broker hand-over",             // 30
    "session keyring",              // 31
    "blank pid 1's command line",   // 32
    "devpts",                       // 33
    "private terminal",             // 34
    "sysfs",                        // 35
    "mqueue",                       // 36
    "oom_score_adj",                // 37
    "sysctl",                       // 38
    "masked or read-only path",     // 39
];

pub const STEP_LANDLOCK: u32 = 20;
pub const STEP_SECCOMP: u32 = 21;
pub const STEP_CGROUP_NS: u32 = 2;
pub const STEP_CHDIR: u32 = 24;
pub const STEP_EXEC: u32 = 25;
pub const STEP_NET_NS: u32 = 26;
pub const STEP_PLACE_CAPS: u32 = 27;
pub const STEP_CAPMODE: u32 = 28;
pub const STEP_DIR_CAP: u32 = 29;
pub const STEP_BROKER: u32 = 30;
pub const STEP_KEYRING: u32 = 31;
pub const STEP_CMDLINE: u32 = 32;
pub const STEP_DEVPTS: u32 = 33;

/// The layer a step makes, for the steps `--best-effort` may skip.
pub fn layer_of(step: u32) -> Option<&'static str> {
    match step {
        STEP_LANDLOCK => Some("landlock"),
        STEP_SECCOMP => Some("seccomp"),
        STEP_CGROUP_NS => Some("cgroup namespace"),
        STEP_NET_NS => Some("network namespace"),
        _ => None,
    }
}

/// The steps that make a layer (see [`layer_of`]).
pub const LAYER_STEPS: [u32; 4] = [STEP_LANDLOCK, STEP_SECCOMP, STEP_CGROUP_NS, STEP_NET_NS];
pub const STEP_PTY: u32 = 34;
pub const STEP_SYSFS: u32 = 35;
pub const STEP_MQUEUE: u32 = 36;
pub const STEP_OOM: u32 = 37;
pub const STEP_SYSCTL: u32 = 38;
pub const STEP_MASK: u32 = 39;

/// A step failed: `errno`, and `operand` = index into the view (or u32::MAX).
pub const ERROR: u32 = 1;
/// A layer ran degraded under --best-effort: `step` names the layer, `errno` why.
pub const DEGRADED: u32 = 2;
/// The program is about to be exec'd: `value` = monotonic ns.
pub const PREEXEC: u32 = 3;
/// The program ended: `value` = its wait status.
pub const EXIT: u32 = 4;
/// pid 1 finished its setup: `value` = monotonic ns.
pub const READY: u32 = 5;
/// OCI create: pid 1 is set up and parked until `start` (`OciPlan::gate`).
pub const PARKED: u32 = 6;

pub const SIZE: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msg {
    pub kind: u32,
    pub step: u32,
    pub errno: i32,
    pub operand: u32,
    pub value: u64,
}

impl Msg {
    pub fn encode(&self) -> [u8; SIZE] {
        let mut b = [0u8; SIZE];
        b[0..4].copy_from_slice(&self.kind.to_le_bytes());
        b[4..8].copy_from_slice(&self.step.to_le_bytes());
        b[8..12].copy_from_slice(&self.errno.to_le_bytes());
        b[12..16].copy_from_slice(&self.operand.to_le_bytes());
        b[16..24].copy_from_slice(&self.value.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8; SIZE]) -> Msg {
        let u = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[16..24]);
        Msg {
            kind: u(0),
            step: u(4),
            errno: u(8) as i32,
            operand: u(12),
            value: u64::from_le_bytes(v),
        }
    }

    pub fn step_name(&self) -> &'static str {
        STEPS.get(self.step as usize).copied().unwrap_or("unknown step")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let m = Msg { kind: ERROR, step: 8, errno: -3, operand: 7, value: u64::MAX - 1 };
        assert_eq!(Msg::decode(&m.encode()), m);
        assert_eq!(m.step_name(), "bind mount");
        let bad = Msg { step: 999, ..m };
        assert_eq!(bad.step_name(), "unknown step");
    }
}
