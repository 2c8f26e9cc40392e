//! Processes: clone into new namespaces, fork, wait, signals, prctl, rlimits, exec.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::{check, check_int};

/// Which side of a fork-like clone we are on.
#[derive(Debug)]
pub enum Forked {
    Child,
    Parent { pid: i32, pidfd: OwnedFd },
}

/// Fork-like `clone(flags | CLONE_PIDFD | SIGCHLD)`: the child gets a copy of the address space
/// and continues from here; the parent gets the child's pid and a pidfd.
///
/// `parent_only` are fds the child must not keep (the runner's ends of its pipes to the child):
/// the child closes them before anything else, so it can see the runner hang up.
///
/// Refuses (`EDEADLK`) unless this process has exactly one thread: a fork of a multi-threaded
/// process may inherit a lock held by a thread that does not exist in the child. The child must
/// end with [`exit_now`] or an exec and must never unwind or abort through `raise()` (raw clone
/// does not update glibc's cached thread id).
pub fn clone_namespaces(ns_flags: i32, parent_only: &[BorrowedFd<'_>]) -> io::Result<Forked> {
    clone_single(&SingleThreaded::check()?, ns_flags, parent_only)
}

/// Proof that this process had one thread when it was made (see [`SingleThreaded::check`]);
/// it stays true for a fork child that starts no thread. Lets a process that has since left
/// the pid namespace its /proc shows (a `setns` into a container) still clone.
#[derive(Debug)]
pub struct SingleThreaded(());

impl SingleThreaded {
    pub fn check() -> io::Result<SingleThreaded> {
        require_single_thread().map(|()| SingleThreaded(()))
    }
}

/// [`clone_namespaces`] with the single-thread check made earlier.
pub fn clone_single(
    _proof: &SingleThreaded,
    ns_flags: i32,
    parent_only: &[BorrowedFd<'_>],
) -> io::Result<Forked> {
    let mut pidfd: libc::c_int = -1;
    let flags = (ns_flags | libc::CLONE_PIDFD | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: a NULL stack makes clone fork-like (the child runs on a copy of our stack); the
    // parent_tid slot receives the pidfd with CLONE_PIDFD and points at a live c_int; we are
    // the only thread (checked above), so the child inherits no lock held elsewhere.
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            std::ptr::null_mut::<u8>(),
            &mut pidfd as *mut libc::c_int,
            std::ptr::null_mut::<u8>(),
            0,
        )
    })?;
    if ret == 0 {
        for fd in parent_only {
            // SAFETY: the child's copies of these fds belong to `OwnedFd`s in the parent's
            // stack frames, which the child never returns to (it ends with exit or exec), so
            // no destructor will close the numbers again.
            unsafe { libc::close(fd.as_raw_fd()) };
        }
        return Ok(Forked::Child);
    }
    // SAFETY: with CLONE_PIDFD the kernel stored a fresh pidfd that only we own.
    Ok(Forked::Parent { pid: ret as i32, pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) } })
}

/// Plain `fork()`. Returns `None` in the child, `Some(pid)` in the parent.
///
/// Refuses unless single-threaded, as [`clone_namespaces`].
pub fn fork() -> io::Result<Option<i32>> {
    require_single_thread()?;
    // SAFETY: we are the only thread (checked above), so the child inherits no held lock.
    let pid = check_int(unsafe { libc::fork() })?;
    Ok(if pid == 0 { None } else { Some(pid) })
}

