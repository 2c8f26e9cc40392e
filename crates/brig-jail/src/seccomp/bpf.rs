//! Compiles a deny-list to classic BPF.
//!
//! The program checks the architecture, then finds the syscall number in a balanced binary
//! search over intervals of numbers, each with one action, so a syscall costs about
//! log2(#intervals) compares instead of one per rule. The intervals cover every u32: the
//! numbers the table knows (allowed unless a rule says otherwise), the unassigned ones
//! (ENOSYS), those above `MAX_KNOWN_NR` (ENOSYS) and those with the x32 bit (kill).
//!
//! Only the leaves of rules with an argument check (`clone`, `ioctl`, `socket`, the sends, the
//! chmod and create family, ...) read an argument. Every other path reads just `arch` and `nr` and ends in a constant, which lets the
//! kernel's action cache (Linux 5.11) skip the filter entirely for each syscall it allows that
//! way.

use brig_sys::seccomp::SockFilter;

use super::{names, Rule, RuleAction, MAX_KNOWN_NR};

use brig_sys::seccomp::bpf::{arg_low, ins, ret, ARCH, JA, JEQ_K, JGE_K, JSET_K, LD_W_ABS, NR};
pub use brig_sys::seccomp::bpf::{
    errno, AUDIT_ARCH_X86_64, RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS, RET_USER_NOTIF,
    X32_SYSCALL_BIT,
};

/// MSG_FASTOPEN: a send that connects.
pub const MSG_FASTOPEN: u32 = 0x2000_0000;

/// The open flags that create a file, whose mode argument is then read: O_CREAT and
/// O_TMPFILE's own bit (`__O_TMPFILE`).
pub const O_CREATES: u32 = libc::O_CREAT as u32 | 0o20000000;

/// IPPROTO_MPTCP: refused for inet/inet6 sockets.
pub const IPPROTO_MPTCP: u32 = 262;

/// TIOCSTI: push a byte into the terminal's input queue.
pub const TIOCSTI: u32 = 0x5412;
/// TIOCLINUX: the Linux console's multiplexed ioctl (selection paste included).
pub const TIOCLINUX: u32 = 0x541C;
/// Every CLONE_NEW* flag that fits clone's flags. Not CLONE_NEWTIME (0x80): in clone that bit
/// is part of CSIGNAL, and a new time namespace needs unshare or clone3, both refused.
pub const CLONE_NEW_ANY: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u32;

/// What the program does with one interval of syscall numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf {
    /// Return this value, whatever the arguments.
    Ret(u32),
    /// Look at the arguments.
    Check(RuleAction),
}

impl Leaf {
    fn of(action: RuleAction) -> Leaf {
        match action {
            RuleAction::Errno(e) => Leaf::Ret(errno(e)),
            RuleAction::Broker => Leaf::Ret(RET_USER_NOTIF),
            other => Leaf::Check(other),
        }
    }

