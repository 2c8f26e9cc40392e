//! The one network operation brig does itself: bring up loopback in a fresh network namespace.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

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
