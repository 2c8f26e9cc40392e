//! Network operations: bring up loopback in a fresh network namespace; what the broker needs to
//! judge and perform a `listen` (a socket's namespace and local address).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::check_int;

/// Sets IFF_UP on `lo` (ioctl SIOCGIFFLAGS/SIOCSIFFLAGS on a datagram socket).
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket creation; the fd is wrapped at once.
    let s = check_int(unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: fresh fd from the kernel, owned by nobody else.
    let s = unsafe { OwnedFd::from_raw_fd(s) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes ifru_flags inside `ifr`, which we own.
    check_int(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) })?;
    // SAFETY: the union member written by SIOCGIFFLAGS is ifru_flags.
    unsafe { ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads the name and flags from `ifr`.
    check_int(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) }).map(drop)
}

/// `SIOCGSKNS`: an fd of the network namespace a socket belongs to. Needs CAP_NET_ADMIN over
/// that namespace: EPERM for a socket of a namespace the caller does not own.
const SIOCGSKNS: libc::c_ulong = 0x894C;

/// The network namespace of socket `fd` (see [`SIOCGSKNS`]).
pub fn socket_netns(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: SIOCGSKNS takes no argument and returns a new fd that only we own.
    let ns = check_int(unsafe { libc::ioctl(fd.as_raw_fd(), SIOCGSKNS) })?;
    // SAFETY: just returned by the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(ns) })
}

/// `listen(fd, backlog)`.
pub fn listen(fd: BorrowedFd<'_>, backlog: i32) -> io::Result<()> {
    // SAFETY: integer arguments only.
    check_int(unsafe { libc::listen(fd.as_raw_fd(), backlog) }).map(drop)
}

/// The socket's local address as the kernel gives it (`getsockname`), raw bytes: compared, never
/// interpreted.
pub fn local_addr(fd: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `ss` has room for `len` bytes; the kernel writes at most that and sets `len`.
    check_int(unsafe {
        libc::getsockname(fd.as_raw_fd(), &mut ss as *mut _ as *mut libc::sockaddr, &mut len)
    })?;
    // SAFETY: `ss` is `size_of::<sockaddr_storage>()` bytes; `len` is clamped to that.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            &ss as *const _ as *const u8,
            (len as usize).min(std::mem::size_of::<libc::sockaddr_storage>()),
        )
    };
    Ok(bytes.to_vec())
}

/// Whether the socket is listening (`SO_ACCEPTCONN`).
pub fn is_listening(fd: BorrowedFd<'_>) -> io::Result<bool> {
    getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN).map(|v| v != 0)
}

/// `getsockopt(fd, level, name)` for options that are an int (`SO_TYPE`, `SO_ACCEPTCONN`).
pub fn getsockopt_int(fd: BorrowedFd<'_>, level: i32, name: i32) -> io::Result<i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes (one int) into `v`, alive for the call.
    check_int(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            &mut v as *mut libc::c_int as *mut libc::c_void,
            &mut len,
        )
    })?;
    Ok(v)
}

/// `setsockopt(fd, level, name, &value, sizeof(int))`: for options that take an int.
pub fn setsockopt_int(fd: BorrowedFd<'_>, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: the kernel reads `size_of::<c_int>()` bytes from `&value`, alive for the call.
    check_int(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            &value as *const i32 as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Sets how long a blocking receive on `fd` waits before failing with EAGAIN (`SO_RCVTIMEO`;
/// zero would mean forever, so it is at least 1 µs).
pub fn set_recv_timeout(fd: BorrowedFd<'_>, wait: std::time::Duration) -> io::Result<()> {
    let micros = wait.as_micros().clamp(1, i64::MAX as u128) as i64;
    let tv = libc::timeval {
        tv_sec: (micros / 1_000_000) as libc::time_t,
        tv_usec: (micros % 1_000_000) as libc::suseconds_t,
    };
    // SAFETY: the kernel reads one `struct timeval` from `tv`, alive for the call.
    check_int(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    })
    .map(drop)
}