/// Starts `child` in a new process that shares our memory until it execs or exits
/// (`clone(CLONE_VM | CLONE_VFORK)`, as posix_spawn does): no copy-on-write faults, which cost
/// ~15 µs each on a paravirtualised host. We are suspended until then, and get its pid.
///
/// `child` runs on a stack of its own (256 KiB under a guard page) and should end in an exec or
/// [`exit_now`] (if it returns, the process exits with 127). It must not panic: an abort would
/// `raise()` with our cached thread id. It shares our
/// heap, statics and thread-local state (errno), which it may use since we are suspended and
/// hold no lock, and must never unwind. Refuses unless single-threaded, as [`clone_namespaces`].
pub fn spawn_shared(child: &mut dyn FnMut()) -> io::Result<i32> {
    require_single_thread()?;
    const STACK: usize = 256 << 10;
    extern "C" fn start(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `&mut dyn FnMut` below, alive on the parent's suspended stack
        // frame until the child has exec'd or exited.
        let f = unsafe { &mut *(arg as *mut &mut dyn FnMut()) };
        f();
        exit_now(127)
    }
    const GUARD: usize = 4096;
    let len = GUARD + STACK;
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let map = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK;
    // SAFETY: a fresh anonymous mapping that nothing else refers to.
    let base = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, map, -1, 0) };
    if base == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // The lowest page is a guard: an overflow faults instead of writing into our memory.
    // SAFETY: `base` is page-aligned and the first GUARD bytes lie inside the mapping.
    let guarded = check_int(unsafe { libc::mprotect(base, GUARD, libc::PROT_NONE) });
    let mut f: &mut dyn FnMut() = child;
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    let pid = guarded.and_then(|_| {
        let top = (base as usize + len) & !15;
        // SAFETY: the stack is ours, 16-byte aligned at its top and outlives the child's use
        // of it (CLONE_VFORK suspends us until the child execs or exits, and it is unmapped
        // only after); `arg` points at `f`, which lives as long; we are the only thread
        // (checked), so the shared heap holds no lock of another thread.
        check_int(unsafe {
            libc::clone(
                start,
                top as *mut libc::c_void,
                flags,
                &mut f as *mut _ as *mut libc::c_void,
            )
        })
    });
    // SAFETY: the mapping made above, no longer used by anyone (the child has exec'd or exited).
    unsafe { libc::munmap(base, len) };
    pid
}

/// The fork-safety check: exactly one entry in /proc/self/task.
/// `EDEADLK` unless this process has exactly one thread.
pub fn require_single_thread() -> io::Result<()> {
    let n = std::fs::read_dir("/proc/self/task")?.take(2).count();
    if n == 1 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::EDEADLK))
    }
}

/// Resets every catchable signal to its default action (the runtime ignores SIGPIPE, and an
/// ignored disposition would survive exec).
pub fn default_signals() -> io::Result<()> {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: SIG_DFL is a valid disposition for every signal; the old value is discarded.
        let r = unsafe { libc::signal(sig, libc::SIG_DFL) };
        if r == libc::SIG_ERR && sig < 32 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `umask(mask)`; the old mask is discarded.
pub fn umask(mask: u32) {
    // SAFETY: umask only swaps the process's file-creation mask; it cannot fail.
    unsafe { libc::umask((mask & 0o777) as libc::mode_t) };
}

/// Ends this process at once, without running destructors or atexit handlers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// How a waited-for process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Exited(i32),
    Signaled(i32),
}

impl Status {
    pub fn from_raw(st: i32) -> Status {
        if libc::WIFSIGNALED(st) {
            Status::Signaled(libc::WTERMSIG(st))
        } else {
            Status::Exited(libc::WEXITSTATUS(st))
        }
    }
}

/// `waitpid(pid, 0)` (or any child with pid -1); `nohang` returns `Ok(None)` if none ended.
pub fn wait(pid: i32, nohang: bool) -> io::Result<Option<(i32, i32)>> {
    let mut st = 0;
    loop {
        // SAFETY: `st` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut st, if nohang { libc::WNOHANG } else { 0 }) };
        match check_int(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(0) => return Ok(None),
            Ok(p) => return Ok(Some((p, st))),
        }
    }
}

/// Sends `sig` to the process behind `pidfd` (immune to pid reuse).
pub fn pidfd_kill(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: a NULL siginfo and 0 flags are the documented "like kill(2)" form.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<u8>(),
            0,
        )
    })
    .map(drop)
}

/// `kill(pid, sig)`.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments.
    check_int(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// `setsid()`: a new session without a controlling terminal.
pub fn setsid() -> io::Result<()> {
    // SAFETY: plain syscall.
    check_int(unsafe { libc::setsid() }).map(drop)
}

/// `prctl(option, arg2, 0, 0, 0)`.
pub fn prctl(option: i32, arg2: u64) -> io::Result<i32> {
    // SAFETY: every option brig uses takes integer arguments only (no pointers).
    check_int(unsafe { libc::prctl(option, arg2 as libc::c_ulong, 0, 0, 0) })
}

/// `setrlimit(resource, {soft, hard})`.
pub fn setrlimit(resource: u32, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit { rlim_cur: soft, rlim_max: hard };
    // SAFETY: `lim` is a valid rlimit struct read by the kernel.
    check_int(unsafe { libc::setrlimit(resource as _, &lim) }).map(drop)
}

/// `sethostname(name)` for this UTS namespace.
pub fn sethostname(name: &str) -> io::Result<()> {
    // SAFETY: pointer and length describe `name`'s bytes exactly.
    check_int(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) }).map(drop)
}

