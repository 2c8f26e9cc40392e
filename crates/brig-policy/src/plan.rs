//! The immutable `Plan`: everything the runner will do, decided before any syscall.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// unveil-style rights on a granted path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Rights {
    /// read files, list directories
    pub read: bool,
    /// write and truncate existing files
    pub write: bool,
    /// execute files
    pub exec: bool,
    /// create, rename and remove entries (directories only)
    pub create: bool,
}

impl Rights {
    pub const R: Rights = Rights { read: true, write: false, exec: false, create: false };
    pub const RX: Rights = Rights { read: true, write: false, exec: true, create: false };
    pub const RWC: Rights = Rights { read: true, write: true, exec: false, create: true };
    pub const RWXC: Rights = Rights { read: true, write: true, exec: true, create: true };

    /// Parses "r", "rw", "rwc", "rx", "rwxc"... Letters may come in any order, each at most once.
    pub fn parse(s: &str) -> Result<Rights, crate::Problem> {
        const HINT: &str = "use letters from r, w, x, c (e.g. \"r\" or \"rwc\")";
        let mut r = Rights::default();
        if s.is_empty() {
            return Err(crate::Problem::new("no rights given", HINT));
        }
        for ch in s.chars() {
            let slot = match ch {
                'r' => &mut r.read,
                'w' => &mut r.write,
                'x' => &mut r.exec,
                'c' => &mut r.create,
                other => {
                    let other = other.escape_debug();
                    return Err(crate::Problem::new(
                        format!("unknown right `{other}` in {s:?}"),
                        HINT,
                    ));
                }
            };
            if *slot {
                return Err(crate::Problem::new(
                    format!("right `{ch}` given twice in {s:?}"),
                    "give each letter once (e.g. \"rwc\")",
                ));
            }
            *slot = true;
        }
        Ok(r)
    }

    /// True if the mount for this grant must be read-only.
    pub fn read_only(self) -> bool {
        !self.write && !self.create
    }
}

impl std::fmt::Display for Rights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (on, ch) in [(self.read, 'r'), (self.write, 'w'), (self.exec, 'x'), (self.create, 'c')]
        {
            if on {
                write!(f, "{ch}")?;
            }
        }
        Ok(())
    }
}

/// A host path made visible inside the prison at `dest` with `rights`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Absolute host path, as the user wrote it made absolute (symlinks are resolved by the runner).
    pub source: PathBuf,
    /// Absolute path inside the prison.
    pub dest: PathBuf,
    pub rights: Rights,
    /// Where the grant came from, for messages: `--rw` or `manifest.toml:7`.
    pub origin: String,
}

/// Resource limits. `None` means "not limited by brig" (the caller's own limit stays).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub wall: Option<Duration>,
    pub cpu: Option<Duration>,
    /// bytes of memory (address space as rlimit, memory cgroup where usable)
    pub mem: Option<u64>,
    /// processes (threads included) the prison may have
    pub procs: u64,
    /// largest file the program may write, bytes
    pub fsize: Option<u64>,
    /// open files per process
    pub nofile: u64,
    /// size of the private /tmp, bytes
    pub tmp_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall: None,
            cpu: None,
            mem: None,
            procs: DEFAULT_PROCS,
            fsize: None,
            nofile: DEFAULT_NOFILE,
            tmp_size: DEFAULT_TMP_SIZE,
        }
    }
}

/// Processes and threads (the kernel counts both). Large enough for a JVM or a browser with
/// 1,000+ threads three times over; small enough that a fork bomb stops long before the host
/// notices (4096 tasks hold about 64 MiB of kernel stacks).
pub const DEFAULT_PROCS: u64 = 4096;
pub const DEFAULT_NOFILE: u64 = 1024;
pub const DEFAULT_TMP_SIZE: u64 = 256 << 20;

