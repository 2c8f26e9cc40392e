//! brig-sys: the one crate of brig that contains `unsafe`.
//!
//! Every function here wraps one kernel interface, takes and returns owned or borrowed fds (never
//! raw integers across the API), and returns `std::io::Error` from errno. Nothing here decides
//! policy; the callers in `brig-jail` do.
#![cfg(target_os = "linux")]

pub mod caps;
pub mod fdpass;
pub mod fs;
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
