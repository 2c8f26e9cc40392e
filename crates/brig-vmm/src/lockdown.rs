//! The last filters a device process and the VMM install on themselves once they are set up:
//! from then on no new shared mapping (of guest memory or anything else), nothing executable,
//! and for the VMM no KVM request but running the vCPU and reading its registers; on top of
//! each prison's allow-list. Reviewed data, like brig's own tables.

use brig_sys::seccomp::bpf::*;
use brig_sys::seccomp::SockFilter;

const MMAP: u32 = libc::SYS_mmap as u32;
const MPROTECT: u32 = libc::SYS_mprotect as u32;
const PKEY_MPROTECT: u32 = libc::SYS_pkey_mprotect as u32;
const IOCTL: u32 = libc::SYS_ioctl as u32;
/// MAP_SHARED's bit, which MAP_SHARED_VALIDATE (0x3) also has and MAP_PRIVATE (0x2) has not.
const MAP_SHARED: u32 = libc::MAP_SHARED as u32;
const PROT_EXEC: u32 = libc::PROT_EXEC as u32;

/// The filter: mmap with MAP_SHARED or PROT_EXEC, mprotect or pkey_mprotect with PROT_EXEC,
/// and every ioctl but `ioctls` fail with EPERM; everything else goes on to the prison's
/// filters. Jumps are counted from the next instruction, so the layout is fixed: the mmap
/// checks at 9, the protection check at 11, the ioctl checks at 13, then deny, then allow.
fn program(ioctls: &[u32]) -> Vec<SockFilter> {
    let n = ioctls.len() as u8;
    let mut p = vec![
        ins(LD_W_ABS, 0, 0, ARCH),
        ins(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        ret(RET_KILL_PROCESS),
        ins(LD_W_ABS, 0, 0, NR),
        ins(JEQ_K, 4, 0, MMAP),               // 4 -> 9
        ins(JEQ_K, 5, 0, MPROTECT),           // 5 -> 11
        ins(JEQ_K, 4, 0, PKEY_MPROTECT),      // 6 -> 11
        ins(JEQ_K, 5, 0, IOCTL),              // 7 -> 13
        ret(RET_ALLOW),                       // 8
        ins(LD_W_ABS, 0, 0, arg_low(3)),      // 9: mmap's flags
        ins(JSET_K, 3 + n, 0, MAP_SHARED),    // 10 -> deny
        ins(LD_W_ABS, 0, 0, arg_low(2)),      // 11: the prot of mmap, mprotect, pkey_mprotect
        ins(JSET_K, 1 + n, 2 + n, PROT_EXEC), // 12 -> deny or allow
        ins(LD_W_ABS, 0, 0, arg_low(1)),      // 13: ioctl's request
    ];
    for (k, req) in ioctls.iter().enumerate() {
        p.push(ins(JEQ_K, n - k as u8, 0, *req)); // -> allow
    }
    p.push(ret(errno(libc::EPERM))); // 14 + n
    p.push(ret(RET_ALLOW)); // 15 + n
    p
}

/// A device's, once it has mapped guest memory (it has no ioctl at all).
pub fn device() -> std::io::Result<()> {
    brig_sys::seccomp::install(&program(&[]))
}

/// `_IOR(KVMIO, nr, size)`.
const fn kvm_ior(nr: u32, size: usize) -> u32 {
    0x8000_0000 | ((size as u32) << 16) | (0xae << 8) | nr
}
/// What the VMM still asks of KVM once the machine is built: run the vCPU, and read its
/// registers to say where a VM that stopped stopped.
pub const VMM_IOCTLS: [u32; 3] = [
    0xae80,                                                        // KVM_RUN
    kvm_ior(0x81, std::mem::size_of::<kvm_bindings::kvm_regs>()),  // KVM_GET_REGS
    kvm_ior(0x83, std::mem::size_of::<kvm_bindings::kvm_sregs>()), // KVM_GET_SREGS
];

/// The VMM's, once the machine is built and the devices attached: no new VM, vCPU, memory
/// slot or ioeventfd, no new shared or executable mapping.
pub fn vmm() -> std::io::Result<()> {
    brig_sys::seccomp::install(&program(&VMM_IOCTLS))
}
