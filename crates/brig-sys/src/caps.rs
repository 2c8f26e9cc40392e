//! Capabilities: empty the bounding, ambient, effective, permitted and inheritable sets and lock
//! the securebits so that no later exec (of a setuid file or as uid 0) can give any back.

use std::io;

use crate::check_int;
use crate::process::prctl;

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops every capability in every set. Needs CAP_SETPCAP (held in our own user namespace).
pub fn drop_all() -> io::Result<()> {
    // Bounding set: drop until the kernel says the number is past the last capability.
    for cap in 0..64 {
        match prctl(libc::PR_CAPBSET_DROP, cap) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
            Err(e) => return Err(e),
        }
    }
    prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as u64)?;
    // NOROOT: uid 0 gains no capabilities at exec; NO_SETUID_FIXUP and KEEP_CAPS pinned off;
    // NO_CAP_AMBIENT_RAISE; every bit locked.
    let bits = libc::SECBIT_NOROOT
        | libc::SECBIT_NOROOT_LOCKED
        | libc::SECBIT_NO_SETUID_FIXUP
        | libc::SECBIT_NO_SETUID_FIXUP_LOCKED
        | libc::SECBIT_KEEP_CAPS_LOCKED
        | libc::SECBIT_NO_CAP_AMBIENT_RAISE
        | libc::SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    prctl(libc::PR_SET_SECUREBITS, bits as u64)?;
    let mut hdr = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    let data = [CapData { effective: 0, permitted: 0, inheritable: 0 }; 2];
    // SAFETY: version 3 takes a header and exactly two CapData structs, which `data` is.
    check_int(unsafe {
        libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) as libc::c_int
    })
    .map(drop)
}
