//! Inside the prison: pid 1 builds the view, locks itself down, then forks the program and
//! reaps. Runs in a fork-like clone of the runner: it never returns, never panics on purpose,
//! and reports every failure to the supervisor as a `msg::Msg` naming the step and operand.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use brig_policy::Rights;
use brig_sys::fs::{self, resolve};
use brig_sys::mount::{self, attr};
use brig_sys::process::{self, SigSet};
use brig_sys::seccomp::SockFilter;

use crate::grants::{Entry, Kind};
use crate::landlock::Prepared;
use crate::msg::{self, Msg};

/// Everything pid 1 needs, prepared by the runner before clone.
#[derive(Debug)]
pub struct Inside {
    pub view: Vec<Entry>,
    /// Capability fds and the numbers the program gets them at.
    pub caps: Vec<crate::caps::Opened>,
    /// Set `LISTEN_PID` to the program's pid (it has listeners).
    pub listen_pid: bool,
    /// Enter capability mode before exec (exec by fd).
    pub capability_mode: bool,
    pub landlock: Option<Prepared>,
    pub filter: Vec<SockFilter>,
    /// `--only-syscalls`: a second filter, installed by the program's process just before exec.
    pub allow_list: Option<Vec<SockFilter>>,
    pub rlimits: Vec<crate::limits::Rlimit>,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// Directories to search for argv[0] (empty if argv[0] contains a `/`).
    pub search: Vec<PathBuf>,
    pub chdir: PathBuf,
    /// `chdir` was not asked for (the caller's directory): start in `/` if it cannot be entered.
    pub chdir_or_root: bool,
    pub uid: u32,
    pub gid: u32,
    /// true when the caller is unprivileged: setgroups is denied in the user namespace
    pub keep_groups: bool,
    pub new_net: bool,
    /// `--egress`: bind the resolver's socket at 127.0.0.1:53 for the broker.
    pub resolver: bool,
    pub new_uts: bool,
    /// The host name set in a new UTS namespace.
    pub hostname: String,
    /// Whether the root is made read-only once the view is built (always for brig's own root;
    /// an OCI root as its config says).
    pub root_readonly: bool,
    /// The layer steps pid 1 may skip when the kernel refuses them (`--best-effort`, minus the
    /// layers a capability rests on).
    pub may_drop: Vec<u32>,
    pub report: OwnedFd,
    pub go: OwnedFd,
    /// Where pid 1 sends the seccomp listener and its network namespace (for the broker) and
    /// the master of the prison's terminal (for the relay).
    pub broker: OwnedFd,
    pub signals: SigSet,
    /// The program gets a terminal of its own (see `terminal.rs`).
    pub tty: Option<crate::terminal::Setup>,
    /// pid 1's copy of that terminal's master: it asks it for the foreground process group.
    pub master: Option<OwnedFd>,
    /// OCI create: the start fifo pid 1 parks on after its setup (`OciPlan::gate`); pid 1 is the
    /// caller's child then, and exits with the program's status.
    pub gate: Option<OwnedFd>,
    /// OCI: the capability sets kept (`Plan::capabilities`); `None` drops them all.
    pub capabilities: Option<brig_policy::CapSets>,
    /// Set no_new_privs (`Plan::no_new_privs`).
    pub no_new_privs: bool,
    /// OCI `linux.seccomp`: the config's own filter, installed after brig's (the kernel
    /// applies both: the stricter answer wins).
    pub oci_filter: Option<Vec<SockFilter>>,
    /// OCI: the source names the config gives the filesystems brig makes, by inside path.
    pub labels: Vec<(PathBuf, String)>,
    /// OCI: the program's umask.
    pub umask: Option<u32>,
    /// OCI: pid 1's (and so the program's) oom_score_adj.
    pub oom_score_adj: Option<i32>,
    /// OCI `additionalGids`: set after the ids (empty: none, or kept when unprivileged).
    pub groups: Vec<u32>,
    /// OCI `maskedPaths` and `readonlyPaths` outside /proc, relative to the root.
    pub masked: Vec<PathBuf>,
    pub readonly: Vec<PathBuf>,
}

/// A failed step: (step index, error, operand index into the view or u32::MAX).
type Fail = (u32, io::Error, u32);

fn at(step: u32) -> impl Fn(io::Error) -> Fail {
    move |e| (step, e, u32::MAX)
}

fn send(fd: BorrowedFd<'_>, m: Msg) {
    // A lost record only makes the supervisor's message less precise; nothing to do about it.
    let _ = fs::write(fd, &m.encode());
}

fn fail(fd: BorrowedFd<'_>, (step, e, operand): Fail) {
    let errno = e.raw_os_error().unwrap_or(libc::EIO);
    send(fd, Msg { kind: msg::ERROR, step, errno, operand, value: 0 });
}

