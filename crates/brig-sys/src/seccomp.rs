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
