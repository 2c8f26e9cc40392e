//! OCI `exec`: a new process in a running prison, under the same layers as its program. The
//! runner (E) stays on the host side: it prepares the Landlock ruleset and both seccomp
//! filters from the container's Plan, forks a helper (H) that joins pid 1's namespaces through
//! its pidfd and clones the new process (X) as E's own child (`CLONE_PARENT`), so the caller
//! reaps it; E moves X into pid 1's cgroups, says its pid, and lets it go. X locks itself down
//! as pid 1 did (ids, no_new_privs, Landlock, brig's deny-list then the config's profile, the
//! config's capabilities) and executes the program. It has no broker: a call brig's filter
//! would hand to the supervisor fails with ENOSYS instead (docs/oci.md "exec").

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use brig_policy::Plan;
use brig_sys::fs;
use brig_sys::process::{self, Forked};

use crate::error::JailError;
use crate::report::Report;

/// The namespaces X joins: all of pid 1's. Root joins in two steps: those a container may have
/// joined from outside (a pod's network, IPC and UTS) first, with its own credentials, since
/// once in pid 1's user namespace the kernel checks the rest with credentials of that
/// namespace, which have no say over a namespace it did not make. An unprivileged caller (whose
/// containers join nothing) needs those credentials for all of them: one step.
const JOIN_FIRST: i32 = libc::CLONE_NEWNET | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;
const JOIN: i32 =
    libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWCGROUP;

/// What the caller does once X exists: its host pid, before X may run (write the pid file).
pub type Started<'a> = &'a mut dyn FnMut(i32) -> io::Result<()>;

/// Runs `plan`'s process inside the prison whose pid 1 is behind `pidfd` (host pid `pid1`).
/// With `detach`, returns 0 once X runs (X stays the caller's child); otherwise waits for it
/// and returns its exit status (128 + signal). `console`: a connected socket that gets the
/// master of X's terminal (`plan.pty` always).
pub fn exec(
    plan: &Plan,
    pid1: i32,
    pidfd: OwnedFd,
    detach: bool,
    console: Option<OwnedFd>,
    started: Started<'_>,
) -> Result<i32, JailError> {
    let mut report = Report::default();
    let (host_uid, host_gid) = process::ids();
    // pid 1 is not dumpable and never executed, so its memory belongs to its creator's user
    // namespace: entering its namespaces through it takes CAP_SYS_PTRACE there, which root has
    // (of the host, or of the engine's user namespace a rootless engine runs brig-oci in). An
    // unprivileged caller enters through the program instead, which shares every namespace of
    // pid 1 and, once executed inside, belongs to the container's.
    let pidfd = match host_uid {
        0 => pidfd,
        _ => program_of(pid1)?,
    };
    let view = crate::grants::open_view(plan, host_uid, host_gid)?;
    let landlock = crate::launch::prepare_landlock(&view, &[], plan, &mut report)?;
    let filter = crate::launch::compile_seccomp(plan, &mut report)?.compile();
    let oci_filter = match &plan.oci.seccomp_profile {
        Some(p) => Some(crate::seccomp::oci::compile(p).map_err(JailError::Seccomp)?),
        None => None,
    };
    let (argv, envp, search) = crate::launch::exec_args(plan)?;
    // Only into a cgroup create made (host root): another caller made none and may move no one.
    let procs = match plan.oci.cgroup {
        Some(_) => cgroup_procs(pid1)?,
        None => Vec::new(),
    };
    // Decided here, on the host side: once X is in the container's mount namespace, its /proc
    // is the container's to shape.
    let keep_groups = crate::idmap::keep_groups(host_uid);
    let (in_uid, in_gid) = plan.oci.inside_ids.unwrap_or((0, 0));
    let chdir = plan.chdir.clone().unwrap_or_else(|| PathBuf::from("/"));
    let (pid_r, pid_w) = fs::pipe().map_err(JailError::setup("exec: pid pipe"))?;
    let (go_r, go_w) = fs::pipe().map_err(JailError::setup("exec: go pipe"))?;
    let (err_r, err_w) = fs::pipe().map_err(JailError::setup("exec: error pipe"))?;
    match process::fork().map_err(JailError::setup("exec: fork"))? {
        None => {
            // H: join, then clone X as E's child and say its host pid.
            drop((pid_r, go_w, err_r));
            // Checked here: once in the container's mount namespace, /proc is its own.
            let r = process::SingleThreaded::check().and_then(|one| {
                if host_uid == 0 {
                    process::setns(pidfd.as_fd(), JOIN_FIRST)?;
                    process::setns(pidfd.as_fd(), JOIN)?;
                } else {
                    process::setns(pidfd.as_fd(), JOIN_FIRST | JOIN)?;
                }
                process::clone_single(&one, libc::CLONE_PARENT, &[pid_w.as_fd()])
            });
            match r {
                Ok(Forked::Child) => {
                    let x = X {
                        landlock,
                        filter: &filter,
                        oci_filter: oci_filter.as_deref(),
                        plan,
                        argv: &argv,
                        envp: &envp,
                        search: &search,
                        chdir: &chdir,
                        ids: (in_uid, in_gid),
                        keep_groups,
                        console: console.as_ref().map(|c| c.as_fd()),
                        keep: err_w.as_fd(),
                    };
                    let name = argv.first().map(|a| a.to_string_lossy().into_owned());
                    let e = x.run(go_r.as_fd());
                    let what = format!("{}: {e}", name.unwrap_or_default());
                    let _ = fs::write(err_w.as_fd(), what.as_bytes());
                    process::exit_now(if e.raw_os_error() == Some(libc::ENOENT) {
                        127
                    } else {
                        126
                    })
                }
                Ok(Forked::Parent { pid, .. }) => {
                    let _ = fs::write(pid_w.as_fd(), &pid.to_le_bytes());
                    process::exit_now(0)
                }
                Err(e) => {
                    let _ = fs::write(err_w.as_fd(), format!("join the container: {e}").as_bytes());
                    process::exit_now(125)
                }
            }
        }
        Some(h) => {
            drop((pid_w, go_r, err_w, console));
            let _ = process::wait(h, false);
            let mut b = [0u8; 4];
            let x = match fs::read(pid_r.as_fd(), &mut b) {
                Ok(4) => i32::from_le_bytes(b),
                _ => return Err(exec_failed(&err_r, "the new process was not made")),
            };
            let go = procs
                .iter()
                .try_for_each(|f| std::fs::write(f, x.to_string()))
                .and_then(|()| started(x));
            if let Err(e) = go {
                let _ = process::kill(x, libc::SIGKILL);
                let _ = process::wait(x, false);
                return Err(JailError::Setup { step: "exec: join pid 1's cgroup", source: e });
            }
            let _ = fs::write(go_w.as_fd(), b"g");
            drop(go_w);
            // X's error pipe closes at its exec (close-on-exec): a message means it failed.
            let mut said = Vec::new();
            let mut buf = [0u8; 256];
            while let Ok(n @ 1..) = fs::read(err_r.as_fd(), &mut buf) {
                said.extend_from_slice(&buf[..n]);
            }
            if !said.is_empty() {
                let _ = process::wait(x, false);
                let what = String::from_utf8_lossy(&said).into_owned();
                return Err(JailError::Setup { step: "exec", source: io::Error::other(what) });
            }
            if detach {
                return Ok(0);
            }
            match process::wait(x, false) {
                Ok(Some((_, st))) => Ok(match process::Status::from_raw(st) {
                    process::Status::Exited(c) => c,
                    process::Status::Signaled(s) => 128 + s,
                }),
                _ => {
                    Err(JailError::Setup { step: "exec: wait", source: io::Error::last_os_error() })
                }
            }
        }
    }
}