/// pid 1 of the prison. Never returns.
pub fn pid1(mut p: Inside) -> ! {
    match setup(&mut p) {
        Ok(()) => {}
        Err(f) => {
            fail(p.report.as_fd(), f);
            process::exit_now(125);
        }
    }
    if let Some(fifo) = &p.gate {
        // OCI create: set up and locked down; wait for `start` (a byte in the fifo). A hang-up
        // of `go` means the runner died: the container fails closed.
        send(p.report.as_fd(), Msg { kind: msg::PARKED, step: 0, errno: 0, operand: 0, value: 0 });
        match process::poll_readable(&[fifo.as_fd(), p.go.as_fd()], None) {
            Ok(r) if r[0] && !r[1] => {
                let _ = fs::read(fifo.as_fd(), &mut [0u8; 1]);
            }
            _ => process::exit_now(125),
        }
    }
    // pid 1 keeps nothing of the host: every fd but 0-2 (which the program inherits), the
    // capabilities and the report pipe is closed, including any the caller leaked into brig.
    // The grant fds are forgotten rather than dropped one by one: that one call closes them.
    // (OCI: the start fifo stays open, close-on-exec, until the program has executed.)
    std::mem::forget(std::mem::take(&mut p.view));
    let report = p.report.as_fd();
    let keep: Vec<BorrowedFd<'_>> = std::iter::once(report)
        .chain(p.caps.iter().map(|c| c.fd.as_fd()))
        .chain(p.master.as_ref().map(|m| m.as_fd()))
        .chain(p.gate.as_ref().map(|g| g.as_fd()))
        .collect();
    if let Err(e) = fs::close_all_except(3, &keep) {
        fail(report, (23, e, u32::MAX));
        process::exit_now(125);
    }
    if let Err(f) = oci_last(&p) {
        fail(report, f);
        process::exit_now(125);
    }
    send(
        report,
        Msg { kind: msg::READY, step: 0, errno: 0, operand: 0, value: process::monotonic_ns() },
    );
    // The program's process shares pid 1's memory until its exec (no copy-on-write faults).
    match process::spawn_shared(&mut || program(&p)) {
        Ok(pid) => {
            // The program has executed (or failed to): closing the fifo's last reader tells
            // `start`, which runs the poststart hooks only then.
            let oci = p.gate.take().is_some();
            let master = p.master.as_ref().map(|m| m.as_fd());
            reap(report, pid, &p.signals, master, oci)
        }
        Err(e) => {
            fail(report, (22, e, u32::MAX));
            process::exit_now(125);
        }
    }
}