/// `setns(fd, flags)`: with a pidfd, joins the namespaces of the process behind it named by the
/// CLONE_NEW* `flags`, all at once (the user namespace first); with a namespace file (from
/// /proc/PID/ns or a bind of one), joins that namespace, which must be of type `flags`.
pub fn setns(fd: BorrowedFd<'_>, flags: i32) -> io::Result<()> {
    // SAFETY: plain syscall with an fd and integer flags.
    check_int(unsafe { libc::setns(fd.as_raw_fd(), flags) }).map(drop)
}

/// `unshare(flags)`.
pub fn unshare(flags: i32) -> io::Result<()> {
    // SAFETY: plain syscall with an integer argument.
    check_int(unsafe { libc::unshare(flags) }).map(drop)
}

/// Starts `path` with `argv` and `envp` in a new process through `posix_spawn` (safe in a
/// multithreaded caller: no fork of its heap), with each `(fd, n)` of `fds` at number `n`,
/// inheritable. Every other fd the child gets is one without close-on-exec. Returns its pid.
pub fn spawn(
    path: &CStr,
    argv: &[CString],
    envp: &[CString],
    fds: &[(BorrowedFd<'_>, RawFd)],
) -> io::Result<i32> {
    // Copies above every target, so that placing one never overwrites the source of another.
    let above = fds.iter().map(|&(_, n)| n).max().unwrap_or(2) + 1;
    let copies = fds
        .iter()
        .map(|(fd, _)| crate::fdpass::dup_at_least(*fd, above))
        .collect::<io::Result<Vec<OwnedFd>>>()?;
    let mut a: Vec<*mut libc::c_char> = argv.iter().map(|s| s.as_ptr() as *mut _).collect();
    a.push(std::ptr::null_mut());
    let mut e: Vec<*mut libc::c_char> = envp.iter().map(|s| s.as_ptr() as *mut _).collect();
    e.push(std::ptr::null_mut());
    // SAFETY: an all-zero posix_spawn_file_actions_t is a valid place for init to write to.
    let mut actions: libc::posix_spawn_file_actions_t = unsafe { std::mem::zeroed() };
    // SAFETY: `actions` is ours and initialised before use, destroyed below on every path.
    check_spawn(unsafe { libc::posix_spawn_file_actions_init(&mut actions) })?;
    let mut r = Ok(());
    for (copy, &(_, n)) in copies.iter().zip(fds) {
        if r.is_ok() {
            // SAFETY: `actions` was initialised; `copy` stays open until after the spawn; dup2
            // in the child clears close-on-exec on `n`.
            let added = unsafe {
                libc::posix_spawn_file_actions_adddup2(&mut actions, copy.as_raw_fd(), n)
            };
            r = check_spawn(added);
        }
    }
    // SAFETY: an all-zero posix_spawnattr_t is a valid place for init to write to.
    let mut attr: libc::posix_spawnattr_t = unsafe { std::mem::zeroed() };
    // SAFETY: `attr` is ours and initialised before use, destroyed below on every path.
    let r = r.and_then(|_| check_spawn(unsafe { libc::posix_spawnattr_init(&mut attr) }));
    let r = r.and_then(|_| clean_signals(&mut attr));
    let mut pid: libc::pid_t = 0;
    let r = r.and_then(|_| {
        // SAFETY: `a` and `e` are NULL-terminated arrays of pointers into CStrings that
        // outlive the call (posix_spawn does not write through them); `actions` is valid.
        check_spawn(unsafe {
            libc::posix_spawn(&mut pid, path.as_ptr(), &actions, &attr, a.as_ptr(), e.as_ptr())
        })
    });
    // SAFETY: initialised above, not used after (destroying an attr whose init failed is
    // harmless with glibc and musl, which only free what init allocated: nothing).
    unsafe {
        libc::posix_spawn_file_actions_destroy(&mut actions);
        libc::posix_spawnattr_destroy(&mut attr);
    }
    r.map(|_| pid)
}

/// The spawned program starts with no signal blocked and every signal at its default action
/// (a caller may block some for a signalfd, and Rust's runtime ignores SIGPIPE: both would be
/// inherited through exec otherwise).
fn clean_signals(attr: &mut libc::posix_spawnattr_t) -> io::Result<()> {
    // SAFETY: sigset_t values are initialised by sigemptyset/sigfillset before being read;
    // `attr` was initialised by the caller.
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigfillset(&mut all);
        check_spawn(libc::posix_spawnattr_setsigmask(attr, &none))?;
        check_spawn(libc::posix_spawnattr_setsigdefault(attr, &all))?;
        let flags = libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;
        check_spawn(libc::posix_spawnattr_setflags(attr, flags as libc::c_short))
    }
}

/// A pidfd for `pid`, a child of this process not yet reaped (so the number is still it).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) })?;
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// posix_spawn's functions return the error number instead of setting errno.
fn check_spawn(r: libc::c_int) -> io::Result<()> {
    match r {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// `execve(path, argv, envp)`; returns only on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: `a` and `e` are NULL-terminated arrays of pointers into CStrings that outlive the
    // call; on success execve does not return.
    unsafe { libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr()) };
    io::Error::last_os_error()
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: executes the file `fd` refers to (an `O_PATH`
/// fd works), without a path lookup; returns only on failure.
pub fn execve_fd(fd: BorrowedFd<'_>, argv: &[CString], envp: &[CString]) -> io::Error {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: as `execve`; the empty path is a NUL-terminated literal and AT_EMPTY_PATH makes
    // the kernel use `fd` itself.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            a.as_ptr(),
            e.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// A set of signals.
#[derive(Clone, Copy)]
pub struct SigSet(libc::sigset_t);

impl std::fmt::Debug for SigSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigSet")
    }
}

impl SigSet {
    pub fn of(signals: &[i32]) -> SigSet {
        let mut s = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the whole set; sigaddset only writes into it.
        unsafe {
            libc::sigemptyset(s.as_mut_ptr());
            for &sig in signals {
                libc::sigaddset(s.as_mut_ptr(), sig);
            }
            SigSet(s.assume_init())
        }
    }

    /// Blocks these signals for the calling thread; returns the previous mask.
    pub fn block(&self) -> io::Result<SigSet> {
        let mut old = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: both pointers refer to sigset_t storage that lives across the call.
        let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &self.0, old.as_mut_ptr()) };
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        // SAFETY: pthread_sigmask succeeded and filled `old`.
        Ok(SigSet(unsafe { old.assume_init() }))
    }

    /// Replaces the signal mask with this set.
    pub fn set_mask(&self) -> io::Result<()> {
        // SAFETY: `self.0` is an initialised sigset; the old-mask pointer may be NULL.
        let r = unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(r))
        }
    }

    /// Waits for one of these (blocked) signals; `None` on timeout.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<Option<i32>> {
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        loop {
            let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: the set is initialised; the siginfo pointer may be NULL; `tsp` is NULL or
            // points at `ts`, alive across the call.
            let r = unsafe { libc::sigtimedwait(&self.0, std::ptr::null_mut(), tsp) };
            match check_int(r) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(None),
                r => return r.map(Some),
            }
        }
    }

    /// A signalfd for these signals (they must be blocked).
    pub fn signalfd(&self) -> io::Result<OwnedFd> {
        // SAFETY: -1 asks for a new fd; the set is initialised.
        let fd = check_int(unsafe {
            libc::signalfd(-1, &self.0, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
        })?;
        // SAFETY: fresh fd from the kernel, owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

/// Reads one pending signal number from a signalfd, if any.
pub fn read_signalfd(fd: BorrowedFd<'_>) -> io::Result<Option<i32>> {
    let mut info = std::mem::MaybeUninit::<libc::signalfd_siginfo>::uninit();
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: `info` is a writable buffer of exactly `size` bytes.
    let n = unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::WouldBlock { Ok(None) } else { Err(e) };
    }
    if n as usize != size {
        return Ok(None);
    }
    // SAFETY: the kernel wrote a whole signalfd_siginfo.
    Ok(Some(unsafe { info.assume_init() }.ssi_signo as i32))
}

/// Waits until one of `fds` is readable or `timeout` passes. Returns a readiness flag per fd.
pub fn poll_readable(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let asked: Vec<_> = fds.iter().map(|&f| (f, libc::POLLIN)).collect();
    Ok(poll(&asked, timeout)?.into_iter().map(|r| r != 0).collect())
}

/// `poll(2)` on `(fd, events)` pairs; returns each fd's `revents`. Restarts after EINTR.
pub fn poll(fds: &[(BorrowedFd<'_>, i16)], timeout: Option<Duration>) -> io::Result<Vec<i16>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|(f, ev)| libc::pollfd { fd: f.as_raw_fd(), events: *ev, revents: 0 })
        .collect();
    // Rounded up: a deadline less than a millisecond away must not poll with 0 in a loop.
    let ms = timeout.map_or(-1, |d| d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32);
    loop {
        // SAFETY: `p` is a valid array of `p.len()` pollfd structs.
        let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, ms) };
        match check_int(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok(p.iter().map(|x| x.revents).collect()),
        }
    }
}

/// Real uid and gid of the caller.
pub fn ids() -> (u32, u32) {
    // SAFETY: getuid/getgid cannot fail.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// The fields of /proc/PID/stat after the name (the state first), or None if `pid` is gone.
/// The name (field 2) may hold spaces and parentheses: fields are counted after the last ')'.
pub fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat[stat.rfind(')')? + 1..].split_whitespace().map(String::from).collect())
}

