//! brig-sys: the one crate of brig that contains `unsafe`.
//!
//! Every function here wraps one kernel interface, takes and returns owned or borrowed fds (never
//! raw integers across the API), and returns `std::io::Error` from errno. Nothing here decides
//! policy; the callers in `brig-jail` do.
#![cfg(target_os = "linux")]

pub mod caps;
pub mod fdpass;
pub mod fs;
#[cfg(feature = "kvm")]
pub mod kvm;
pub mod landlock;
pub mod mount;
pub mod net;
pub mod notify;
pub mod process;
pub mod seccomp;
pub mod tty;

use std::io;

/// Turns a `-1`-on-error return into `io::Result`, reading errno.
pub(crate) fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Same as [`check`] for calls that return `c_int`.
pub(crate) fn check_int(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// A path as a NUL-terminated string, or `InvalidInput` if it contains a NUL byte.
pub(crate) fn cstr(s: &std::path::Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(s.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// Fills `buf` from the kernel's random pool (`getrandom(2)`, blocking until it is seeded).
pub fn getrandom(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let rest = &mut buf[done..];
        // SAFETY: the kernel writes at most `rest.len()` bytes into `rest`, which we own mutably.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match n {
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            -1 => return Err(io::Error::last_os_error()),
            n => done += n as usize,
        }
    }
    Ok(())
}