/// Builds the view and locks pid 1 down: every step of docs/launch-sequence.md "inside".
fn setup(p: &mut Inside) -> Result<(), Fail> {
    // Die with the runner. If it died before we set PDEATHSIG, its end of `go` is closed and
    // the read below sees EOF. (OCI create: our parent is the caller, which leaves at once;
    // `go` alone tells us the runner died.)
    let deathsig = if p.gate.is_some() { 0 } else { libc::SIGKILL as u64 };
    process::prctl(libc::PR_SET_PDEATHSIG, deathsig).map_err(at(0))?;
    // Leave the caller's session: the caller's terminal is no longer pid 1's (nor the
    // program's) controlling terminal, and its keyboard signals reach brig, which forwards them.
    process::setsid().map_err(at(23))?;
    // The program can read pid 1's command line: it is brig's, with every grant path and
    // --env value. Overwrite it (the host's procfs is still mounted).
    process::blank_cmdline("brig-init").map_err(at(msg::STEP_CMDLINE))?;
    if let Some(adj) = p.oom_score_adj {
        // Raising it needs nothing; lowering it below the runner's needs CAP_SYS_RESOURCE of
        // the host, so that fails here, closed.
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(at(msg::STEP_OOM))?;
    }
    // Work that needs no mapped uid, done while the runner writes our uid/gid maps (the two
    // run on two CPUs): the network namespace (the slowest to create), hostname, loopback,
    // private mounts, and re-opening every grant before anything is mounted over the host tree
    // (the staging point could hide a grant's path), checking each is still the file the runner
    // opened.
    if p.new_net {
        match process::unshare(libc::CLONE_NEWNET) {
            Ok(()) => brig_sys::net::loopback_up().map_err(at(16))?,
            Err(e) => degrade_or_fail(p, msg::STEP_NET_NS, e)?,
        }
    }
    // The broker lets sockets of this namespace listen (the host's procfs is still mounted).
    let netns = fs::openat2(
        None,
        Path::new("/proc/thread-self/ns/net"),
        libc::O_RDONLY | libc::O_CLOEXEC,
        0,
        0,
    )
    .map_err(at(msg::STEP_BROKER))?;
    // --egress: the resolver's socket, on this namespace's loopback (port 53 needs the
    // capabilities pid 1 still has here), answered by the broker.
    let resolver = match p.resolver {
        true => Some(OwnedFd::from(
            std::net::UdpSocket::bind("127.0.0.1:53").map_err(at(msg::STEP_BROKER))?,
        )),
        false => None,
    };
    if p.new_uts {
        process::sethostname(&p.hostname).map_err(at(15))?;
    }
    mount::make_all_private().map_err(at(3))?;
    let mut sources = Vec::with_capacity(p.view.len());
    for (i, e) in p.view.iter().enumerate() {
        sources.push(reopen(e).map_err(|(s, err)| (s, err, i as u32))?);
    }
    let mut remounts = Vec::new();
    for (i, c) in p.caps.iter().enumerate() {
        if let Some(d) = &c.remount {
            let src = reopen_checked(&d.path, d.ident)
                .map_err(|(_, e)| (msg::STEP_DIR_CAP, e, u32::MAX))?;
            remounts.push((i, src));
        }
    }
    // Now wait for the go: maps written, cgroup joined.
    let mut b = [0u8; 1];
    if fs::read(p.go.as_fd(), &mut b).map_err(at(0))? != 1 {
        process::exit_now(125);
    }
    // Each directory and read-only file capability is re-opened through a detached copy of its
    // mount, which carries its rights (read-only, noexec, nosuid, nodev: what Landlock does not
    // cover, chmod, chown, utimes, xattrs, inode flags); for a directory `..` stops at its root
    // (a detached mount has no parent). Done before the uid change, with the runner's
    // filesystem uid, so a root run can still open root's files.
    for (i, src) in remounts {
        let fail = at(msg::STEP_DIR_CAP);
        let Some(r) = &p.caps[i].remount else { continue };
        let tree = mount::clone_tree(src.as_fd()).map_err(&fail)?;
        mount::set_attr(tree.as_fd(), bind_attrs(r.rights, r.ident.is_device), 0, true)
            .map_err(&fail)?;
        p.caps[i].fd = reopen_in(tree.as_fd(), r.ident.is_dir).map_err(&fail)?;
    }
    // Keep capabilities across the uid change, then become the prison's unprivileged ids.
    process::prctl(libc::PR_SET_SECUREBITS, libc::SECBIT_NO_SETUID_FIXUP as u64).map_err(at(1))?;
    process::become_ids(p.uid, p.gid, p.keep_groups).map_err(at(1))?;
    if !p.groups.is_empty() {
        process::set_groups(&p.groups).map_err(at(1))?;
    }
    // A fresh anonymous session keyring: the caller's session keyring (and every key it links)
    // is no longer possessed, so not readable even if a later layer failed.
    process::join_new_session_keyring().map_err(at(msg::STEP_KEYRING))?;
    // A credential change clears PDEATHSIG: arm it again. The runner holds its end of `go` for
    // as long as it lives, so a hang-up now means it died before the signal was re-armed.
    process::prctl(libc::PR_SET_PDEATHSIG, deathsig).map_err(at(1))?;
    if process::poll_readable(&[p.go.as_fd()], Some(std::time::Duration::ZERO)).map_err(at(0))?[0] {
        process::exit_now(125);
    }
    // The cgroup namespace is made now, after the runner moved us into our cgroup, so that the
    // prison sees its own cgroup as the root.
    if let Err(e) = process::unshare(libc::CLONE_NEWCGROUP) {
        degrade_or_fail(p, msg::STEP_CGROUP_NS, e)?;
    }
    // The root: brig's own tmpfs, or an OCI bundle's root (the view's entry at `/`).
    let oci_root = p.view.first().filter(|e| e.dest == Path::new("/"));
    let root = match oci_root {
        Some(e) => tree(e, sources[0].as_ref()).map_err(|(s, err)| (s, err, 0))?,
        None => {
            mount::new_fs("tmpfs", &[("size", "4m"), ("mode", "0755")], attr::NOSUID | attr::NODEV)
                .map_err(at(4))?
        }
    };
    mount::attach_at_path(root.as_fd(), Path::new("/tmp")).map_err(at(4))?;
    let mut last = LastDir::default();
    let skip = usize::from(oci_root.is_some());
    for (i, (e, src)) in p.view.iter().zip(&sources).enumerate().skip(skip) {
        let label = p.labels.iter().find(|(d, _)| *d == e.dest).map_or("none", |(_, l)| l);
        build(root.as_fd(), e, src.as_ref(), &mut last, label, !p.labels.is_empty())
            .map_err(|(s, err)| (s, err, i as u32))?;
    }
    drop(last);
    // Closed with every other fd before the fork (see `pid1`), in one call.
    std::mem::forget(sources);
    cover_outside_proc(root.as_fd(), &p.masked, &p.readonly).map_err(at(msg::STEP_MASK))?;
    if p.root_readonly {
        mount::set_attr(root.as_fd(), attr::RDONLY, 0, false).map_err(at(13))?;
    }
    fs::fchdir(root.as_fd()).map_err(at(14))?;
    mount::pivot_to_cwd().map_err(at(14))?;
    fs::chdir(Path::new("/")).map_err(at(14))?;
    if let Some(t) = p.tty {
        p.master = Some(private_terminal(&t, p.broker.as_fd()).map_err(at(msg::STEP_PTY))?);
    }
    process::prctl(libc::PR_SET_DUMPABLE, 0).map_err(at(18))?;
    // OCI: the config's capabilities are set last; until then CAP_SYS_ADMIN in our user
    // namespace lets Landlock and seccomp in without no_new_privs, if the config turns it off.
    if p.capabilities.is_none() {
        brig_sys::caps::drop_all().map_err(at(18))?;
    }
    if p.no_new_privs {
        process::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).map_err(at(19))?;
    }
    if let Some(ll) = p.landlock.take() {
        match ll.restrict(p.no_new_privs) {
            Ok(true) => {}
            Ok(false) => degrade_or_fail(
                p,
                msg::STEP_LANDLOCK,
                io::Error::from_raw_os_error(libc::EOPNOTSUPP),
            )?,
            Err(e) => degrade_or_fail(p, msg::STEP_LANDLOCK, io::Error::other(e))?,
        }
    }
    // The filter's listener goes to the supervisor's broker and is closed here: no process in
    // the prison ever holds it (it could answer its own calls).
    match brig_sys::seccomp::install_with_listener(&p.filter) {
        Ok(listener) => {
            let mut fds = vec![listener.as_fd(), netns.as_fd()];
            fds.extend(resolver.as_ref().map(|r| r.as_fd()));
            brig_sys::fdpass::send_fds(p.broker.as_fd(), b'b', &fds)
                .map_err(at(msg::STEP_BROKER))?;
        }
        Err(e) => degrade_or_fail(p, msg::STEP_SECCOMP, e)?,
    }
    Ok(())
}