/// `pid`'s parent (/proc/PID/stat), or None if it is gone.
pub fn parent(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// Raw number of a borrowed fd, for messages and for the child's fd-table layout.
pub fn raw(fd: BorrowedFd<'_>) -> RawFd {
    fd.as_raw_fd()
}

/// Monotonic clock in nanoseconds (comparable across processes on this machine).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sets real, effective and saved uid and gid, and empties the supplementary groups unless
/// `keep_groups` (an unprivileged user namespace forbids setgroups).
pub fn become_ids(uid: u32, gid: u32, keep_groups: bool) -> io::Result<()> {
    if !keep_groups {
        // SAFETY: a zero-length list with a NULL pointer is the documented "no groups" form.
        check(unsafe { libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) })?;
    }
    // SAFETY: plain syscalls with integer arguments (raw syscalls: glibc's wrappers would try
    // to broadcast to threads, of which a fork-like clone child has none it knows of).
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })?;
    // SAFETY: as above.
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) })?;
    Ok(())
}

/// `setgroups(groups)`: the supplementary groups (raw syscall, as `become_ids`).
pub fn set_groups(groups: &[u32]) -> io::Result<()> {
    // SAFETY: `groups` is a valid array of gid_t (u32) of the given length, alive across the call.
    check(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) }).map(drop)
}