    /// The code of a leaf; it ends in a return on every path.
    fn code(self) -> Vec<SockFilter> {
        let eperm = errno(libc::EPERM);
        let family = |f: i32| f as u32;
        match self {
            Leaf::Ret(k) => vec![ret(k)],
            Leaf::Check(RuleAction::CloneFlags) => vec![
                ins(LD_W_ABS, 0, 0, arg_low(0)),
                ins(JSET_K, 0, 1, CLONE_NEW_ANY),
                ret(eperm),
                ret(RET_ALLOW),
            ],
            // The kernel takes the request as an unsigned int, so only the low 32 bits are
            // compared: high bits cannot smuggle TIOCSTI past the check (snapd CVE-2019-7303).
            Leaf::Check(RuleAction::Ioctl) => vec![
                ins(LD_W_ABS, 0, 0, arg_low(1)),
                ins(JEQ_K, 2, 0, TIOCSTI),
                ins(JEQ_K, 1, 0, TIOCLINUX),
                ret(RET_ALLOW),
                ret(eperm),
            ],
            // inet and inet6 also refuse MPTCP (protocol 262), which Landlock's TCP rules do not
            // cover.
            Leaf::Check(RuleAction::SocketFamily) => vec![
                ins(LD_W_ABS, 0, 0, arg_low(0)),
                ins(JEQ_K, 6, 0, family(libc::AF_UNIX)),
                ins(JEQ_K, 1, 0, family(libc::AF_INET)),
                ins(JEQ_K, 0, 3, family(libc::AF_INET6)),
                ins(LD_W_ABS, 0, 0, arg_low(2)),
                ins(JEQ_K, 0, 2, IPPROTO_MPTCP),
                ret(errno(libc::EPROTONOSUPPORT)),
                ret(errno(libc::EAFNOSUPPORT)),
                ret(RET_ALLOW),
            ],
            Leaf::Check(RuleAction::Personality) => vec![
                ins(LD_W_ABS, 0, 0, arg_low(0)),
                ins(JEQ_K, 2, 0, 0),           // PER_LINUX
                ins(JEQ_K, 1, 0, 0xFFFF_FFFF), // query the current persona
                ret(eperm),
                ret(RET_ALLOW),
            ],
            Leaf::Check(RuleAction::NoFastOpen(i)) => vec![
                ins(LD_W_ABS, 0, 0, arg_low(i)),
                ins(JSET_K, 0, 1, MSG_FASTOPEN),
                ret(eperm),
                ret(RET_ALLOW),
            ],
            Leaf::Check(RuleAction::NoSetid(i)) => vec![
                ins(LD_W_ABS, 0, 0, arg_low(i)),
                ins(JSET_K, 0, 1, libc::S_ISUID | libc::S_ISGID),
                ret(eperm),
                ret(RET_ALLOW),
            ],
            Leaf::Check(RuleAction::NoSetidCreate { flags, mode }) => vec![
                ins(LD_W_ABS, 0, 0, arg_low(flags)),
                ins(JSET_K, 0, 3, O_CREATES),
                ins(LD_W_ABS, 0, 0, arg_low(mode)),
                ins(JSET_K, 0, 1, libc::S_ISUID | libc::S_ISGID),
                ret(eperm),
                ret(RET_ALLOW),
            ],
            Leaf::Check(RuleAction::NotPid1(i)) => vec![
                ins(LD_W_ABS, 0, 0, arg_low(i)),
                ins(JEQ_K, 0, 1, 1),
                ret(eperm),
                ret(RET_ALLOW),
            ],
            Leaf::Check(RuleAction::NotPid1Who { process, user }) => vec![
                ins(LD_W_ABS, 0, 0, arg_low(0)),
                ins(JEQ_K, 3, 0, user),
                ins(JEQ_K, 0, 3, process),
                ins(LD_W_ABS, 0, 0, arg_low(1)),
                ins(JEQ_K, 0, 1, 1),
                ret(eperm),
                ret(RET_ALLOW),
            ],
            Leaf::Check(RuleAction::MemfdNoExec) => vec![
                ins(LD_W_ABS, 0, 0, arg_low(1)),
                ins(JSET_K, 2, 0, brig_sys::fdpass::MFD_EXEC),
                ins(JSET_K, 2, 0, brig_sys::fdpass::MFD_NOEXEC_SEAL),
                ret(RET_USER_NOTIF),
                ret(errno(libc::EACCES)),
                ret(RET_ALLOW),
            ],
            // `Leaf::of` turns errno and broker rules into `Ret`; kept for completeness.
            Leaf::Check(RuleAction::Errno(e)) => vec![ret(errno(e))],
            Leaf::Check(RuleAction::Broker) => vec![ret(RET_USER_NOTIF)],
        }
    }
}

/// Sorted, non-overlapping intervals `(first number, leaf)` covering all of u32; each runs up
/// to the next one's start. Neighbours with the same leaf are merged.
fn intervals(rules: &[Rule]) -> Vec<(u32, Leaf)> {
    let mut leaf: Vec<Leaf> = (0..=MAX_KNOWN_NR)
        .map(|nr| match names::name(nr) {
            Some(_) => Leaf::Ret(RET_ALLOW),
            None => Leaf::Ret(errno(libc::ENOSYS)), // unassigned: nothing to reach yet
        })
        .collect();
    for r in rules {
        assert!(r.nr <= MAX_KNOWN_NR, "rule {} has number {} above the table", r.name, r.nr);
        leaf[r.nr as usize] = Leaf::of(r.action);
    }
    let tail = [
        (MAX_KNOWN_NR + 1, Leaf::Ret(errno(libc::ENOSYS))),
        (X32_SYSCALL_BIT, Leaf::Ret(RET_KILL_PROCESS)),
    ];
    let mut out: Vec<(u32, Leaf)> = Vec::new();
    for (start, l) in leaf.into_iter().enumerate().map(|(nr, l)| (nr as u32, l)).chain(tail) {
        if out.last().map(|last| last.1) != Some(l) {
            out.push((start, l));
        }
    }
    out
}

/// A balanced search over `iv`, with the syscall number in A.
fn search(iv: &[(u32, Leaf)]) -> Vec<SockFilter> {
    let [(_, only)] = iv else {
        let mid = iv.len() / 2;
        let (low, high) = (search(&iv[..mid]), search(&iv[mid..]));
        let mut out = Vec::with_capacity(low.len() + high.len() + 2);
        match u8::try_from(low.len()) {
            // nr >= start of the upper half: skip the lower half.
            Ok(skip) => out.push(ins(JGE_K, skip, 0, iv[mid].0)),
            // Too far for an 8-bit offset: fall through to a JA, whose offset is 32 bits.
            Err(_) => {
                out.push(ins(JGE_K, 0, 1, iv[mid].0));
                out.push(ins(JA, 0, 0, low.len() as u32));
            }
        }
        out.extend(low);
        out.extend(high);
        return out;
    };
    only.code()
}

/// The whole program for a deny-list.
pub fn compile(rules: &[Rule]) -> Vec<SockFilter> {
    let mut prog = vec![
        // Another architecture numbers syscalls differently: none of the table applies.
        ins(LD_W_ABS, 0, 0, ARCH),
        ins(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        ret(RET_KILL_PROCESS),
        ins(LD_W_ABS, 0, 0, NR),
    ];
    prog.extend(search(&intervals(rules)));
    assert!(
        prog.len() <= super::interp::MAX_INSNS,
        "seccomp program of {} instructions",
        prog.len()
    );
    prog
}