/// OCI `maskedPaths` and `readonlyPaths` outside /proc (those are done with procfs), relative
/// to the new root and resolved beneath it without following any symlink (one in the image is
/// refused, never followed); missing ones are skipped. The covers' empty file lives on a small
/// detached tmpfs of brig's own.
fn cover_outside_proc(
    root: BorrowedFd<'_>,
    masked: &[PathBuf],
    readonly: &[PathBuf],
) -> io::Result<()> {
    if !masked.is_empty() {
        let a = attr::NOSUID | attr::NODEV | attr::NOEXEC;
        let under = mount::new_fs("tmpfs", &[("size", "4k"), ("mode", "0555")], a)?;
        let name = Path::new("empty");
        fs::write_file_at(under.as_fd(), name, 0o444, b"")?;
        let how = resolve::BENEATH | resolve::NO_SYMLINKS | resolve::NO_MAGICLINKS;
        let empty = fs::openat2(Some(under.as_fd()), name, libc::O_PATH, 0, how)?;
        for m in masked {
            cover(root, m, empty.as_fd())?;
        }
    }
    for r in readonly {
        read_only(root, r)?;
    }
    Ok(())
}

/// OCI: the config's own seccomp filter, then its capability sets; last, once every fd is
/// closed (the profile need not allow close_range) and just before the program's fork.
fn oci_last(p: &Inside) -> Result<(), Fail> {
    if let Some(f) = &p.oci_filter {
        brig_sys::seccomp::install(f).map_err(at(msg::STEP_SECCOMP))?;
    }
    if let Some(c) = p.capabilities {
        brig_sys::caps::set(c.bounding, c.effective, c.permitted, c.inheritable, c.ambient)
            .map_err(at(18))?;
    }
    Ok(())
}

/// A pseudo-terminal of the prison's devpts with the user's settings and size; its slave
/// replaces the caller's terminal on pid 1's stdio (the program inherits it), its master goes to
/// the supervisor's relay. Returns pid 1's copy of the master.
fn private_terminal(t: &crate::terminal::Setup, handover: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let how = resolve::NO_SYMLINKS | resolve::NO_MAGICLINKS;
    let pts = fs::openat2(None, Path::new("/dev/pts"), libc::O_PATH | libc::O_DIRECTORY, 0, how)?;
    let (master, slave) = brig_sys::tty::open_pty(pts.as_fd())?;
    if let Some(termios) = t.termios {
        termios.set(slave.as_fd())?;
    }
    if let Some(size) = t.size {
        brig_sys::tty::set_winsize(slave.as_fd(), size)?;
    }
    for n in (0..3).filter(|&n| t.fds[n]) {
        brig_sys::fdpass::place_for_exec(slave.as_fd(), n as i32)?;
    }
    brig_sys::fdpass::send_fds(handover, b't', &[master.as_fd()])?;
    Ok(master)
}

fn degrade_or_fail(p: &Inside, step: u32, e: io::Error) -> Result<(), Fail> {
    if !p.may_drop.contains(&step) {
        return Err((step, e, u32::MAX));
    }
    let errno = e.raw_os_error().unwrap_or(libc::EIO);
    send(p.report.as_fd(), Msg { kind: msg::DEGRADED, step, errno, operand: 0, value: 0 });
    Ok(())
}

/// Re-opens a bind source in our copy of the mount namespace, refusing symlinks, and checks it
/// is the same file (device, inode) the runner opened during the grant phase.
fn reopen(e: &Entry) -> Result<Option<OwnedFd>, (u32, io::Error)> {
    let Kind::Bind { source, ident, mapped: None, .. } = &e.kind else { return Ok(None) };
    reopen_checked(source, *ident).map(Some)
}

fn reopen_checked(source: &Path, ident: fs::Ident) -> Result<OwnedFd, (u32, io::Error)> {
    let how = resolve::NO_SYMLINKS | resolve::NO_MAGICLINKS;
    let src = fs::openat2(None, source, libc::O_PATH, 0, how).map_err(|e| (5, e))?;
    if fs::ident(src.as_fd()).map_err(|e| (5, e))? != ident {
        return Err((6, io::Error::from_raw_os_error(libc::ESTALE)));
    }
    Ok(src)
}

/// The root of a detached mount `tree`, opened for reading: a directory through `.`, a file
/// through its own fd's magic link (the host's procfs is still mounted; the link is our fd).
fn reopen_in(tree: BorrowedFd<'_>, dir: bool) -> io::Result<OwnedFd> {
    if dir {
        let how = resolve::NO_SYMLINKS | resolve::NO_MAGICLINKS;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY;
        return fs::openat2(Some(tree), Path::new("."), flags, 0, how);
    }
    let link = PathBuf::from(format!("/proc/self/fd/{}", process::raw(tree)));
    let flags = libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC;
    let fd = fs::openat2(None, &link, flags, 0, 0)?;
    brig_sys::fdpass::set_nonblocking(fd.as_fd(), false)?;
    Ok(fd)
}

