//! Compiles an OCI seccomp profile (`linux.seccomp`, read by brig-oci) to classic BPF: a second
//! filter beside brig's deny-list. The kernel runs both and takes the stricter answer, so the
//! profile can only narrow what brig allows, and brig's deny-list stays whatever the profile says.
//!
//! The program: another architecture is killed (brig's filter kills it too); then, for each
//! syscall number the profile names, a compare and a jump over its block; the block tries the
//! number's rules in the profile's order (each rule's conditions in sequence, any failing one
//! moving on to the next rule) and ends in the default action. Arguments are compared as 64-bit
//! values, high word first.

use std::collections::BTreeMap;

use brig_policy::{ArgCmp, CmpOp, SeccompAction, SeccompProfile};
use brig_sys::seccomp::bpf::{
    arg_high, arg_low, errno, ins, ret, ALU_AND_K, ARCH, AUDIT_ARCH_X86_64, JA, JEQ_K, JGE_K,
    LD_W_ABS, NR, RET_ALLOW, RET_KILL_PROCESS,
};
use brig_sys::seccomp::SockFilter;

use super::names;

const JGT_K: u16 = 0x25;
const RET_KILL_THREAD: u32 = 0;
const RET_TRAP: u32 = 0x0003_0000;
const RET_LOG: u32 = 0x7FFC_0000;

fn action(a: SeccompAction) -> u32 {
    match a {
        SeccompAction::Allow => RET_ALLOW,
        SeccompAction::Errno(e) => errno(i32::from(e)),
        SeccompAction::KillProcess => RET_KILL_PROCESS,
        SeccompAction::KillThread => RET_KILL_THREAD,
        SeccompAction::Trap => RET_TRAP,
        SeccompAction::Log => RET_LOG,
    }
}

/// An instruction of a rule, whose jumps may go to "this rule failed" (patched later).
struct Insn {
    f: SockFilter,
    jt_fail: bool,
    jf_fail: bool,
}

fn plain(f: SockFilter) -> Insn {
    Insn { f, jt_fail: false, jf_fail: false }
}

/// A conditional jump: `jt`/`jf` are forward offsets, `None` means "the rule failed".
fn jump(code: u16, k: u32, jt: Option<u8>, jf: Option<u8>) -> Insn {
    Insn {
        f: ins(code, jt.unwrap_or(0), jf.unwrap_or(0), k),
        jt_fail: jt.is_none(),
        jf_fail: jf.is_none(),
    }
}

/// One condition: falls through when it holds, jumps to "failed" otherwise.
fn condition(c: &ArgCmp, out: &mut Vec<Insn>) {
    let (hi, lo) = (arg_high(c.index), arg_low(c.index));
    let (vh, vl) = ((c.value >> 32) as u32, c.value as u32);
    let load = |at| plain(ins(LD_W_ABS, 0, 0, at));
    match c.op {
        CmpOp::Eq => out.extend([
            load(hi),
            jump(JEQ_K, vh, Some(0), None),
            load(lo),
            jump(JEQ_K, vl, Some(0), None),
        ]),
        // Holds when either word differs.
        CmpOp::Ne => out.extend([
            load(hi),
            jump(JEQ_K, vh, Some(0), Some(2)),
            load(lo),
            jump(JEQ_K, vl, None, Some(0)),
        ]),
        CmpOp::MaskedEq => {
            let (wh, wl) = ((c.value_two >> 32) as u32, c.value_two as u32);
            out.extend([
                load(hi),
                plain(ins(ALU_AND_K, 0, 0, vh)),
                jump(JEQ_K, wh, Some(0), None),
                load(lo),
                plain(ins(ALU_AND_K, 0, 0, vl)),
                jump(JEQ_K, wl, Some(0), None),
            ])
        }
        // High words decide unless equal; then the low words.
        CmpOp::Gt | CmpOp::Ge => out.extend([
            load(hi),
            jump(JGT_K, vh, Some(3), Some(0)),
            jump(JEQ_K, vh, Some(0), None),
            load(lo),
            jump(if c.op == CmpOp::Gt { JGT_K } else { JGE_K }, vl, Some(0), None),
        ]),
        CmpOp::Lt | CmpOp::Le => out.extend([
            load(hi),
            jump(JGE_K, vh, Some(0), Some(3)),
            jump(JEQ_K, vh, Some(0), None),
            load(lo),
            jump(if c.op == CmpOp::Lt { JGE_K } else { JGT_K }, vl, None, Some(0)),
        ]),
    }
}

/// The code of one rule: its conditions, then its action; a failed condition jumps past it.
fn rule(args: &[ArgCmp], act: u32) -> Result<Vec<SockFilter>, String> {
    let mut code = Vec::new();
    for c in args {
        if c.index > 5 {
            return Err(format!("argument index {} (syscalls have 6: 0-5)", c.index));
        }
        condition(c, &mut code);
    }
    let n = code.len();
    let mut out = Vec::with_capacity(n + 1);
    for (i, mut insn) in code.into_iter().enumerate() {
        // "Failed" is the instruction after this rule's return: n - i instructions ahead.
        let to_fail = u8::try_from(n - i).map_err(|_| "a rule with too many conditions")?;
        if insn.jt_fail {
            insn.f.jt = to_fail;
        }
        if insn.jf_fail {
            insn.f.jf = to_fail;
        }
        out.push(insn.f);
    }
    out.push(ret(act));
    Ok(out)
}

