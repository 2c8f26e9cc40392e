//! A classic-BPF interpreter for seccomp programs, written from the kernel's rules rather than
//! from the compiler, so the tests can check the compiled filter against the table syscall by
//! syscall (the way Firecracker validates its filters).
//!
//! `validate` applies the checks the kernel makes when the filter is installed
//! (`bpf_check_classic` and `seccomp_check_filter`): length, the instruction subset seccomp
//! accepts, loads inside `struct seccomp_data`, jumps inside the program, a return at the end.
//! `evaluate` then runs the program on one syscall as the kernel would.

use brig_sys::seccomp::SockFilter;

/// BPF_MAXINSNS: the longest program the kernel accepts.
pub const MAX_INSNS: usize = 4096;
/// `sizeof(struct seccomp_data)`: nr u32, arch u32, instruction_pointer u64, args [u64; 6].
pub const SECCOMP_DATA_LEN: u32 = 64;
/// BPF_MEMWORDS: scratch memory slots.
const MEMWORDS: u32 = 16;

// Instruction classes and fields, as in <linux/bpf_common.h>.
const CLASS: u16 = 0x07;
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const SIZE_MODE: u16 = 0xf8; // size | mode of a load
const W_ABS: u16 = 0x20;
const W_LEN: u16 = 0x80;
const MEM: u16 = 0x60;
const OP: u16 = 0xf0;
const SRC_X: u16 = 0x08;
const RVAL: u16 = 0x18;
const RVAL_A: u16 = 0x10;

/// Runs `prog` on one syscall and returns its `SECCOMP_RET_*` value. Errors when the kernel would
/// refuse the program (bad jump, no final return, unsupported opcode, ...).
pub fn evaluate(
    prog: &[SockFilter],
    arch: u32,
    nr: u32,
    args: [u64; 6],
    ip: u64,
) -> Result<u32, String> {
    evaluate_counted(prog, arch, nr, args, ip).map(|(ret, _)| ret)
}

/// As `evaluate`, also returning how many instructions ran: the cost of this syscall.
pub fn evaluate_counted(
    prog: &[SockFilter],
    arch: u32,
    nr: u32,
    args: [u64; 6],
    ip: u64,
) -> Result<(u32, usize), String> {
    validate(prog)?;
    let mut data = [0u8; SECCOMP_DATA_LEN as usize];
    data[0..4].copy_from_slice(&nr.to_le_bytes());
    data[4..8].copy_from_slice(&arch.to_le_bytes());
    data[8..16].copy_from_slice(&ip.to_le_bytes());
    for (i, arg) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_le_bytes());
    }
    run(prog, &data)
}

/// The load-time checks of the kernel; see the module documentation.
pub fn validate(prog: &[SockFilter]) -> Result<(), String> {
    if prog.is_empty() || prog.len() > MAX_INSNS {
        return Err(format!("program length {} outside 1..={MAX_INSNS}", prog.len()));
    }
    for (pc, ins) in prog.iter().enumerate() {
        let (code, k) = (ins.code, ins.k);
        let bad = |what: &str| Err(format!("{what} at {pc} (code {code:#06x}, k {k:#x})"));
        let after = (prog.len() - pc - 1) as u64; // instructions after this one
        match code {
            // ld [k]: the only data load seccomp has, 32-bit aligned inside seccomp_data.
            0x20 if k >= SECCOMP_DATA_LEN || k % 4 != 0 => {
                return bad("load outside seccomp_data or unaligned")
            }
            0x20 => {}
            // ld/ldx len, ld/ldx #k
            0x80 | 0x81 | 0x00 | 0x01 => {}
            // ld/ldx M[k], st/stx M[k]
            0x60 | 0x61 | 0x02 | 0x03 if k >= MEMWORDS => return bad("scratch slot out of range"),
            0x60 | 0x61 | 0x02 | 0x03 => {}
            // add sub mul div or and lsh rsh xor (K and X), neg. No mod: seccomp refuses it.
            0x34 if k == 0 => return bad("division by constant zero"),
            0x64 | 0x74 if k >= 32 => return bad("shift by 32 or more"),
            0x04 | 0x0c | 0x14 | 0x1c | 0x24 | 0x2c | 0x34 | 0x3c | 0x44 | 0x4c | 0x54 | 0x5c
            | 0x64 | 0x6c | 0x74 | 0x7c | 0x84 | 0xa4 | 0xac => {}
            // ja k
            0x05 if u64::from(k) >= after => return bad("jump out of range"),
            0x05 => {}
            // jeq jgt jge jset (K and X)
            0x15 | 0x1d | 0x25 | 0x2d | 0x35 | 0x3d | 0x45 | 0x4d
                if u64::from(ins.jt) >= after || u64::from(ins.jf) >= after =>
            {
                return bad("jump out of range")
            }
            0x15 | 0x1d | 0x25 | 0x2d | 0x35 | 0x3d | 0x45 | 0x4d => {}
            // ret k, ret a, tax, txa
            0x06 | 0x16 | 0x07 | 0x87 => {}
            _ => return bad("unsupported opcode"),
        }
    }
    match prog[prog.len() - 1].code {
        0x06 | 0x16 => Ok(()),
        _ => Err("program does not end with a return".to_string()),
    }
}

