//! seccomp user notification (the supervisor's side) and the two calls the broker acts with:
//! `pidfd_open` and `pidfd_getfd`. Installing a filter with a listener is in `seccomp.rs`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::{check, check_int};

/// One notification: which process asked for which syscall, with its raw arguments. The
/// arguments are the program's words, not trusted: a broker reads fds through `pidfd_getfd`
/// and never acts on memory it would have to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notif {
    pub id: u64,
    /// The asking thread, as a pid of the supervisor's pid namespace.
    pub pid: u32,
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
}

/// Receives the next notification (blocks unless `fd` polled readable). `ENOENT` means the
/// asking process went away between poll and receive.
pub fn recv(fd: BorrowedFd<'_>) -> io::Result<Notif> {
    // SAFETY: seccomp_notif is plain old data; the kernel requires it zeroed before RECV.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: SECCOMP_IOCTL_NOTIF_RECV writes one `struct seccomp_notif` into `n`, which we own
    // and which has exactly that layout (libc's definition of the UAPI struct).
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut n) })?;
    Ok(Notif { id: n.id, pid: n.pid, nr: n.data.nr, arch: n.data.arch, args: n.data.args })
}

/// Answers notification `id`: the syscall returns `val` when `error` is 0, else fails with
/// `error` (a positive errno). Never continues the call: the broker has acted, or refuses.
pub fn respond(fd: BorrowedFd<'_>, id: u64, val: i64, error: i32) -> io::Result<()> {
    let resp = libc::seccomp_notif_resp { id, val, error: -error, flags: 0 };
    // SAFETY: SECCOMP_IOCTL_NOTIF_SEND reads one `struct seccomp_notif_resp` from `resp`.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) })
        .map(drop)
}

/// Whether notification `id` is still pending (its process alive and still waiting): checked
/// after taking anything from the process and before acting on it, so a recycled pid cannot
/// make the broker act for another process.
pub fn id_valid(fd: BorrowedFd<'_>, id: u64) -> bool {
    // SAFETY: SECCOMP_IOCTL_NOTIF_ID_VALID reads one u64 from the pointer, alive for the call.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0 }
}

/// A pidfd for thread `tid` (a notification's asker is a thread, often not its process's
/// first): `pidfd_open(tid, PIDFD_THREAD)` (Linux 6.9), else one for its thread group, read from
/// `/proc/TID/status`. Either reaches the process's fd table (`pidfd_getfd`).
pub fn pidfd_open(tid: u32) -> io::Result<OwnedFd> {
    const PIDFD_THREAD: libc::c_long = libc::O_EXCL as libc::c_long;
    let open = |pid: u32, flags: libc::c_long| {
        // SAFETY: integer arguments only; the kernel returns a new fd that only we own.
        let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, flags) })?;
        // SAFETY: just returned by the kernel.
        Ok::<_, io::Error>(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    };
    match open(tid, PIDFD_THREAD) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let status = std::fs::read_to_string(format!("/proc/{tid}/status"))?;
            let tgid = status
                .lines()
                .find_map(|l| l.strip_prefix("Tgid:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
            open(tgid, 0)
        }
        r => r,
    }
}

/// `pidfd_getfd(pidfd, target, 0)`: a close-on-exec duplicate of the process's fd `target` (the
/// same open file description). Needs ptrace access to the process.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, target: i32) -> io::Result<OwnedFd> {
    // SAFETY: integer arguments only; the kernel returns a new fd that only we own.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0) })?;
    // SAFETY: just returned by the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Installs a duplicate of `fd` in the asking process and answers notification `id` with its
/// number, in one step (`SECCOMP_ADDFD_FLAG_SEND`): the call returns the new fd. `cloexec`
/// sets close-on-exec on it.
pub fn answer_with_fd(
    notif: BorrowedFd<'_>,
    id: u64,
    fd: BorrowedFd<'_>,
    cloexec: bool,
) -> io::Result<i32> {
    let addfd = libc::seccomp_notif_addfd {
        id,
        flags: libc::SECCOMP_ADDFD_FLAG_SEND as u32,
        srcfd: fd.as_raw_fd() as u32,
        newfd: 0,
        newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
    };
    // SAFETY: SECCOMP_IOCTL_NOTIF_ADDFD reads one `struct seccomp_notif_addfd` from `addfd`.
    check_int(unsafe { libc::ioctl(notif.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) })
}

/// Lets the kernel run the call as asked (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`). Only for calls
/// the broker observes: whatever it read decides nothing, because Landlock, the mount view and
/// the rest of the filter still judge the call in the kernel.
pub fn continue_call(fd: BorrowedFd<'_>, id: u64) -> io::Result<()> {
    let resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error: 0,
        flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
    };
    // SAFETY: SECCOMP_IOCTL_NOTIF_SEND reads one `struct seccomp_notif_resp` from `resp`.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) })
        .map(drop)
}

/// Reads up to `buf.len()` bytes at `addr` in process `pid` (`process_vm_readv`): how many
/// were readable, stopping at the first unmapped page. The other process's memory is only
/// copied, never mapped, so it cannot change what was read afterwards.
pub fn read_mem(pid: u32, addr: u64, buf: &mut [u8]) -> io::Result<usize> {
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as usize as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: the local iovec covers exactly `buf`, which we own mutably for the call; the
    // remote address is only read by the kernel in the other process, checked there.
    let n = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    check(n as libc::c_long).map(|n| n as usize)
}

/// Reads the NUL-terminated string at `addr` in process `pid`, at most `max` bytes before the
/// NUL: `Ok(None)` when it is longer, unterminated or unreadable before its end. Reads page by
/// page, so a string ending just before an unmapped page is read whole.
pub fn read_cstr(pid: u32, addr: u64, max: usize) -> io::Result<Option<Vec<u8>>> {
    const PAGE: u64 = 4096;
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() <= max {
        let room = (PAGE - at % PAGE).min((max + 1 - out.len()) as u64) as usize;
        let mut chunk = [0u8; PAGE as usize];
        let n = match read_mem(pid, at, &mut chunk[..room]) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::EFAULT) => return Ok(None),
            Err(e) => return Err(e),
        };
        if let Some(end) = chunk[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Ok(Some(out));
        }
        if n < room {
            return Ok(None);
        }
        out.extend_from_slice(&chunk[..n]);
        at = match at.checked_add(n as u64) {
            Some(a) => a,
            None => return Ok(None),
        };
    }
    Ok(None)
}

/// Installs a duplicate of `fd` in the asking process at number `target`, replacing what was
/// there (`SECCOMP_ADDFD_FLAG_SETFD`, as dup2 would), without answering: the caller answers
/// after. Used to swap a socket the broker connected for the one the program asked with.
pub fn replace_fd(
    notif: BorrowedFd<'_>,
    id: u64,
    fd: BorrowedFd<'_>,
    target: i32,
    cloexec: bool,
) -> io::Result<()> {
    let addfd = libc::seccomp_notif_addfd {
        id,
        flags: libc::SECCOMP_ADDFD_FLAG_SETFD as u32,
        srcfd: fd.as_raw_fd() as u32,
        newfd: target as u32,
        newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
    };
    // SAFETY: SECCOMP_IOCTL_NOTIF_ADDFD reads one `struct seccomp_notif_addfd` from `addfd`.
    check_int(unsafe { libc::ioctl(notif.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) })
        .map(drop)
}