/// Changes to the default seccomp deny-list, by group (`@debug`) or syscall name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyscallChanges {
    /// removed from the deny-list (each one is a loosening and is warned about)
    pub allow: Vec<String>,
    /// added to the deny-list
    pub deny: Vec<String>,
    /// when not empty, an allow-list: every other syscall is refused (exec aside)
    pub only: Vec<String>,
}

/// Everything brig will do for one run, fixed before the first syscall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// argv; argv[0] is resolved inside the prison with PATH.
    pub command: Vec<String>,
    pub grants: Vec<Grant>,
    /// Mount the OS runtime read+exec (`--no-system` turns it off).
    pub system: bool,
    /// Extra private tmpfs mounts (inside paths).
    pub tmpfs: Vec<PathBuf>,
    /// The tmpfs mounts (of `tmpfs`, and `/tmp`) from which programs may be executed.
    pub tmpfs_exec: Vec<PathBuf>,
    /// The working directory asked for (`--chdir`, `[program] chdir`).
    pub chdir: Option<PathBuf>,
    /// Without one: the caller's directory at its place inside, when a grant makes it visible
    /// (the program starts in `/` if it cannot enter it).
    pub start_dir: Option<PathBuf>,
    /// The program's whole environment, in order.
    pub env: Vec<(String, String)>,
    pub limits: Limits,
    pub syscalls: SyscallChanges,
    pub best_effort: bool,
    /// Named capabilities, with their fd numbers (see [`crate::caps`]).
    pub caps: Vec<crate::caps::Cap>,
    /// Where the description of the capabilities goes; `None` when there are no capabilities
    /// and no `[app]`.
    pub description_fd: Option<i32>,
    /// The `[app]` table as JSON, every `{ cap = "NAME" }` replaced by NAME's fd.
    pub app: Option<String>,
    /// Capability mode from exec on: the program acts only through the fds it holds.
    pub capability_mode: bool,
    /// Whether the program gets a pseudo-terminal of its own.
    pub pty: Pty,
    /// `--explain`: each refusal said as it happens, with the layer and the flag that grants it.
    pub explain: bool,
    /// `--ask`: on a refused open, ask the user on brig's terminal, waiting this long.
    pub ask: Option<Duration>,
    /// `--egress`: host names (and ports) the broker connects the prison to.
    pub egress: Vec<crate::egress::Egress>,
    /// `brig learn`: the broker keeps every path the program names (not from flags or manifests).
    pub learn: bool,
    /// An fd brig inherited, to which the supervisor writes one byte when the program is about
    /// to be executed (a group's readiness signal; `--ready-fd`, set by the group supervisor).
    pub ready_fd: Option<i32>,
    /// Set no_new_privs: always in brig's own runs; OCI as `process.noNewPrivileges` says.
    pub no_new_privs: bool,
    /// What an OCI config asks beyond brig's own flags (brig-oci only; empty for `brig run`).
    pub oci: OciPlan,
}

