//! A device process's own last filter, installed once it has mapped guest memory: from then on
//! no new shared mapping (of guest memory or anything else) and nothing executable, on top of
//! the prison's allow-list. Reviewed data, like brig's own tables.

use brig_sys::seccomp::bpf::*;
use brig_sys::seccomp::SockFilter;

const MMAP: u32 = libc::SYS_mmap as u32;
const MPROTECT: u32 = libc::SYS_mprotect as u32;
const PKEY_MPROTECT: u32 = libc::SYS_pkey_mprotect as u32;
/// MAP_SHARED's bit, which MAP_SHARED_VALIDATE (0x3) also has and MAP_PRIVATE (0x2) has not.
const MAP_SHARED: u32 = libc::MAP_SHARED as u32;
const PROT_EXEC: u32 = libc::PROT_EXEC as u32;

/// The filter: mmap with MAP_SHARED or PROT_EXEC, mprotect or pkey_mprotect with PROT_EXEC
/// fail with EPERM; everything else goes on to the prison's filters.
pub fn program() -> Vec<SockFilter> {
    let deny = errno(libc::EPERM);
    vec![
        ins(LD_W_ABS, 0, 0, ARCH),
        ins(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        ret(RET_KILL_PROCESS),
        ins(LD_W_ABS, 0, 0, NR),
        ins(JEQ_K, 3, 0, MMAP),          // 4 -> 8
        ins(JEQ_K, 4, 0, MPROTECT),      // 5 -> 10
        ins(JEQ_K, 3, 0, PKEY_MPROTECT), // 6 -> 10
        ret(RET_ALLOW),                  // 7
        ins(LD_W_ABS, 0, 0, arg_low(3)), // 8: mmap's flags
        ins(JSET_K, 2, 0, MAP_SHARED),   // 9 -> 12
        ins(LD_W_ABS, 0, 0, arg_low(2)), // 10: the prot of mmap, mprotect, pkey_mprotect
        ins(JSET_K, 0, 1, PROT_EXEC),    // 11 -> 12 or 13
        ret(deny),                       // 12
        ret(RET_ALLOW),                  // 13
    ]
}

/// Installs [`program`] on the calling (only) thread.
pub fn enter() -> std::io::Result<()> {
    brig_sys::seccomp::install(&program())
}
