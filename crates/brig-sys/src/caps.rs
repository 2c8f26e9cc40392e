//! Capabilities: empty the bounding, ambient, effective, permitted and inheritable sets and lock
//! the securebits so that no later exec (of a setuid file or as uid 0) can give any back; or, for
//! an OCI config, keep exactly the sets it names.

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
    drop_bounding(0)?;
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
    capset(0, 0, 0)
}

/// Keeps exactly these sets (bit masks), as an OCI config gives them: the bounding set, then
/// effective, permitted and inheritable, then the ambient set raised cap by cap (each must be
/// permitted and inheritable). The securebits are cleared, so uid 0 gains its bounding set at
/// exec as under runc. Needs CAP_SETPCAP.
pub fn set(
    bounding: u64,
    effective: u64,
    permitted: u64,
    inheritable: u64,
    ambient: u64,
) -> io::Result<()> {
    drop_bounding(bounding)?;
    prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as u64)?;
    prctl(libc::PR_SET_SECUREBITS, 0)?;
    capset(effective, permitted, inheritable)?;
    for cap in (0..64).filter(|c| ambient & (1 << c) != 0) {
        // SAFETY: PR_CAP_AMBIENT takes integer arguments only.
        check_int(unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE,
                cap as libc::c_ulong,
                0,
                0,
            )
        })?;
    }
    Ok(())
}

/// Drops from the bounding set every capability not in `keep`, until the kernel says the
/// number is past the last capability.
fn drop_bounding(keep: u64) -> io::Result<()> {
    for cap in (0..64).filter(|c| keep & (1 << c) == 0) {
        match prctl(libc::PR_CAPBSET_DROP, cap) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn capset(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    let mut hdr = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    let half = |m: u64, i: u32| (m >> (32 * i)) as u32;
    let data = [0, 1].map(|i| CapData {
        effective: half(effective, i),
        permitted: half(permitted, i),
        inheritable: half(inheritable, i),
    });
    // SAFETY: version 3 takes a header and exactly two CapData structs, which `data` is.
    check_int(unsafe {
        libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) as libc::c_int
    })
    .map(drop)
}