/// The OCI part of a Plan: set by brig-oci from a bundle's `config.json`; its `Default` is
/// `brig run`'s (none of it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OciPlan {
    /// OCI (`root`): a host directory that becomes the prison's root instead of brig's own
    /// tmpfs; brig's /proc, /dev and the other entries are mounted on it, their mountpoints
    /// made there when missing (never through a symlink). Set by brig-oci only.
    pub rootfs: Option<RootFs>,
    /// OCI (`process.user`): the uid and gid the program has inside its user namespace, mapped
    /// to the prison's host ids; without it they are the host ids themselves.
    pub inside_ids: Option<(u32, u32)>,
    /// OCI (`hostname`): the prison's host name; "brig" otherwise.
    pub hostname: Option<String>,
    /// OCI (`linux.maskedPaths`): inside paths under /proc covered by an empty read-only file
    /// or directory (brig's view has no /sys at all).
    pub masked_paths: Vec<PathBuf>,
    /// OCI (`linux.readonlyPaths`): inside paths under /proc made read-only.
    pub readonly_paths: Vec<PathBuf>,
    /// OCI `create` (set by brig-oci only): see [`Gate`].
    pub gate: Option<Gate>,
    /// OCI `process.rlimits`: (resource, soft, hard), set as given in place of brig's own for
    /// the same resource.
    pub rlimits: Vec<(u32, u64, u64)>,
    /// OCI `process.capabilities`: the sets the program keeps in its user namespace. `None`
    /// (brig's own runs): every set empty and the securebits locked.
    pub capabilities: Option<CapSets>,
    /// OCI `linux.seccomp`: compiled into a filter of its own, installed after brig's deny-list
    /// (the kernel applies both: the stricter answer wins).
    pub seccomp_profile: Option<SeccompProfile>,
    /// OCI `mounts`, in the config's order: the view is mounted in that order (a mount brig
    /// makes anyway sits at its place in the list), and filesystems brig makes carry the
    /// config's source name.
    pub mounts: Vec<OciMount>,
    /// OCI `process.user.umask`: the program's umask (brig's own runs inherit the caller's).
    pub umask: Option<u32>,
    /// OCI `process.oomScoreAdj`: set on pid 1, which the program inherits.
    pub oom_score_adj: Option<i32>,
    /// OCI `linux.sysctl`: (name, value) written under the prison's own /proc/sys before
    /// anything runs there; brig-oci accepts only names of the prison's own namespaces.
    pub sysctl: Vec<(String, String)>,
    /// OCI `linux.cgroupsPath` and `linux.resources`: a cgroup of every v1 controller (and of
    /// v2 for hugetlb on a hybrid layout) the runner (root) makes, fills and puts pid 1 in
    /// before it goes on.
    pub cgroup: Option<CgroupSpec>,
    /// OCI root runs: the user namespace's maps, the config's own (`linux.uidMappings`) or a
    /// range of brig's, instead of brig's one line to 65534.
    pub id_maps: Option<IdMaps>,
    /// OCI `process.user.additionalGids` (with `id_maps` only): the supplementary groups.
    pub groups: Vec<u32>,
    /// OCI `linux.devices`: (host node brig-oci made, inside path), bound without nodev.
    pub devices: Vec<(PathBuf, PathBuf)>,
    /// OCI `process.terminal` with `--console-socket`: an inherited fd (a connected unix
    /// socket) the launch takes ownership of; the prison's terminal master goes there
    /// (SCM_RIGHTS) instead of brig's relay.
    pub console_fd: Option<i32>,
    /// OCI `linux.namespaces` with a `path` (a Kubernetes pod's network, IPC and UTS): the
    /// runner joins them before it clones pid 1, which then makes no namespace of that type.
    pub joined: Vec<(JoinedNs, PathBuf)>,
    /// OCI: TCP bind and connect are the container's network namespace's to decide (the
    /// engine's network, a pod's, or loopback only), as the config asks, rather than refused
    /// by Landlock; brig's own runs reach TCP only through capabilities and `--egress`.
    pub tcp: bool,
}

/// A namespace type a prison may join rather than make (its user, mount, pid and cgroup
/// namespaces are always brig's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinedNs {
    Net,
    Ipc,
    Uts,
}

/// User-namespace maps: (inside id, host id, count) lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMaps {
    pub uid: Vec<(u32, u32, u32)>,
    pub gid: Vec<(u32, u32, u32)>,
    /// The inside destinations of the mounts id-mapped with these maps, so files keep their
    /// owners inside: with brig's range (a root run's) the root; and any bind the config asks
    /// to id-map (mount option `idmap` or `ridmap`). An engine's own maps come with a root the
    /// engine made theirs, which is not id-mapped.
    pub map_mounts: Vec<PathBuf>,
}

impl Plan {
    /// Whether a host directory is bound writable and id-mapped (see [`IdMaps::map_mounts`]):
    /// what the container writes there lands with host owners, host root's included.
    pub fn id_maps_writable_binds(&self) -> bool {
        let Some(m) = &self.oci.id_maps else { return false };
        self.grants.iter().any(|g| {
            (g.rights.write || g.rights.create)
                && g.dest != Path::new("/")
                && m.map_mounts.contains(&g.dest)
        })
    }
}