/// Mount attributes for a bind or a capability with `rights`.
pub(crate) fn bind_attrs(rights: Rights, device: bool) -> u64 {
    let mut set = attr::NOSUID;
    if !device {
        set |= attr::NODEV;
    }
    if rights.read_only() {
        set |= attr::RDONLY;
    }
    if !rights.exec {
        set |= attr::NOEXEC;
    }
    set
}

/// Creates one entry of the view under `root` (still attached at the staging point).
fn build(
    root: BorrowedFd<'_>,
    e: &Entry,
    src: Option<&OwnedFd>,
    last: &mut LastDir,
    label: &str,
    fresh: bool,
) -> Result<(), (u32, io::Error)> {
    let rel = e.rel();
    // A filesystem brig makes: mounted at the entry's place, its source shown as `label`.
    let made = |fstype: &str, opts: &[(&str, &str)], a: u64, step: u32, last: &mut LastDir| {
        let mut opts = opts.to_vec();
        opts.push(("source", label));
        let m = mount::new_fs(fstype, &opts, a).map_err(|e| (step, e))?;
        let target = mountpoint(root, rel, true, !e.inside_bind, last).map_err(|e| (7, e))?;
        mount::attach(m.as_fd(), target.as_fd()).map_err(|e| (step, e))
    };
    match &e.kind {
        Kind::Bind { ident, mapped, .. } => {
            let tree = tree(e, src)?;
            let target =
                mountpoint(root, rel, ident.is_dir, !e.inside_bind, last).map_err(|e| (7, e))?;
            mount::attach(tree.as_fd(), target.as_fd()).map_err(|e| (8, e))?;
            if mapped.is_some() && fresh {
                // OCI: the runner made this id-mapped mount before anything here, so it would
                // list first in mountinfo (ordered by creation), against the config's order. A
                // copy made now replaces it (only attached, it is ours to copy).
                let copy = mount::clone_tree(tree.as_fd()).map_err(|e| (8, e))?;
                mount::detach(tree.as_fd()).map_err(|e| (8, e))?;
                mount::attach(copy.as_fd(), target.as_fd()).map_err(|e| (8, e))?;
            }
            Ok(())
        }
        Kind::Symlink { target } => {
            let parent =
                mkdirs(root, rel.parent().unwrap_or(Path::new("")), last).map_err(|e| (11, e))?;
            let name = Path::new(rel.file_name().unwrap_or_default());
            fs::symlinkat(target, parent, name).map_err(|e| (11, e))
        }
        Kind::Copy { fd, len } => {
            let parent =
                mkdirs(root, rel.parent().unwrap_or(Path::new("")), last).map_err(|e| (12, e))?;
            let name = Path::new(rel.file_name().unwrap_or_default());
            fs::copy_file_at(parent, name, 0o444, fd.as_fd(), *len).map_err(|e| (12, e))
        }
        Kind::File { data } => {
            let parent =
                mkdirs(root, rel.parent().unwrap_or(Path::new("")), last).map_err(|e| (12, e))?;
            let name = Path::new(rel.file_name().unwrap_or_default());
            fs::write_file_at(parent, name, 0o444, data).map_err(|e| (12, e))
        }
        Kind::Tmpfs { size, exec, shared } => {
            let mut a = attr::NOSUID | attr::NODEV;
            if !exec {
                a |= attr::NOEXEC;
            }
            let size = size.to_string();
            let mode = if *shared { "1777" } else { "0755" };
            made("tmpfs", &[("size", &size), ("mode", mode)], a, 10, last)
        }
        Kind::Devpts => {
            let opts = [("ptmxmode", "0666"), ("mode", "0620"), ("max", PTYS_MAX)];
            made("devpts", &opts, attr::NOSUID | attr::NOEXEC, msg::STEP_DEVPTS, last)
        }
        Kind::Sysfs { made: Some(m) } | Kind::Mqueue { made: Some(m) } => {
            let step = match e.kind {
                Kind::Sysfs { .. } => msg::STEP_SYSFS,
                _ => msg::STEP_MQUEUE,
            };
            let target = mountpoint(root, rel, true, !e.inside_bind, last).map_err(|e| (7, e))?;
            mount::attach(m.as_fd(), target.as_fd()).map_err(|e| (step, e))
        }
        Kind::Sysfs { made: None } => made("sysfs", &[], SYSFS, msg::STEP_SYSFS, last),
        Kind::Mqueue { made: None } => made("mqueue", &[], MQUEUE, msg::STEP_MQUEUE, last),
        Kind::Proc { masked, readonly, sysctl } => {
            let m = mount::new_fs(
                "proc",
                &[("source", label)],
                attr::NOSUID | attr::NODEV | attr::NOEXEC,
            )
            .map_err(|e| (9, e))?;
            let target = mountpoint(root, rel, true, !e.inside_bind, last).map_err(|e| (7, e))?;
            // The covers' source: an empty file on a small tmpfs of our own at the mountpoint
            // (never on an image or host directory), hidden once procfs is mounted over it.
            let a = attr::NOSUID | attr::NODEV | attr::NOEXEC;
            let under = mount::new_fs("tmpfs", &[("size", "4k"), ("mode", "0555")], a)
                .map_err(|e| (9, e))?;
            mount::attach(under.as_fd(), target.as_fd()).map_err(|e| (9, e))?;
            let how = resolve::BENEATH | resolve::NO_SYMLINKS | resolve::NO_MAGICLINKS;
            let name = Path::new("empty");
            fs::write_file_at(under.as_fd(), name, 0o444, b"").map_err(|e| (9, e))?;
            let empty =
                fs::openat2(Some(under.as_fd()), name, libc::O_PATH, 0, how).map_err(|e| (9, e))?;
            mount::attach(m.as_fd(), under.as_fd()).map_err(|e| (9, e))?;
            for (name, value) in sysctl {
                let how = resolve::BENEATH | resolve::NO_SYMLINKS | resolve::NO_MAGICLINKS;
                let f = fs::openat2(Some(m.as_fd()), name, libc::O_WRONLY, 0, how)
                    .map_err(|e| (msg::STEP_SYSCTL, e))?;
                fs::write(f.as_fd(), value.as_bytes()).map_err(|e| (msg::STEP_SYSCTL, e))?;
            }
            let names = KEY_LISTS.iter().map(Path::new).chain(masked.iter().map(|p| p.as_path()));
            for name in names {
                cover(m.as_fd(), name, empty.as_fd()).map_err(|e| (9, e))?;
            }
            for name in readonly {
                read_only(m.as_fd(), name).map_err(|e| (9, e))?;
            }
            Ok(())
        }
    }
}