/// Runs a validated program. Jumps only go forward, so it ends within `prog.len()` steps.
fn run(
    prog: &[SockFilter],
    data: &[u8; SECCOMP_DATA_LEN as usize],
) -> Result<(u32, usize), String> {
    let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
    let mut mem: [Option<u32>; MEMWORDS as usize] = [None; MEMWORDS as usize];
    for steps in 1..=prog.len() {
        let ins = prog.get(pc).ok_or_else(|| format!("fell off the end at {pc}"))?;
        let k = ins.k;
        let mut next = pc + 1;
        match ins.code & CLASS {
            LD | LDX => {
                let v = match ins.code & SIZE_MODE {
                    W_ABS => {
                        let o = k as usize;
                        u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]])
                    }
                    W_LEN => SECCOMP_DATA_LEN,
                    MEM => {
                        mem[k as usize].ok_or_else(|| format!("load of unset slot {k} at {pc}"))?
                    }
                    _ => k, // immediate
                };
                if ins.code & CLASS == LD {
                    a = v;
                } else {
                    x = v;
                }
            }
            ST => mem[k as usize] = Some(a),
            STX => mem[k as usize] = Some(x),
            ALU => {
                let src = if ins.code & SRC_X != 0 { x } else { k };
                a = match ins.code & OP {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x20 => a.wrapping_mul(src),
                    // The kernel ends the program with 0 on division by a zero X.
                    0x30 => match a.checked_div(src) {
                        Some(q) => q,
                        None => return Ok((0, steps)),
                    },
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a.checked_shl(src).unwrap_or(0),
                    0x70 => a.checked_shr(src).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    _ => a ^ src, // 0xa0, the last one validate lets through
                };
            }
            JMP => {
                let src = if ins.code & SRC_X != 0 { x } else { k };
                let taken = match ins.code & OP {
                    0x00 => {
                        next += k as usize;
                        None
                    }
                    0x10 => Some(a == src),
                    0x20 => Some(a > src),
                    0x30 => Some(a >= src),
                    _ => Some(a & src != 0), // 0x40
                };
                match taken {
                    Some(true) => next += ins.jt as usize,
                    Some(false) => next += ins.jf as usize,
                    None => {}
                }
            }
            RET => return Ok((if ins.code & RVAL == RVAL_A { a } else { k }, steps)),
            _ => {
                // MISC: TAX or TXA
                if ins.code == MISC {
                    x = a;
                } else {
                    a = x;
                }
            }
        }
        pc = next;
    }
    Err(format!("no return within {} steps", prog.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn op(code: u16, jt: u8, jf: u8, k: u32) -> SockFilter {
        SockFilter { code, jt, jf, k }
    }

    fn eval(prog: &[SockFilter]) -> Result<u32, String> {
        evaluate(prog, 0xC000_003E, 39, [1, 0x2_0000_0003, 0, 0, 0, 0], 0x1234)
    }

    #[test]
    fn rejects_malformed_programs() {
        let ret0 = op(0x06, 0, 0, 0);
        assert!(eval(&[]).is_err(), "empty");
        assert!(eval(&vec![ret0; MAX_INSNS + 1]).is_err(), "too long");
        assert!(eval(&[op(0x15, 5, 0, 0), ret0]).is_err(), "jt out of range");
        assert!(eval(&[op(0x15, 0, 1, 0), ret0]).is_err(), "jf out of range");
        assert!(eval(&[op(0x05, 0, 0, 1), ret0]).is_err(), "ja out of range");
        assert!(eval(&[op(0x20, 0, 0, 0)]).is_err(), "falls off the end");
        assert!(eval(&[ret0, op(0x20, 0, 0, 0)]).is_err(), "last is not a return");
        assert!(eval(&[op(0xff, 0, 0, 0), ret0]).is_err(), "unknown opcode");
        assert!(eval(&[op(0x94, 0, 0, 3), ret0]).is_err(), "mod is not for seccomp");
        assert!(eval(&[op(0x30, 0, 0, 0), ret0]).is_err(), "ld byte abs is not for seccomp");
        assert!(eval(&[op(0x20, 0, 0, 64), ret0]).is_err(), "load past seccomp_data");
        assert!(eval(&[op(0x20, 0, 0, 2), ret0]).is_err(), "unaligned load");
        assert!(eval(&[op(0x34, 0, 0, 0), ret0]).is_err(), "division by zero");
        assert!(eval(&[op(0x02, 0, 0, 16), ret0]).is_err(), "scratch slot 16");
        assert!(eval(&[op(0x60, 0, 0, 3), op(0x16, 0, 0, 0)]).is_err(), "unset slot");
    }

    #[test]
    fn runs_what_the_kernel_runs() {
        let ret_a = op(0x16, 0, 0, 0);
        assert_eq!(eval(&[op(0x20, 0, 0, 0), ret_a]), Ok(39), "nr");
        assert_eq!(eval(&[op(0x20, 0, 0, 4), ret_a]), Ok(0xC000_003E), "arch");
        assert_eq!(eval(&[op(0x20, 0, 0, 8), ret_a]), Ok(0x1234), "ip low");
        assert_eq!(eval(&[op(0x20, 0, 0, 24), ret_a]), Ok(3), "args[1] low");
        assert_eq!(eval(&[op(0x20, 0, 0, 28), ret_a]), Ok(2), "args[1] high");
        assert_eq!(eval(&[op(0x80, 0, 0, 0), ret_a]), Ok(64), "len");
        let arith = [
            op(0x00, 0, 0, 7),   // a = 7
            op(0x01, 0, 0, 2),   // x = 2
            op(0x2c, 0, 0, 0),   // a *= x
            op(0x04, 0, 0, 1),   // a += 1
            op(0x02, 0, 0, 5),   // m[5] = a
            op(0x64, 0, 0, 4),   // a <<= 4
            op(0x61, 0, 0, 5),   // x = m[5]
            op(0x1c, 0, 0, 0),   // a -= x
            op(0x35, 1, 0, 200), // a >= 200 ?
            op(0x06, 0, 0, 1),
            op(0x45, 0, 1, 1), // a & 1 ?
            op(0x06, 0, 0, 2),
            ret_a,
        ];
        // 15 << 4 = 240, minus 15 = 225: >= 200, odd.
        assert_eq!(evaluate_counted(&arith, 0, 0, [0; 6], 0), Ok((2, 11)));
        assert_eq!(eval(&[op(0x01, 0, 0, 0), op(0x3c, 0, 0, 0), ret_a]), Ok(0), "div by x = 0");
        assert_eq!(eval(&[op(0x05, 0, 0, 1), op(0x06, 0, 0, 1), op(0x06, 0, 0, 2)]), Ok(2), "ja");
    }
}