impl IdMaps {
    /// The host id an inside id maps to.
    pub fn host(lines: &[(u32, u32, u32)], inside: u32) -> Option<u32> {
        lines
            .iter()
            .find(|(i, _, n)| inside >= *i && inside - i < *n)
            .map(|(i, h, _)| h + (inside - i))
    }
}

/// An OCI container's cgroup (cgroup v1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupSpec {
    /// Absolute: below each controller's mount; relative: below the runner's own cgroup.
    pub path: PathBuf,
    /// (controller, file, value), written in this order; a file the kernel lacks is an error.
    pub writes: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciMount {
    pub dest: PathBuf,
    /// Shown as the mount's source in mountinfo.
    pub source: String,
    pub fs: OciFs,
}

/// What an OCI mount is, for brig-jail: most are brig's own view entries (made from the Plan's
/// grants and tmpfs, or always there); sysfs and mqueue exist only when a config asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OciFs {
    View,
    /// Read-only sysfs of the container's network namespace.
    Sysfs,
    /// The POSIX message queues of the container's IPC namespace.
    Mqueue,
}

/// An OCI seccomp profile, as brig-oci read it from `linux.seccomp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompProfile {
    pub default_action: SeccompAction,
    /// In the config's order; for one syscall, the first rule whose conditions hold decides.
    pub rules: Vec<SeccompRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompRule {
    /// x86_64 syscall names; names this kernel's table does not know are skipped (such numbers
    /// get ENOSYS from brig's own filter).
    pub names: Vec<String>,
    pub action: SeccompAction,
    /// All must hold.
    pub args: Vec<ArgCmp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeccompAction {
    Allow,
    Errno(u16),
    KillProcess,
    KillThread,
    Trap,
    Log,
}

/// `args[index] OP value` on the whole 64-bit argument; `MaskedEq`: `args[index] & value ==
/// value_two`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgCmp {
    pub index: u32,
    pub value: u64,
    pub value_two: u64,
    pub op: CmpOp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

/// Capability sets as bit masks (bit N = capability number N).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

/// OCI `create`: pid 1 is cloned as the runner's sibling (`CLONE_PARENT`: the caller of
/// `create` is its parent, and whoever adopts it then reaps it), parks once its setup is done
/// until a byte arrives on `fifo_fd` (`start`), and exits with the program's status. Both are
/// inherited fd numbers the launch takes ownership of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// The read side of the container's start fifo.
    pub fifo_fd: i32,
    /// Where the supervisor writes `P <pid>` once pid 1 is parked.
    pub created_fd: i32,
}

/// The prison's root from an OCI bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootFs {
    pub path: PathBuf,
    /// Mounted read-only once the view is built on it.
    pub readonly: bool,
}

impl Plan {
    /// Whether the prison gets brig's resolver and brokered `connect` (`--egress`, or `--ask`,
    /// which may allow a connection by name when asked).
    pub fn resolver(&self) -> bool {
        !self.egress.is_empty() || self.ask.is_some()
    }
}

/// `--pty`: when the program gets a pseudo-terminal of its own instead of the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pty {
    /// When stdin, stdout or stderr is a terminal (the default).
    #[default]
    Auto,
    /// Always, even when no stdio is a terminal (then the output is relayed to stdout).
    Always,
    /// Never: a terminal on stdio is handed to the program as it is (it can change the
    /// caller's terminal settings; warned about).
    Never,
}

impl Pty {
    /// Parses `auto`, `always` or `never`.
    pub fn parse(s: &str) -> Result<Pty, crate::Problem> {
        match s {
            "auto" => Ok(Pty::Auto),
            "always" => Ok(Pty::Always),
            "never" => Ok(Pty::Never),
            _ => Err(crate::Problem::new(
                format!("terminal mode {s:?} does not exist"),
                "use \"auto\" (a private terminal when stdio is one), \"always\" or \"never\"",
            )),
        }
    }
}