/// The whole program for `p`, or why it cannot be compiled.
pub fn compile(p: &SeccompProfile) -> Result<Vec<SockFilter>, String> {
    let default = action(p.default_action);
    let mut by_nr: BTreeMap<u32, Vec<SockFilter>> = BTreeMap::new();
    for r in &p.rules {
        let code = rule(&r.args, action(r.action))?;
        for nr in r.names.iter().filter_map(|n| names::number(n)) {
            by_nr.entry(nr).or_default().extend(code.iter().copied());
        }
    }
    let mut prog = vec![
        ins(LD_W_ABS, 0, 0, ARCH),
        ins(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        ret(RET_KILL_PROCESS),
        ins(LD_W_ABS, 0, 0, NR),
    ];
    for (nr, mut block) in by_nr {
        block.push(ret(default));
        // Not this number: jump over its block (A still holds the number there).
        prog.push(ins(JEQ_K, 1, 0, nr));
        prog.push(ins(JA, 0, 0, block.len() as u32));
        prog.extend(block);
    }
    prog.push(ret(default));
    if prog.len() > super::interp::MAX_INSNS {
        return Err(format!(
            "the profile compiles to {} BPF instructions; the kernel takes at most {}",
            prog.len(),
            super::interp::MAX_INSNS
        ));
    }
    Ok(prog)
}

#[cfg(test)]
mod tests {
    use super::*;
    use brig_policy::SeccompRule;

    fn run(prog: &[SockFilter], nr: u32, args: [u64; 6]) -> u32 {
        super::super::interp::evaluate(prog, AUDIT_ARCH_X86_64, nr, args, 0).expect("valid")
    }

    fn cmp(index: u32, op: CmpOp, value: u64, value_two: u64) -> ArgCmp {
        ArgCmp { index, value, value_two, op }
    }

    #[test]
    fn default_and_named_rules() {
        let p = SeccompProfile {
            default_action: SeccompAction::Errno(1),
            rules: vec![
                SeccompRule {
                    names: vec!["read".into(), "write".into(), "no_such_call".into()],
                    action: SeccompAction::Allow,
                    args: vec![],
                },
                SeccompRule {
                    names: vec!["getcwd".into()],
                    action: SeccompAction::Errno(libc::ENOENT as u16),
                    args: vec![],
                },
            ],
        };
        let prog = compile(&p).expect("compiles");
        assert_eq!(run(&prog, libc::SYS_read as u32, [0; 6]), RET_ALLOW);
        assert_eq!(run(&prog, libc::SYS_write as u32, [0; 6]), RET_ALLOW);
        assert_eq!(run(&prog, libc::SYS_getcwd as u32, [0; 6]), errno(libc::ENOENT));
        assert_eq!(run(&prog, libc::SYS_openat as u32, [0; 6]), errno(1));
        let other = super::super::interp::evaluate(&prog, 0x4000_0003, 0, [0; 6], 0);
        assert_eq!(other, Ok(RET_KILL_PROCESS));
    }

    /// Every operator against an oracle, on values that differ in the high word, the low word,
    /// both and neither.
    #[test]
    fn comparisons_match_an_oracle() {
        let values =
            [0u64, 1, 5, 0xFFFF_FFFF, 0x1_0000_0000, 0x1_0000_0005, u64::MAX, 0x7_0000_0003];
        let ops =
            [CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Eq, CmpOp::Ge, CmpOp::Gt, CmpOp::MaskedEq];
        for op in ops {
            for &v in &values {
                for &v2 in &[0u64, 5, 0x1_0000_0000] {
                    let p = SeccompProfile {
                        default_action: SeccompAction::Errno(1),
                        rules: vec![SeccompRule {
                            names: vec!["personality".into()],
                            action: SeccompAction::Allow,
                            args: vec![cmp(2, op, v, v2)],
                        }],
                    };
                    let prog = compile(&p).expect("compiles");
                    for &a in &values {
                        let want = match op {
                            CmpOp::Ne => a != v,
                            CmpOp::Lt => a < v,
                            CmpOp::Le => a <= v,
                            CmpOp::Eq => a == v,
                            CmpOp::Ge => a >= v,
                            CmpOp::Gt => a > v,
                            CmpOp::MaskedEq => a & v == v2,
                        };
                        let got = run(&prog, libc::SYS_personality as u32, [0, 0, a, 0, 0, 0]);
                        let want = if want { RET_ALLOW } else { errno(1) };
                        assert_eq!(got, want, "{op:?} arg {a:#x} value {v:#x} value_two {v2:#x}");
                    }
                }
            }
        }
    }

    /// Conditions of one rule are ANDed; a failed rule falls to the next one for the number.
    #[test]
    fn rules_in_order() {
        let p = SeccompProfile {
            default_action: SeccompAction::KillProcess,
            rules: vec![
                SeccompRule {
                    names: vec!["clone".into()],
                    action: SeccompAction::Allow,
                    args: vec![cmp(0, CmpOp::Eq, 7, 0), cmp(1, CmpOp::Eq, 8, 0)],
                },
                SeccompRule {
                    names: vec!["clone".into()],
                    action: SeccompAction::Errno(13),
                    args: vec![cmp(0, CmpOp::Gt, 100, 0)],
                },
            ],
        };
        let prog = compile(&p).expect("compiles");
        let nr = libc::SYS_clone as u32;
        assert_eq!(run(&prog, nr, [7, 8, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(run(&prog, nr, [7, 9, 0, 0, 0, 0]), RET_KILL_PROCESS);
        assert_eq!(run(&prog, nr, [101, 8, 0, 0, 0, 0]), errno(13));
        let bad = SeccompRule {
            names: vec!["read".into()],
            action: SeccompAction::Allow,
            args: vec![cmp(6, CmpOp::Eq, 0, 0)],
        };
        assert!(compile(&SeccompProfile {
            default_action: SeccompAction::Allow,
            rules: vec![bad]
        })
        .is_err());
    }
}