fn exec_failed(err: &OwnedFd, what: &str) -> JailError {
    let mut buf = [0u8; 512];
    let n = fs::read(err.as_fd(), &mut buf).unwrap_or(0);
    let said = String::from_utf8_lossy(&buf[..n]).into_owned();
    let msg = if said.is_empty() { what.to_string() } else { format!("{what}: {said}") };
    JailError::Setup { step: "exec", source: io::Error::other(msg) }
}

/// A pidfd of the container's program: pid 1's oldest live child (orphans of the container
/// are reparented to pid 1 later than it), checked to be that same process once the pidfd holds
/// it, so a recycled pid is never taken.
fn program_of(pid1: i32) -> Result<OwnedFd, JailError> {
    let gone = || JailError::Setup {
        step: "exec",
        source: io::Error::other("the container's program has exited"),
    };
    // (pid, start time) of a live child of pid 1.
    let child = |pid: i32| -> Option<u64> {
        let f = process::stat_fields(pid)?;
        let live = !matches!(f.first().map(String::as_str), Some("Z" | "X" | "x"));
        (live && f.get(1)?.parse::<i32>().ok()? == pid1).then(|| f.get(19)?.parse().ok())?
    };
    let dir = std::fs::read_dir("/proc").map_err(JailError::setup("exec: list /proc"))?;
    let (pid, started) = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, child(pid)?)))
        .min_by_key(|&(_, started)| started)
        .ok_or_else(gone)?;
    let fd = process::pidfd_open(pid).map_err(|_| gone())?;
    match child(pid) == Some(started) {
        true => Ok(fd),
        false => Err(gone()),
    }
}

