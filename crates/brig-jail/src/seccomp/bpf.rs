//! Compiles the deny-list to classic BPF: an arch check, an x32 check, a ceiling for syscall
//! numbers newer than the table, then a balanced binary search over number intervals, so any
//! syscall costs about log2(#intervals) compares rather than one per rule.

use brig_sys::seccomp::SockFilter;

use super::{Rule, RuleAction, MAX_KNOWN_NR};

const LD_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JA: u16 = 0x05;
const JEQ: u16 = 0x15;
const JGT: u16 = 0x25;
const JGE: u16 = 0x35;
const JSET: u16 = 0x45;
const RET: u16 = 0x06;

pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_ALLOW: u32 = 0x7FFF_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
const X32_BIT: u32 = 0x4000_0000;
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn off_arg_lo(i: u32) -> u32 {
    16 + 8 * i
}

pub const TIOCSTI: u32 = 0x5412;
pub const TIOCLINUX: u32 = 0x541C;
/// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET (not 0x80: CSIGNAL in clone).
pub const CLONE_NS_MASK: u32 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

fn i(code: u16, jt: u8, jf: u8, k: u32) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

fn ret(k: u32) -> SockFilter {
    i(RET, 0, 0, k)
}

fn errno(e: i32) -> u32 {
    RET_ERRNO | (e as u32 & 0xFFFF)
}

/// What happens to one interval of syscall numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf {
    Allow,
    Rule(RuleAction),
}

fn leaf_code(l: Leaf) -> Vec<SockFilter> {
    let eperm = errno(libc::EPERM);
    match l {
        Leaf::Allow => vec![ret(RET_ALLOW)],
        Leaf::Rule(RuleAction::Errno(e)) => vec![ret(errno(e))],
        Leaf::Rule(RuleAction::CloneFlags) => vec![
            i(LD_ABS, 0, 0, off_arg_lo(0)),
            i(JSET, 0, 1, CLONE_NS_MASK),
            ret(eperm),
            ret(RET_ALLOW),
        ],
        // Only the low 32 bits of the request are compared: the kernel truncates it to an
        // unsigned int, so high bits cannot hide TIOCSTI (snapd CVE-2019-7303).
        Leaf::Rule(RuleAction::Ioctl) => vec![
            i(LD_ABS, 0, 0, off_arg_lo(1)),
            i(JEQ, 2, 0, TIOCSTI),
            i(JEQ, 1, 0, TIOCLINUX),
            ret(RET_ALLOW),
            ret(eperm),
        ],
        Leaf::Rule(RuleAction::SocketFamily) => vec![
            i(LD_ABS, 0, 0, off_arg_lo(0)),
            i(JEQ, 3, 0, libc::AF_UNIX as u32),
            i(JEQ, 2, 0, libc::AF_INET as u32),
            i(JEQ, 1, 0, libc::AF_INET6 as u32),
            ret(errno(libc::EAFNOSUPPORT)),
            ret(RET_ALLOW),
        ],
        Leaf::Rule(RuleAction::Personality) => vec![
            i(LD_ABS, 0, 0, off_arg_lo(0)),
            i(JEQ, 2, 0, 0),
            i(JEQ, 1, 0, 0xFFFF_FFFF),
            ret(eperm),
            ret(RET_ALLOW),
        ],
    }
}

/// Sorted, merged intervals `(first nr, leaf)` covering 0..=MAX_KNOWN_NR.
fn intervals(rules: &[&Rule]) -> Vec<(u32, Leaf)> {
    let mut points: Vec<(u32, Leaf)> = rules.iter().map(|r| (r.nr, Leaf::Rule(r.action))).collect();
    points.sort_by_key(|p| p.0);
    points.dedup_by_key(|p| p.0);
    let mut out: Vec<(u32, Leaf)> = Vec::new();
    let push = |start: u32, leaf: Leaf, out: &mut Vec<(u32, Leaf)>| {
        // merge with the previous interval when the action is the same and needs no arguments
        let mergeable = matches!(leaf, Leaf::Allow | Leaf::Rule(RuleAction::Errno(_)));
        if mergeable && out.last().is_some_and(|l| l.1 == leaf) {
            return;
        }
        out.push((start, leaf));
    };
    let mut next = 0u32;
    for (nr, leaf) in points {
        if nr > next {
            push(next, Leaf::Allow, &mut out);
        }
        push(nr, leaf, &mut out);
        next = nr + 1;
    }
    if next <= MAX_KNOWN_NR {
        push(next, Leaf::Allow, &mut out);
    }
    out
}

/// A balanced search over `iv` (A holds the syscall number).
fn tree(iv: &[(u32, Leaf)]) -> Vec<SockFilter> {
    if iv.len() == 1 {
        return leaf_code(iv[0].1);
    }
    let mid = iv.len() / 2;
    let (left, right) = (tree(&iv[..mid]), tree(&iv[mid..]));
    let boundary = iv[mid].0;
    let mut out = Vec::with_capacity(left.len() + right.len() + 2);
    if left.len() <= u8::MAX as usize {
        out.push(i(JGE, left.len() as u8, 0, boundary));
    } else {
        out.push(i(JGE, 0, 1, boundary));
        out.push(i(JA, 0, 0, left.len() as u32));
    }
    out.extend(left);
    out.extend(right);
    out
}

/// The whole program.
pub fn compile(rules: &[&Rule]) -> Vec<SockFilter> {
    let mut p = vec![
        i(LD_ABS, 0, 0, OFF_ARCH),
        i(JEQ, 1, 0, AUDIT_ARCH_X86_64),
        ret(RET_KILL_PROCESS),
        i(LD_ABS, 0, 0, OFF_NR),
        i(JGE, 0, 1, X32_BIT),
        ret(RET_KILL_PROCESS),
        i(JGT, 0, 1, MAX_KNOWN_NR),
        ret(errno(libc::ENOSYS)),
    ];
    p.extend(tree(&intervals(rules)));
    assert!(p.len() <= 4096, "seccomp program longer than BPF_MAXINSNS");
    p
}
