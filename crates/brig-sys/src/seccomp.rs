//! Installing a classic-BPF seccomp filter.

/// One classic BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// Classic-BPF encoding for seccomp programs: the kernel's opcodes, offsets and return values.
pub mod bpf {
    use super::SockFilter;

    /// `AUDIT_ARCH_X86_64`: EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
    pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    /// `SECCOMP_RET_KILL_PROCESS`.
    pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
    /// `SECCOMP_RET_ERRNO`; the errno goes in the low 16 bits.
    pub const RET_ERRNO: u32 = 0x0005_0000;
    /// `SECCOMP_RET_ALLOW`.
    pub const RET_ALLOW: u32 = 0x7FFF_0000;
    /// `SECCOMP_RET_USER_NOTIF`: the call waits for the supervisor's answer (`notify`).
    pub const RET_USER_NOTIF: u32 = 0x7FC0_0000;
    /// `__X32_SYSCALL_BIT`: x32 calls share the x86_64 arch value and are told apart by this bit.
    pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

    pub const LD_W_ABS: u16 = 0x20;
    pub const JA: u16 = 0x05;
    pub const JEQ_K: u16 = 0x15;
    pub const JGE_K: u16 = 0x35;
    pub const JSET_K: u16 = 0x45;
    pub const RET_K: u16 = 0x06;
    pub const ALU_AND_K: u16 = 0x54;

    /// Offsets in `struct seccomp_data` (little-endian: an argument's low 32 bits come first).
    pub const NR: u32 = 0;
    pub const ARCH: u32 = 4;
    pub const fn arg_low(i: u32) -> u32 {
        16 + 8 * i
    }
    pub const fn arg_high(i: u32) -> u32 {
        20 + 8 * i
    }

    pub const fn ins(code: u16, jt: u8, jf: u8, k: u32) -> SockFilter {
        SockFilter { code, jt, jf, k }
    }

    pub const fn ret(k: u32) -> SockFilter {
        ins(RET_K, 0, 0, k)
    }

    /// The `SECCOMP_RET_ERRNO` value for `errno`.
    pub const fn errno(errno: i32) -> u32 {
        RET_ERRNO | (errno as u32 & 0xFFFF)
    }
}

/// Installs `prog` as a seccomp filter on the calling thread. no_new_privs must already be set.
pub fn install(prog: &[SockFilter]) -> std::io::Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: SockFilter is repr(C) with the layout of struct sock_filter; `fprog` points at
    // `prog.len()` of them, alive across the call (the kernel copies the program).
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        )
    };
    crate::check(r).map(drop)
}

/// Whether seccomp user notification is available (`SECCOMP_GET_NOTIF_SIZES`).
pub fn notif_available() -> bool {
    let mut sizes = [0u16; 3];
    // SAFETY: SECCOMP_GET_NOTIF_SIZES writes a struct of three u16 into `sizes`.
    let r = unsafe {
        libc::syscall(libc::SYS_seccomp, libc::SECCOMP_GET_NOTIF_SIZES, 0, sizes.as_mut_ptr())
    };
    r == 0
}

/// Installs `prog` like [`install`], with a user-notification listener: the returned fd
/// receives the calls the program answers with `SECCOMP_RET_USER_NOTIF` (see `notify`). A
/// process waiting for an answer stays killable once its notification was received
/// (`SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`), so a slow supervisor cannot make it unkillable.
pub fn install_with_listener(prog: &[SockFilter]) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    let flags =
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    // SAFETY: as in `install`; with NEW_LISTENER the kernel returns a new close-on-exec fd.
    let fd = crate::check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    })?;
    // SAFETY: just returned by the kernel; nobody else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}