/// pid 1's cgroup.procs files of each v1 hierarchy where pid 1 is not in the caller's own
/// cgroup (the new process starts in the caller's; a caller that is not host root made no
/// cgroup, and may not move processes).
fn cgroup_procs(pid1: i32) -> Result<Vec<PathBuf>, JailError> {
    use crate::oci_cgroup::dirs_of;
    let theirs = dirs_of(pid1).map_err(JailError::setup("exec: read pid 1's cgroups"))?;
    let ours =
        dirs_of(std::process::id() as i32).map_err(JailError::setup("exec: read our cgroups"))?;
    let mut out = Vec::new();
    for (_, dir) in theirs.into_iter().filter(|t| !ours.contains(t)) {
        let f = dir.join("cgroup.procs");
        if !out.contains(&f) {
            out.push(f);
        }
    }
    Ok(out)
}

/// The new process, inside every namespace of pid 1.
struct X<'a> {
    landlock: Option<crate::landlock::Prepared>,
    filter: &'a [brig_sys::seccomp::SockFilter],
    oci_filter: Option<&'a [brig_sys::seccomp::SockFilter]>,
    plan: &'a Plan,
    argv: &'a [std::ffi::CString],
    envp: &'a [std::ffi::CString],
    search: &'a [PathBuf],
    chdir: &'a Path,
    ids: (u32, u32),
    /// Supplementary groups are kept: setgroups is denied in the prison's user namespace.
    keep_groups: bool,
    console: Option<BorrowedFd<'a>>,
    /// The error pipe (close-on-exec), the only fd besides 0-2 left open for the exec.
    keep: BorrowedFd<'a>,
}

impl X<'_> {
    /// Locks down and executes; returns only the error that stopped it.
    fn run(mut self, go: BorrowedFd<'_>) -> io::Error {
        match self.lock_down(go) {
            Ok(()) => crate::inside::exec_search(self.argv, self.search, self.envp),
            Err(e) => e,
        }
    }

    fn lock_down(&mut self, go: BorrowedFd<'_>) -> io::Result<()> {
        // Not dumpable from the start: no process of the container may trace or read us while
        // we still hold the runner's fds and capabilities.
        process::prctl(libc::PR_SET_DUMPABLE, 0)?;
        let mut b = [0u8; 1];
        if fs::read(go, &mut b)? != 1 {
            return Err(io::Error::other("the runner went away"));
        }
        process::setsid()?;
        if let Some(c) = self.console {
            let how = fs::resolve::NO_SYMLINKS | fs::resolve::NO_MAGICLINKS;
            let pts =
                fs::openat2(None, Path::new("/dev/pts"), libc::O_PATH | libc::O_DIRECTORY, 0, how)?;
            let (master, slave) = brig_sys::tty::open_pty(pts.as_fd())?;
            for n in 0..3 {
                brig_sys::fdpass::place_for_exec(slave.as_fd(), n)?;
            }
            brig_sys::tty::set_controlling(slave.as_fd())?;
            brig_sys::fdpass::send_fds(c, b'c', &[master.as_fd()])?;
        }
        process::prctl(libc::PR_SET_SECUREBITS, libc::SECBIT_NO_SETUID_FIXUP as u64)?;
        process::become_ids(self.ids.0, self.ids.1, self.keep_groups)?;
        if !self.plan.oci.groups.is_empty() {
            process::set_groups(&self.plan.oci.groups)?;
        }
        // As in the container: no CAP_SETFCAP where host directories are bound writable and
        // id-mapped.
        let caps = self.plan.oci.capabilities.unwrap_or_default();
        let caps = crate::launch::without_setfcap(caps, &mut Vec::new(), self.plan);
        if self.plan.oci.capabilities.is_none() {
            brig_sys::caps::drop_all()?;
        }
        if self.plan.no_new_privs {
            process::prctl(libc::PR_SET_NO_NEW_PRIVS, 1)?;
        }
        if let Some(ll) = self.landlock.take() {
            let enforced = ll.restrict(self.plan.no_new_privs).map_err(io::Error::other)?;
            if !enforced {
                return Err(io::Error::other("landlock: not fully enforced"));
            }
        }
        brig_sys::seccomp::install(self.filter)?;
        if let Some(f) = self.oci_filter {
            brig_sys::seccomp::install(f)?;
        }
        if self.plan.oci.capabilities.is_some() {
            brig_sys::caps::set(
                caps.bounding,
                caps.effective,
                caps.permitted,
                caps.inheritable,
                caps.ambient,
            )?;
        }
        for &(res, soft, hard) in &self.plan.oci.rlimits {
            process::setrlimit(res, soft, hard)?;
        }
        if let Some(m) = self.plan.oci.umask {
            process::umask(m);
        }
        fs::chdir(self.chdir)?;
        process::default_signals()?;
        process::SigSet::of(&[]).set_mask()?;
        // Nothing of the runner's reaches the program: 0-2 and, until its exec, the error pipe
        // (close-on-exec). The grant fds were only needed for Landlock's rules, made above.
        fs::close_all_except(3, &[self.keep])
    }
}