/// `pidfd_open(getpid())`, to see whether pidfds work.
pub fn pidfd_self() -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments; the returned fd is wrapped and closed.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) })?;
    // SAFETY: fresh fd from the kernel.
    drop(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
    Ok(())
}

/// Calls clone3 with a too-small argument: EINVAL means the syscall exists, ENOSYS it does not.
/// No process is created either way.
pub fn clone3_probe() -> io::Result<String> {
    // SAFETY: size 0 is rejected by the kernel before it reads the (NULL) argument pointer.
    let r = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) };
    let e = io::Error::last_os_error();
    match (r, e.raw_os_error()) {
        (-1, Some(libc::EINVAL)) => Ok("present (brig's filter answers ENOSYS inside)".into()),
        _ => Err(e),
    }
}

/// `keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)`: a new anonymous session keyring for this
/// process (and its children), replacing the inherited one.
pub fn join_new_session_keyring() -> io::Result<()> {
    // SAFETY: a NULL name asks for an anonymous keyring; the other arguments are unused.
    check(unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
            0,
            0,
            0,
        )
    })
    .map(drop)
}

/// Replaces this process's command line, as `/proc/PID/cmdline` shows it, with `name` followed
/// by NUL bytes: the argument strings the kernel placed on the stack at exec are overwritten in
/// place (through `/proc/self/mem`, the range from `/proc/self/stat`), so whoever can read the
/// process's cmdline no longer sees the arguments. Anything that later reads `std::env::args`
/// in this process sees the new, shorter strings (still NUL-terminated).
pub fn blank_cmdline(name: &str) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    // arg_start and arg_end are fields 48 and 49 of stat(5); `fields[0]` is field 3.
    let num = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok());
    let (Some(start), Some(end)) = (num(48), num(49)) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    let len = end.saturating_sub(start) as usize;
    let mut text = vec![0u8; len];
    let keep = name.len().min(len.saturating_sub(1));
    text[..keep].copy_from_slice(&name.as_bytes()[..keep]);
    let mem = std::fs::OpenOptions::new().write(true).open("/proc/self/mem")?;
    mem.write_all_at(&text, start)
}