/// A bind entry's detached mount with its attributes: the id-mapped one the runner made, or a
/// copy of the re-opened source.
fn tree(e: &Entry, src: Option<&OwnedFd>) -> Result<OwnedFd, (u32, io::Error)> {
    match &e.kind {
        Kind::Bind { mapped: Some(tree), .. } => tree.try_clone().map_err(|e| (8, e)),
        Kind::Bind { rights, device, .. } => {
            let src = src.ok_or((5, io::Error::from_raw_os_error(libc::EBADF)))?;
            let tree = mount::clone_tree(src.as_fd()).map_err(|e| (8, e))?;
            mount::set_attr(tree.as_fd(), bind_attrs(*rights, *device), 0, true)
                .map_err(|e| (8, e))?;
            Ok(tree)
        }
        _ => Err((8, io::Error::from_raw_os_error(libc::EINVAL))),
    }
}

/// The most pseudo-terminals a prison may hold at once (the kernel's pty limit is host-wide).
const PTYS_MAX: &str = "64";
/// How sysfs and mqueue are mounted (by pid 1, or by the runner in a joined namespace).
pub const SYSFS: u64 = attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC;
pub const MQUEUE: u64 = attr::NOSUID | attr::NODEV | attr::NOEXEC;

/// The files of procfs that list the kernel's keys, which are not namespaced: names, serials
/// and owners of every key the program's uid may view, the host user's included.
const KEY_LISTS: &[&str] = &["keys", "key-users"];

/// Covers `name` in the procfs at `proc`: a file with the empty file `empty`, a directory with
/// an empty tmpfs, read-only either way. [`KEY_LISTS`] are always covered (the second layer
/// after the fresh session keyring; seccomp's @keyring is the third), an OCI config's
/// `maskedPaths` too. A name this kernel's procfs lacks is left alone.
fn cover(dir: BorrowedFd<'_>, name: &Path, empty: BorrowedFd<'_>) -> io::Result<()> {
    let Some(target) = beneath(dir, name)? else { return Ok(()) };
    let ro = attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC;
    let cover = match std::fs::File::from(target.try_clone()?).metadata()?.is_dir() {
        // A directory: an empty read-only tmpfs over it.
        true => mount::new_fs("tmpfs", &[("size", "4k"), ("mode", "0555")], ro)?,
        false => {
            let c = mount::clone_tree(empty)?;
            mount::set_attr(c.as_fd(), ro, 0, false)?;
            c
        }
    };
    mount::attach(cover.as_fd(), target.as_fd())
}

/// `name` in the procfs at `proc`, never through a link; `None` if this kernel's procfs lacks it.
fn beneath(dir: BorrowedFd<'_>, name: &Path) -> io::Result<Option<OwnedFd>> {
    let how = resolve::BENEATH | resolve::NO_SYMLINKS | resolve::NO_MAGICLINKS;
    match fs::openat2(Some(dir), name, libc::O_PATH, 0, how) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        r => r.map(Some),
    }
}

/// Makes `name` in the procfs at `proc` read-only (a read-only copy of it mounted over it).
fn read_only(dir: BorrowedFd<'_>, name: &Path) -> io::Result<()> {
    let Some(target) = beneath(dir, name)? else { return Ok(()) };
    let copy = mount::clone_tree(target.as_fd())?;
    mount::set_attr(
        copy.as_fd(),
        attr::RDONLY | attr::NOSUID | attr::NODEV | attr::NOEXEC,
        0,
        true,
    )?;
    mount::attach(copy.as_fd(), target.as_fd())
}

/// Opens (creating on our tmpfs unless `must_exist`) the mountpoint `rel` under `root`, one
/// component at a time and never following a symlink, so nothing can redirect it.
pub(crate) fn mountpoint(
    root: BorrowedFd<'_>,
    rel: &Path,
    dir: bool,
    create: bool,
    last: &mut LastDir,
) -> io::Result<OwnedFd> {
    let how = resolve::BENEATH | resolve::NO_SYMLINKS | resolve::NO_MAGICLINKS;
    if create {
        let parent = mkdirs(root, rel.parent().unwrap_or(Path::new("")), last)?;
        let name = Path::new(rel.file_name().unwrap_or_default());
        if dir {
            fs::mkdirat(parent, name, 0o755)?;
        } else {
            match fs::openat2(
                Some(parent),
                name,
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
                0o444,
                how,
            ) {
                Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e),
                _ => {}
            }
        }
    }
    let flags = libc::O_PATH | if dir { libc::O_DIRECTORY } else { 0 };
    fs::openat2(Some(root), rel, flags, 0, how)
}

