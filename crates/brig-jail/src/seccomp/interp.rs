//! A classic-BPF interpreter for seccomp programs: the tests check the compiled filter against
//! the table rule by rule with it, the way Firecracker validates its filters.

use brig_sys::seccomp::SockFilter;

/// Evaluates `prog` on one syscall. Returns the `SECCOMP_RET_*` value and the number of
/// instructions executed; errors on a malformed program.
pub fn run(
    prog: &[SockFilter],
    arch: u32,
    nr: u32,
    args: [u64; 6],
    ip: u64,
) -> Result<(u32, usize), String> {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    data[8..16].copy_from_slice(&ip.to_le_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
    }
    let (mut a, mut x, mut pc, mut steps) = (0u32, 0u32, 0usize, 0usize);
    let mut mem = [0u32; 16];
    loop {
        let ins = prog.get(pc).ok_or_else(|| format!("fell off the end at {pc}"))?;
        steps += 1;
        let k = ins.k;
        let jump = |cond: bool| -> Result<usize, String> {
            let next = pc + 1 + if cond { ins.jt as usize } else { ins.jf as usize };
            if next >= prog.len() {
                Err(format!("jump out of range at {pc}"))
            } else {
                Ok(next)
            }
        };
        pc = match ins.code {
            0x20 => {
                // ld [k]
                let k = k as usize;
                if !k.is_multiple_of(4) || k + 4 > 64 {
                    return Err(format!("bad load offset {k}"));
                }
                a = u32::from_le_bytes([data[k], data[k + 1], data[k + 2], data[k + 3]]);
                pc + 1
            }
            0x00 => {
                a = k;
                pc + 1
            }
            0x01 => {
                x = k;
                pc + 1
            }
            0x02 => {
                *mem.get_mut(k as usize).ok_or("bad st")? = a;
                pc + 1
            }
            0x60 => {
                a = *mem.get(k as usize).ok_or("bad ld mem")?;
                pc + 1
            }
            0x54 => {
                a &= k;
                pc + 1
            }
            0x87 => {
                a = x;
                pc + 1
            }
            0x05 => {
                let next = pc + 1 + k as usize;
                if next >= prog.len() {
                    return Err(format!("ja out of range at {pc}"));
                }
                next
            }
            0x15 => jump(a == k)?,
            0x25 => jump(a > k)?,
            0x35 => jump(a >= k)?,
            0x45 => jump(a & k != 0)?,
            0x06 => return Ok((k, steps)),
            0x16 => return Ok((a, steps)),
            c => return Err(format!("unsupported opcode {c:#x} at {pc}")),
        };
    }
}