/// The directory [`mkdirs`] made last, kept for its siblings: the view is sorted, so the
/// entries of one directory come together, and nothing is mounted over a directory after an
/// entry inside it was made.
#[derive(Default)]
pub(crate) struct LastDir(Option<(PathBuf, OwnedFd)>);

/// `mkdir -p` of `rel` under `root`, one component at a time, refusing symlinks.
fn mkdirs<'l>(
    root: BorrowedFd<'_>,
    rel: &Path,
    last: &'l mut LastDir,
) -> io::Result<BorrowedFd<'l>> {
    if last.0.as_ref().is_none_or(|(p, _)| p != rel) {
        let how = resolve::BENEATH | resolve::NO_SYMLINKS | resolve::NO_MAGICLINKS;
        let mut dir =
            fs::openat2(Some(root), Path::new("."), libc::O_PATH | libc::O_DIRECTORY, 0, how)?;
        for c in rel.components() {
            let name = Path::new(c.as_os_str());
            fs::mkdirat(dir.as_fd(), name, 0o755)?;
            dir = fs::openat2(Some(dir.as_fd()), name, libc::O_PATH | libc::O_DIRECTORY, 0, how)?;
        }
        last.0 = Some((rel.to_path_buf(), dir));
    }
    match &last.0 {
        Some((_, dir)) => Ok(dir.as_fd()),
        None => Err(io::Error::from_raw_os_error(libc::ENOENT)),
    }
}

/// pid 1 after the fork: forward signals to the program's foreground process group, reap
/// everything; when the program ends, kill and reap whatever else is left in the pid namespace,
/// then report the program's status and exit. Nothing of the prison runs once the report is
/// sent, so brig may return then, while pid 1 is still unmounting the view. It exits with 0, or
/// (OCI, `exit_as_program`) with the program's status: 128 + the signal that killed it, as the
/// engines report it (pid 1 cannot re-raise it).
fn reap(
    report: BorrowedFd<'_>,
    prog: i32,
    signals: &SigSet,
    master: Option<BorrowedFd<'_>>,
    exit_as_program: bool,
) -> ! {
    loop {
        let sig = match signals.wait(None) {
            Ok(Some(s)) => s,
            _ => continue,
        };
        if sig != libc::SIGCHLD {
            // As a terminal delivers them: to the whole foreground group (the terminal's, or
            // without one the program's own group, which it leads), not only its top process.
            let fg = master
                .and_then(|m| brig_sys::tty::foreground_group(m).ok())
                .filter(|&g| g > 0)
                .unwrap_or(prog);
            if process::kill(-fg, sig).is_err() {
                let _ = process::kill(prog, sig);
            }
            continue;
        }
        while let Ok(Some((pid, st))) = process::wait(-1, true) {
            if pid == prog {
                // Every other process of the namespace (pid 1 itself is spared), then reap
                // them all: orphans are ours.
                let _ = process::kill(-1, libc::SIGKILL);
                while process::wait(-1, false).is_ok() {}
                send(
                    report,
                    Msg { kind: msg::EXIT, step: 0, errno: 0, operand: 0, value: st as u32 as u64 },
                );
                let code = match process::Status::from_raw(st) {
                    process::Status::Exited(c) => c,
                    process::Status::Signaled(s) => 128 + s,
                };
                process::exit_now(if exit_as_program { code } else { 0 });
            }
        }
    }
}

/// Puts every capability at its number for the program. Returns the report pipe moved above
/// those numbers (its old number may now hold a capability) and the close-on-exec copies of
/// the capabilities, which vanish at exec.
fn place_caps(p: &Inside) -> io::Result<(OwnedFd, Vec<OwnedFd>)> {
    let above = p.caps.iter().map(|c| c.target + 1).max().unwrap_or(3).max(3);
    let report = brig_sys::fdpass::dup_at_least(p.report.as_fd(), above)?;
    let high = p
        .caps
        .iter()
        .map(|c| brig_sys::fdpass::dup_at_least(c.fd.as_fd(), above))
        .collect::<io::Result<Vec<_>>>()?;
    for (c, h) in p.caps.iter().zip(&high) {
        brig_sys::fdpass::place_for_exec(h.as_fd(), c.target)?;
    }
    Ok((report, high))
}

/// The program's process: new session, clean fd table and signal state, exec.
fn program(p: &Inside) -> ! {
    let (report_fd, high) = match place_caps(p) {
        Ok(v) => v,
        Err(e) => {
            fail(p.report.as_fd(), (msg::STEP_PLACE_CAPS, e, u32::MAX));
            process::exit_now(125);
        }
    };
    let report = report_fd.as_fd();
    // Allocated before the rlimits: this process shares pid 1's memory until its exec, so
    // RLIMIT_DATA counts pid 1's heap too.
    let mut envp = p.envp.clone();
    if p.listen_pid {
        // systemd's sd_listen_fds() takes the fds only if LISTEN_PID is its own pid.
        let pid = std::process::id();
        envp.extend(CString::new(format!("LISTEN_PID={pid}")).ok());
    }
    let r: Result<(), Fail> = (|| {
        process::setsid().map_err(at(23))?;
        if let Some(n) = p.tty.and_then(|t| t.fds.iter().position(|&f| f)) {
            crate::terminal::with_stdio(n, brig_sys::tty::set_controlling)
                .map_err(at(msg::STEP_PTY))?;
        }
        fs::chdir(&p.chdir)
            .or_else(|e| if p.chdir_or_root { fs::chdir(Path::new("/")) } else { Err(e) })
            .map_err(at(msg::STEP_CHDIR))?;
        // rlimits here, in the program's process only: pid 1's own work (Landlock, its fork)
        // is not counted against --nofile or --procs.
        for &(res, soft, hard) in &p.rlimits {
            process::setrlimit(res, soft, hard).map_err(|e| (17, e, res))?;
        }
        if let Some(m) = p.umask {
            process::umask(m);
        }
        process::default_signals().map_err(at(23))?;
        SigSet::of(&[]).set_mask().map_err(at(23))?;
        Ok(())
    })();
    if let Err(f) = r {
        fail(report, f);
        process::exit_now(125);
    }
    send(
        report,
        Msg { kind: msg::PREEXEC, step: 0, errno: 0, operand: 0, value: process::monotonic_ns() },
    );
    if let Some(f) = &p.allow_list {
        if let Err(e) = brig_sys::seccomp::install(f) {
            fail(report, (msg::STEP_SECCOMP, e, u32::MAX));
            process::exit_now(125);
        }
    }
    let e = if p.capability_mode {
        capability_exec(p, report, &high, &envp)
    } else {
        exec_search(&p.argv, &p.search, &envp)
    };
    let errno = e.raw_os_error().unwrap_or(libc::ENOENT);
    send(
        report,
        Msg { kind: msg::ERROR, step: msg::STEP_EXEC, errno, operand: u32::MAX, value: 0 },
    );
    process::exit_now(if errno == libc::ENOENT { 127 } else { 126 })
}

/// Capability mode from exec on: open the program (O_PATH), add the capability-mode Landlock
/// layer (the directory capabilities and this one file) and seccomp filter, then exec the fd:
/// after this the program cannot look up a path from / or its working directory, so a
/// dynamically linked program cannot load its libraries (enter capability mode through
/// brig-caps instead). Returns only on failure, reporting it.
fn capability_exec(
    p: &Inside,
    report: BorrowedFd<'_>,
    high: &[OwnedFd],
    envp: &[CString],
) -> io::Error {
    // Plain open: the filter already answers openat2 ENOSYS.
    let exe = match candidates(&p.argv, &p.search).find_map(|path| {
        fs::open(Path::new(std::ffi::OsStr::from_bytes(path.as_bytes())), libc::O_PATH).ok()
    }) {
        Some(fd) => fd,
        None => return io::Error::from_raw_os_error(libc::ENOENT),
    };
    let dirs: Vec<(BorrowedFd<'_>, Rights)> = p
        .caps
        .iter()
        .zip(high)
        .filter_map(|(c, h)| Some((h.as_fd(), c.remount.as_ref()?.dir_rights()?)))
        .collect();
    let entered = brig_caps::capmode::ruleset(&dirs, Some(exe.as_fd()))
        .and_then(|rs| brig_caps::capmode::enter(rs, std::process::id()));
    if let Err(e) = entered {
        let errno = match &e {
            brig_caps::Error::Kernel { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            brig_caps::Error::Threads => libc::EDEADLK,
            _ => libc::EOPNOTSUPP,
        };
        let m =
            Msg { kind: msg::ERROR, step: msg::STEP_CAPMODE, errno, operand: u32::MAX, value: 0 };
        send(report, m);
        process::exit_now(125);
    }
    process::execve_fd(exe.as_fd(), &p.argv, envp)
}

use std::os::unix::ffi::OsStrExt;

/// The paths execvp would try for argv[0], in order.
fn candidates<'a>(
    argv: &'a [CString],
    search: &'a [PathBuf],
) -> impl Iterator<Item = CString> + 'a {
    let name = argv.first().map(|n| n.as_bytes()).unwrap_or_default();
    let direct = search.is_empty().then(|| CString::new(name).ok()).flatten();
    let searched = search.iter().filter_map(move |dir| {
        let mut path = dir.as_os_str().as_bytes().to_vec();
        path.push(b'/');
        path.extend_from_slice(name);
        CString::new(path).ok()
    });
    direct.into_iter().chain(searched)
}

/// execvp: try each candidate; ENOENT moves on, EACCES is remembered, anything else stops.
/// execve of argv[0], searched in `search` (the PATH) unless it holds a `/`; returns the error
/// worth reporting (EACCES over ENOENT) when no candidate could be executed.
pub(crate) fn exec_search(argv: &[CString], search: &[PathBuf], envp: &[CString]) -> io::Error {
    let mut seen_eacces = None;
    for c in candidates(argv, search) {
        let e = process::execve(&c, argv, envp);
        match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => {}
            Some(libc::EACCES) => seen_eacces = Some(e),
            _ => return e,
        }
    }
    seen_eacces.unwrap_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
}
