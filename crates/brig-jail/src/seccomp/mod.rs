//! The seccomp layer's policy: a deny-list of kernel attack surface in named groups, the reviewed
//! data of `table.rs`; its compiler to classic BPF (`bpf.rs`); and the interpreter the tests
//! check every compiled program with (`interp.rs`). x86_64 only. Nothing here makes a syscall:
//! the program is compiled ahead of the child and installed by `brig_sys::seccomp::install`.
//!
//! The filter, in order: another architecture is killed; an x32 call (number with bit 30) is
//! killed; a number above `MAX_KNOWN_NR`, or one the kernel has not assigned, gets ENOSYS; then
//! the deny-list; everything else is allowed. clone3 gets ENOSYS from the `@namespaces` group:
//! its flags sit behind a pointer seccomp cannot read, and libc then falls back to clone, whose
//! flags it can. Allowing `@namespaces` (or `clone3` by name) lets clone3 through as well.

mod bpf;
pub mod interp;
mod names;
pub mod oci;
mod table;

use brig_sys::seccomp::SockFilter;

pub use bpf::{
    errno, AUDIT_ARCH_X86_64, CLONE_NEW_ANY, RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS,
    RET_USER_NOTIF, TIOCLINUX, TIOCSTI, X32_SYSCALL_BIT,
};
pub use interp::evaluate;

/// `BPF_RET | BPF_K`: return a constant.
const RET_K: u16 = 0x06;

/// The highest syscall number the table knows (file_setattr, Linux 6.17). Anything above is
/// answered ENOSYS: a syscall newer than the review never reaches the kernel.
pub const MAX_KNOWN_NR: u32 = 469;

/// What a rule does to its syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// Refuse with this errno.
    Errno(i32),
    /// clone: EPERM when the low 32 bits of the flags (args[0]) hold any CLONE_NEW* flag
    /// (`CLONE_NEW_ANY`); fork, vfork and threads pass.
    CloneFlags,
    /// ioctl: EPERM for TIOCSTI and TIOCLINUX, comparing only the low 32 bits of the request
    /// (args[1]) as the kernel does, whatever the high bits; other requests pass.
    Ioctl,
    /// socket, socketpair: AF_UNIX, AF_INET and AF_INET6 (low 32 bits of args[0]) pass; any
    /// other family gets EAFNOSUPPORT, as if the kernel lacked it. inet/inet6 with protocol
    /// IPPROTO_MPTCP (low 32 bits of args[2]) get EPROTONOSUPPORT: Landlock's TCP rules do not
    /// cover MPTCP.
    SocketFamily,
    /// personality: PER_LINUX (0) and the query (0xffffffff) pass; any other persona, EPERM.
    Personality,
    /// sendto, sendmsg, sendmmsg: EPERM when the flags (low 32 bits of this argument) hold
    /// MSG_FASTOPEN, which connects a TCP socket without connect(): past Landlock's TCP rule,
    /// and, on a listening socket handed over as a capability (reset by shutdown), from the
    /// host's network.
    NoFastOpen(u32),
    /// chmod family, open/creat, mknod: EPERM when the mode (low 32 bits of this argument)
    /// holds S_ISUID or S_ISGID. The bit is inert inside (every mount is nosuid) but real on
    /// the host, for files the program made in writable grants.
    NoSetid(u32),
    /// open, openat: as `NoSetid(mode)`, but only when the flags (low 32 bits of `flags`) create
    /// a file (O_CREAT or O_TMPFILE): otherwise the kernel ignores the mode argument, which then
    /// holds whatever the caller's register held (static busybox's `open(path, O_RDONLY)`).
    NoSetidCreate { flags: u32, mode: u32 },
    /// EPERM when this argument (low 32 bits) is 1: a call aimed at the prison's pid 1, which
    /// runs as the same uid and must stay out of the program's reach (limits, scheduling).
    NotPid1(u32),
    /// setpriority and ioprio_set: EPERM for `which` = the per-user value (it reaches pid 1
    /// too), and for `which` = the per-process value with `who` = 1.
    NotPid1Who { process: u32, user: u32 },
    /// Answered by the supervisor through seccomp user notification (`crate::broker`), which
    /// acts itself or refuses; the call never continues to the kernel unchecked.
    Broker,
    /// memfd_create: MFD_EXEC (low 32 bits of args[1]) gets EACCES; MFD_NOEXEC_SEAL passes;
    /// anything else goes to the broker, which makes the memfd with MFD_NOEXEC_SEAL: no memfd in
    /// the prison is ever executable (it would run code past every noexec grant).
    MemfdNoExec,
}

/// One syscall of the deny-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub name: &'static str,
    /// The x86_64 number.
    pub nr: u32,
    pub action: RuleAction,
    /// Why it is refused, in a few words.
    pub why: &'static str,
}

/// A named group of rules (`@debug`), allowed or denied as one.
#[derive(Debug, Clone, Copy)]
pub struct Group {
    pub name: &'static str,
    pub syscalls: &'static [Rule],
    /// One sentence on what the group protects, shown by `brig check`.
    pub why: &'static str,
}

/// What a name given to `allow`/`deny` stands for.
#[derive(Debug, Clone, Copy)]
pub enum Selection {
    /// A group of the default deny-list: `@debug`.
    Group(&'static Group),
    /// A syscall of the default deny-list: `ptrace`.
    Rule(&'static Rule),
    /// Any other x86_64 syscall, known by name: `mkdir`. Denying it refuses it with EPERM.
    Syscall { name: &'static str, nr: u32 },
}

impl Selection {
    /// The rules `deny` adds for this selection.
    fn rules(self) -> Vec<Rule> {
        match self {
            Selection::Group(g) => g.syscalls.to_vec(),
            Selection::Rule(r) => vec![*r],
            Selection::Syscall { name, nr } => vec![Rule {
                name,
                nr,
                action: RuleAction::Errno(libc::EPERM),
                why: "denied by the manifest",
            }],
        }
    }
}

/// The default deny-list.
pub fn groups() -> &'static [Group] {
    table::GROUPS
}

/// The syscalls the supervisor answers (user notification), with why.
pub fn brokered() -> &'static [Rule] {
    table::BROKERED
}

/// The x86_64 name of syscall `nr`.
pub fn name(nr: u32) -> Option<&'static str> {
    names::name(nr)
}

fn is_brokered(nr: u32) -> bool {
    brokered().iter().any(|b| b.nr == nr)
}

/// What `name` stands for: a group (`@debug`), a rule of the deny-list (`ptrace`), another
/// x86_64 syscall (`mkdir`), or nothing.
pub fn lookup(name: &str) -> Option<Selection> {
    if let Some(g) = groups().iter().find(|g| g.name == name) {
        return Some(Selection::Group(g));
    }
    if let Some(r) = groups().iter().flat_map(|g| g.syscalls).find(|r| r.name == name) {
        return Some(Selection::Rule(r));
    }
    let nr = names::number(name)?;
    names::name(nr).map(|name| Selection::Syscall { name, nr })
}

fn unknown(name: &str) -> String {
    let groups: Vec<&str> = groups().iter().map(|g| g.name).collect();
    let groups = groups.join(", ");
    format!("unknown syscall or group `{name}`: use an x86_64 syscall name or one of {groups}")
}

/// The effective deny-list of one run: the default, less what the manifest allows, plus what it
/// denies.
#[derive(Debug, Clone)]
pub struct Policy {
    /// At most one rule per number; the table's order, then additions in the order made.
    rules: Vec<Rule>,
}

impl Policy {
    /// The default deny-list and the brokered syscalls.
    pub fn default_deny() -> Policy {
        let rules = groups().iter().flat_map(|g| g.syscalls).chain(brokered()).copied().collect();
        Policy { rules }
    }

    /// Removes a group or syscall from the deny-list (`@debug`, `ptrace`). A loosening: the
    /// caller warns. Errors on names that are neither a group nor an x86_64 syscall. A brokered
    /// syscall stays brokered: the broker is what keeps capabilities what they were granted.
    pub fn allow(&mut self, name: &str) -> Result<(), String> {
        let sel = lookup(name).ok_or_else(|| unknown(name))?;
        let nrs: Vec<u32> = sel.rules().iter().map(|r| r.nr).collect();
        self.rules.retain(|r| !nrs.contains(&r.nr) || is_brokered(r.nr));
        Ok(())
    }

    /// Sends syscall `nr` to the broker, which acts on it (`connect` with `--egress`).
    pub fn broker_call(&mut self, nr: u32) {
        let name = names::name(nr).unwrap_or("?");
        self.rules.retain(|r| r.nr != nr);
        let why = "answered by the broker";
        self.rules.push(Rule { name, nr, action: RuleAction::Broker, why });
    }

    /// Whether every rule of the group or syscall `name` is still in the policy.
    pub fn keeps(&self, name: &str) -> bool {
        lookup(name).is_some_and(|sel| sel.rules().iter().all(|r| self.rules.contains(r)))
    }

    /// Adds a group or syscall to the deny-list: the table's rule for a name it has (so
    /// `ioctl` brings back the TIOCSTI check, not a ban on ioctl), EPERM for any other x86_64
    /// syscall (`mkdir`). Errors on unknown names.
    pub fn deny(&mut self, name: &str) -> Result<(), String> {
        let sel = lookup(name).ok_or_else(|| unknown(name))?;
        for rule in sel.rules() {
            // Denying a brokered syscall replaces the broker's answer with a refusal.
            self.rules.retain(|r| !(r.nr == rule.nr && is_brokered(r.nr)));
            if !self.rules.iter().any(|r| r.nr == rule.nr) {
                self.rules.push(rule);
            }
        }
        Ok(())
    }

    /// An allow-list, installed as a second filter on top of the deny-list, just before the
    /// exec (the deny-list's own filter keeps its broker): every syscall not in `names` is
    /// refused with EPERM by the kernel. `execve`, `execveat` and `exit_group` are always kept:
    /// brig's exec of the program needs them, and after it an exec can only run what the view
    /// grants with x. Names must be syscalls, not groups.
    pub fn allow_list(names: &[String]) -> Result<Policy, String> {
        let mut keep: Vec<u32> =
            [libc::SYS_execve, libc::SYS_execveat, libc::SYS_exit_group].map(|n| n as u32).to_vec();
        for name in names {
            match lookup(name) {
                Some(Selection::Rule(r)) => keep.push(r.nr),
                Some(Selection::Syscall { nr, .. }) => keep.push(nr),
                Some(Selection::Group(_)) => {
                    return Err(format!(
                        "`{name}` is a deny-list group: an allow-list names each syscall"
                    ))
                }
                None => return Err(unknown(name)),
            }
        }
        let rules = (0..=MAX_KNOWN_NR)
            .filter(|nr| !keep.contains(nr))
            .filter_map(|nr| {
                let action = RuleAction::Errno(libc::EPERM);
                Some(Rule { name: names::name(nr)?, nr, action, why: "not in the allow-list" })
            })
            .collect();
        Ok(Policy { rules })
    }

    /// The BPF program; at most a few hundred instructions whatever was allowed or denied.
    pub fn compile(&self) -> Vec<SockFilter> {
        bpf::compile(&self.rules)
    }

    /// The program the kernel runs when a broker listens: `compile`'s, with every refusal but
    /// ENOSYS sent to the broker instead (which answers with the same errno after taking note,
    /// so brig can say what was refused), and the syscalls of `observe` sent to it whatever
    /// their arguments (it judges them with `compile`'s program, then refuses or lets the
    /// kernel run them). ENOSYS stays in the kernel: it is how libc learns to fall back
    /// (clone3, openat2), not a refusal worth a round trip.
    pub fn compile_notifying(&self, observe: &[u32]) -> Vec<SockFilter> {
        let mut rules = self.rules.clone();
        for &nr in observe {
            let name = names::name(nr).unwrap_or("?");
            let why = "observed by the broker";
            match rules.iter_mut().find(|r| r.nr == nr) {
                Some(r) if matches!(r.action, RuleAction::Errno(_)) => {}
                Some(r) => r.action = RuleAction::Broker,
                None => rules.push(Rule { name, nr, action: RuleAction::Broker, why }),
            }
        }
        let mut prog = bpf::compile(&rules);
        for i in &mut prog {
            let errno = i.k & !RET_ERRNO;
            if i.code == RET_K && i.k & 0xffff_0000 == RET_ERRNO && errno != libc::ENOSYS as u32 {
                i.k = RET_USER_NOTIF;
            }
        }
        prog
    }

    /// The rule refusing `nr`, and the group it belongs to (`None`: denied by the manifest, or
    /// brokered).
    pub fn rule(&self, nr: u32) -> Option<(&Rule, Option<&'static Group>)> {
        let rule = self.rules.iter().find(|r| r.nr == nr)?;
        Some((rule, groups().iter().find(|g| g.syscalls.contains(rule))))
    }

    /// The syscalls refused (wholly or for some arguments), for reports and `brig check`.
    pub fn denied_names(&self) -> Vec<&'static str> {
        self.rules.iter().map(|r| r.name).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPERM: u32 = RET_ERRNO | 1;
    const ENOSYS: u32 = RET_ERRNO | 38;
    const EAFNOSUPPORT: u32 = RET_ERRNO | 97;
    const I386: u32 = 0x4000_0003;

    /// What a rule should do, from the brief rather than from the compiler.
    fn expected_action(action: RuleAction, args: [u64; 6]) -> u32 {
        let low = |i: usize| args[i] as u32;
        let refuse = |cond: bool, no: u32| if cond { no } else { RET_ALLOW };
        match action {
            RuleAction::Errno(e) => RET_ERRNO | e as u32,
            RuleAction::CloneFlags => refuse(low(0) & 0x7e02_0000 != 0, EPERM),
            RuleAction::Ioctl => refuse(low(1) == 0x5412 || low(1) == 0x541c, EPERM),
            RuleAction::SocketFamily if [2, 10].contains(&low(0)) => {
                refuse(low(2) == 262, RET_ERRNO | 93)
            }
            RuleAction::SocketFamily => refuse(low(0) != 1, EAFNOSUPPORT),
            RuleAction::Personality => refuse(low(0) != 0 && low(0) != u32::MAX, EPERM),
            RuleAction::NoFastOpen(i) => refuse(low(i as usize) & 0x2000_0000 != 0, EPERM),
            RuleAction::Broker => RET_USER_NOTIF,
            RuleAction::NoSetid(i) => refuse(low(i as usize) & 0o6000 != 0, EPERM),
            RuleAction::NoSetidCreate { flags, mode } => refuse(
                low(flags as usize) & 0o20000100 != 0 && low(mode as usize) & 0o6000 != 0,
                EPERM,
            ),
            RuleAction::NotPid1(i) => refuse(low(i as usize) == 1, EPERM),
            RuleAction::NotPid1Who { process, user } => {
                refuse(low(0) == user || (low(0) == process && low(1) == 1), EPERM)
            }
            RuleAction::MemfdNoExec if low(1) & 0x10 != 0 => RET_ERRNO | 13,
            RuleAction::MemfdNoExec if low(1) & 0x8 != 0 => RET_ALLOW,
            RuleAction::MemfdNoExec => RET_USER_NOTIF,
        }
    }

    fn expected(rules: &[Rule], nr: u32, args: [u64; 6]) -> u32 {
        if nr >= 0x4000_0000 {
            return RET_KILL_PROCESS;
        }
        match rules.iter().find(|r| r.nr == nr) {
            Some(r) => expected_action(r.action, args),
            None if nr > 469 || names::name(nr).is_none() => ENOSYS,
            None => RET_ALLOW,
        }
    }

    /// Arguments that hit each check's edges, then pseudo-random ones (high bits included).
    fn arg_samples() -> Vec<[u64; 6]> {
        let mut v: Vec<[u64; 6]> = [
            0,
            0x0120_0011,   // fork's flags
            0x003d_0f00,   // pthread_create's flags
            0x1000_0011,   // CLONE_NEWUSER | SIGCHLD
            0x80,          // CSIGNAL bit, also CLONE_NEWTIME
            0x0002_0000,   // CLONE_NEWNS
            1,             // AF_UNIX
            2,             // AF_INET
            10,            // AF_INET6
            16,            // AF_NETLINK
            0xffff_ffff,   // personality query
            0x0040_0000,   // READ_IMPLIES_EXEC
            0x1_0000_0002, // AF_INET with high bits
            u64::MAX,
        ]
        .iter()
        .flat_map(|&a| [[a, 0, 0, 0, 0, 0], [3, a, 0, 0, 0, 0]])
        .collect();
        for flags in [0x2000_0000u64, 0x2000_4040, 0xffff_ffff_dfff_ffff, 0x4040] {
            v.push([3, 0, flags, flags, 0, 0]);
        }
        // open/openat: flags with and without O_CREAT or O_TMPFILE, modes with and without
        // the setid bits (a mode without a creating flag is whatever the register held).
        for flags in [0u64, 0o100, 0o20200000, 0o2, 0xffff_ffff_0000_0000] {
            for mode in [0o644u64, 0o4755, 0o2755, 0x4c_c7f0] {
                v.push([3, flags, mode, 0, 0, 0]);
                v.push([3, 3, flags, mode, 0, 0]);
            }
        }
        for req in [0x5412, 0x541c, 0x5401, 0xffff_ffff_0000_5412, 0x1_0000_541c, 0x5413] {
            v.push([1, req, 0, 0, 0, 0]);
        }
        for (fam, proto) in
            [(2, 262), (10, 262), (0x1_0000_0002, 0xff_0000_0106), (2, 6), (1, 262), (16, 262)]
        {
            v.push([fam, 1, proto, 0, 0, 0]);
        }
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..16 {
            let mut a = [0u64; 6];
            for x in &mut a {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                *x = s;
            }
            v.push(a);
        }
        v
    }

    /// Checks `pol`'s program against `expected` for every number in 0..=600 and every sample.
    fn check_all(pol: &Policy) {
        let prog = pol.compile();
        interp::validate(&prog).expect("the kernel would accept the program");
        for nr in 0..=600 {
            for args in arg_samples() {
                let got = evaluate(&prog, AUDIT_ARCH_X86_64, nr, args, 0).expect("runs");
                assert_eq!(got, expected(&pol.rules, nr, args), "nr {nr} args {args:x?}");
            }
        }
    }

    /// The capability-mode filter (brig-caps), run through the same interpreter.
    #[test]
    fn capability_mode_filter() {
        let prog = brig_caps::capmode::filter(2);
        interp::validate(&prog).expect("the kernel would accept the program");
        let cwd = libc::AT_FDCWD as u32 as u64;
        let run = |nr: libc::c_long, args: [u64; 6]| {
            evaluate(&prog, AUDIT_ARCH_X86_64, nr as u32, args, 0).expect("runs")
        };
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        let dgram = (libc::SOCK_DGRAM | libc::SOCK_CLOEXEC) as u64;
        let cases: &[(libc::c_long, [u64; 6], u32)] = &[
            (libc::SYS_read, [0; 6], RET_ALLOW),
            (libc::SYS_accept4, [3, 0, 0, 0, 0, 0], RET_ALLOW),
            (libc::SYS_open, [0; 6], EPERM),
            (libc::SYS_openat, [cwd, 0, 0, 0, 0, 0], EPERM),
            (libc::SYS_openat, [0xffff_ffff_0000_0000 | cwd, 0, 0, 0, 0, 0], EPERM),
            (libc::SYS_openat, [3, 0, 0, 0, 0, 0], RET_ALLOW),
            (libc::SYS_renameat, [3, 0, cwd, 0, 0, 0], EPERM),
            (libc::SYS_renameat, [3, 0, 4, 0, 0, 0], RET_ALLOW),
            (libc::SYS_symlinkat, [0, cwd, 0, 0, 0, 0], EPERM),
            (libc::SYS_fchmodat, [3, 0, 0, 0, 0, 0], EPERM),
            (libc::SYS_utimensat, [3, 0, 0, 0, 0, 0], RET_ALLOW),
            (libc::SYS_utimensat, [3, 0x7fff_0000_1000, 0, 0, 0, 0], EPERM),
            (libc::SYS_utimensat, [3, 0x1_0000_0000, 0, 0, 0, 0], EPERM),
            (libc::SYS_socket, [libc::AF_UNIX as u64, 1, 0, 0, 0, 0], EPERM),
            (libc::SYS_socketpair, [libc::AF_UNIX as u64, 1, 0, 0, 0, 0], RET_ALLOW),
            (libc::SYS_socketpair, [libc::AF_UNIX as u64, dgram, 0, 0, 0, 0], EPERM),
            (libc::SYS_socketpair, [libc::AF_INET as u64, 1, 0, 0, 0, 0], EPERM),
            (libc::SYS_sendto, [3, 0, 0, 0x2000_0000, 0, 0], EPERM),
            (libc::SYS_sendto, [3, 0, 0, 0x4000, 0, 0], RET_ALLOW),
            (libc::SYS_sendmsg, [3, 0, 0x2000_0040, 0, 0, 0], EPERM),
            (libc::SYS_kill, [2, 9, 0, 0, 0, 0], RET_ALLOW),
            (libc::SYS_kill, [1, 9, 0, 0, 0, 0], EPERM),
            (libc::SYS_kill, [0, 9, 0, 0, 0, 0], EPERM),
            (libc::SYS_prlimit64, [0, 7, 0, 0, 0, 0], RET_ALLOW),
            (libc::SYS_prlimit64, [1, 7, 0, 0, 0, 0], EPERM),
            (libc::SYS_clone, [thread, 0, 0, 0, 0, 0], RET_ALLOW),
            (libc::SYS_clone, [libc::SIGCHLD as u64, 0, 0, 0, 0, 0], EPERM),
            (libc::SYS_clone3, [0; 6], ENOSYS),
            (libc::SYS_fork, [0; 6], EPERM),
            (libc::SYS_io_uring_setup, [0; 6], EPERM),
        ];
        for &(nr, args, want) in cases {
            assert_eq!(run(nr, args), want, "syscall {nr} {args:x?}");
        }
        let x32 = evaluate(&prog, AUDIT_ARCH_X86_64, 0x4000_0000, [0; 6], 0).expect("runs");
        assert_eq!(x32, RET_KILL_PROCESS);
        assert_eq!(evaluate(&prog, I386, 5, [0; 6], 0).expect("runs"), RET_KILL_PROCESS);
    }

    #[test]
    fn every_number_gets_the_table_action() {
        check_all(&Policy::default_deny());
    }

    #[test]
    fn each_group_and_rule_can_be_allowed_alone() {
        for name in groups().iter().map(|g| g.name).chain(Policy::default_deny().denied_names()) {
            let mut pol = Policy::default_deny();
            pol.allow(name).expect("known");
            let brokered = brokered().iter().any(|r| r.name == name);
            // A brokered syscall stays brokered whatever is allowed.
            assert_eq!(pol.rules.len() == Policy::default_deny().rules.len(), brokered, "{name}");
            check_all(&pol);
        }
    }

    #[test]
    fn brokered_calls_go_to_the_supervisor_unless_denied() {
        let run = |pol: &Policy| {
            evaluate(
                &pol.compile(),
                AUDIT_ARCH_X86_64,
                libc::SYS_listen as u32,
                [3, 5, 0, 0, 0, 0],
                0,
            )
        };
        let mut pol = Policy::default_deny();
        assert_eq!(run(&pol), Ok(RET_USER_NOTIF));
        pol.allow("listen").expect("known");
        assert_eq!(run(&pol), Ok(RET_USER_NOTIF));
        pol.deny("listen").expect("known");
        assert_eq!(run(&pol), Ok(EPERM));
    }

    #[test]
    fn the_broker_sees_every_refusal_and_the_observed_calls() {
        let observe = [libc::SYS_openat as u32, libc::SYS_execve as u32, libc::SYS_connect as u32];
        let mut pol = Policy::default_deny();
        pol.deny("mkdir").expect("known");
        let (normal, notifying) = (pol.compile(), pol.compile_notifying(&observe));
        interp::validate(&notifying).expect("the kernel would accept the program");
        for nr in (0..=600).chain([X32_SYSCALL_BIT | 2, u32::MAX]) {
            for args in arg_samples() {
                let want = evaluate(&normal, AUDIT_ARCH_X86_64, nr, args, 0).expect("runs");
                let got = evaluate(&notifying, AUDIT_ARCH_X86_64, nr, args, 0).expect("runs");
                let refusal = want & 0xffff_0000 == RET_ERRNO && want != ENOSYS;
                let expect = match () {
                    _ if refusal => RET_USER_NOTIF,
                    _ if observe.contains(&nr) && want != ENOSYS => RET_USER_NOTIF,
                    _ => want,
                };
                assert_eq!(got, expect, "nr {nr} args {args:x?}");
            }
        }
        let ptrace = pol.rule(libc::SYS_ptrace as u32).expect("denied");
        assert_eq!(ptrace.1.map(|g| g.name), Some("@debug"));
        assert!(pol.rule(libc::SYS_mkdir as u32).is_some_and(|(_, g)| g.is_none()));
        assert!(pol.rule(libc::SYS_read as u32).is_none());
    }

    #[test]
    fn other_architectures_and_x32_are_killed() {
        let prog = Policy::default_deny().compile();
        for nr in [0, 1, 11, 56, 59, 120, 435] {
            let i386 = evaluate(&prog, I386, nr, [0; 6], 0);
            assert_eq!(i386, Ok(RET_KILL_PROCESS), "i386 {nr}");
            let x32 = evaluate(&prog, AUDIT_ARCH_X86_64, nr | X32_SYSCALL_BIT, [0; 6], 0);
            assert_eq!(x32, Ok(RET_KILL_PROCESS), "x32 {nr}");
        }
        assert_eq!(evaluate(&prog, AUDIT_ARCH_X86_64, u32::MAX, [0; 6], 0), Ok(RET_KILL_PROCESS));
        assert_eq!(evaluate(&prog, 0, 0, [0; 6], 0), Ok(RET_KILL_PROCESS));
    }

    #[test]
    fn arguments_are_checked() {
        let prog = Policy::default_deny().compile();
        let run = |nr: i64, args: [u64; 6]| {
            evaluate(&prog, AUDIT_ARCH_X86_64, nr as u32, args, 0).expect("runs")
        };
        assert_eq!(run(libc::SYS_clone, [0x1000_0011, 0, 0, 0, 0, 0]), EPERM, "CLONE_NEWUSER");
        assert_eq!(run(libc::SYS_clone, [0x4000_0011, 0, 0, 0, 0, 0]), EPERM, "CLONE_NEWNET");
        assert_eq!(run(libc::SYS_clone, [0x0120_0011, 0, 0, 0, 0, 0]), RET_ALLOW, "fork");
        assert_eq!(run(libc::SYS_clone, [0x003d_0f00, 0, 0, 0, 0, 0]), RET_ALLOW, "thread");
        assert_eq!(run(libc::SYS_clone, [0x0000_0091, 0, 0, 0, 0, 0]), RET_ALLOW, "CSIGNAL");
        assert_eq!(run(libc::SYS_ioctl, [1, 0x5412, 0, 0, 0, 0]), EPERM, "TIOCSTI");
        assert_eq!(run(libc::SYS_ioctl, [1, 0xffff_ffff_0000_5412, 0, 0, 0, 0]), EPERM);
        assert_eq!(run(libc::SYS_ioctl, [1, 0x541c, 0, 0, 0, 0]), EPERM, "TIOCLINUX");
        assert_eq!(run(libc::SYS_ioctl, [1, 0x5401, 0, 0, 0, 0]), RET_ALLOW, "TCGETS");
        assert_eq!(run(libc::SYS_socket, [16, 3, 0, 0, 0, 0]), EAFNOSUPPORT, "AF_NETLINK");
        assert_eq!(run(libc::SYS_socket, [2, 1, 0, 0, 0, 0]), RET_ALLOW, "AF_INET");
        assert_eq!(run(libc::SYS_socketpair, [1, 1, 0, 0, 0, 0]), RET_ALLOW, "AF_UNIX");
        assert_eq!(run(libc::SYS_socketpair, [17, 3, 0, 0, 0, 0]), EAFNOSUPPORT, "AF_PACKET");
        assert_eq!(run(libc::SYS_personality, [0; 6]), RET_ALLOW, "PER_LINUX");
        assert_eq!(run(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]), RET_ALLOW, "query");
        assert_eq!(run(libc::SYS_personality, [0x0040_0000, 0, 0, 0, 0, 0]), EPERM, "RIE");
        assert_eq!(run(libc::SYS_personality, [0x0004_0000, 0, 0, 0, 0, 0]), EPERM, "no ASLR");
        assert_eq!(run(libc::SYS_clone3, [0; 6]), ENOSYS);
        assert_eq!(run(470, [0; 6]), ENOSYS, "listns, newer than the table");
        assert_eq!(run(400, [0; 6]), ENOSYS, "unassigned");
        assert_eq!(run(libc::SYS_ptrace, [0; 6]), EPERM);
        assert_eq!(run(libc::SYS_read, [0; 6]), RET_ALLOW);
    }

    #[test]
    fn allow_and_deny_change_the_program() {
        let mut pol = Policy::default_deny();
        let run = |pol: &Policy, nr: i64, a0: u64| {
            evaluate(&pol.compile(), AUDIT_ARCH_X86_64, nr as u32, [a0, 0, 0, 0, 0, 0], 0)
        };
        pol.allow("@debug").expect("group");
        assert_eq!(run(&pol, libc::SYS_ptrace, 0), Ok(RET_ALLOW));
        assert_eq!(run(&pol, libc::SYS_bpf, 0), Ok(EPERM));
        pol.deny("ptrace").expect("rule");
        assert_eq!(run(&pol, libc::SYS_ptrace, 0), Ok(EPERM));
        pol.deny("mkdir").expect("any syscall");
        assert_eq!(run(&pol, libc::SYS_mkdir, 0), Ok(EPERM));
        assert!(pol.denied_names().ends_with(&["ptrace", "mkdir"]));
        pol.allow("mkdir").expect("any syscall");
        assert_eq!(run(&pol, libc::SYS_mkdir, 0), Ok(RET_ALLOW));
        pol.allow("@namespaces").expect("group");
        assert_eq!(run(&pol, libc::SYS_clone3, 0), Ok(RET_ALLOW), "clone3 comes with the group");
        assert_eq!(run(&pol, libc::SYS_clone, 0x1000_0011), Ok(RET_ALLOW));
        pol.deny("@namespaces").expect("group");
        assert_eq!(run(&pol, libc::SYS_clone3, 0), Ok(ENOSYS));
        for bad in ["@nope", "nope", "", "PTRACE", "listns"] {
            let e = pol.allow(bad).expect_err("unknown");
            assert!(e.contains(&format!("`{bad}`")) && e.contains("@debug"), "{e}");
            assert!(pol.deny(bad).is_err());
        }
        assert!(matches!(lookup("@debug"), Some(Selection::Group(g)) if g.syscalls.len() == 6));
        assert!(matches!(lookup("ptrace"), Some(Selection::Rule(r)) if r.nr == 101));
        assert!(matches!(lookup("mkdir"), Some(Selection::Syscall { nr: 83, .. })));
        assert!(lookup("@nope").is_none());
    }

    #[test]
    fn the_program_is_small_and_every_path_short() {
        let prog = Policy::default_deny().compile();
        let default = Policy::default_deny();
        let (mut worst, mut plain) = ((0, 0), (usize::MAX, 0));
        for nr in (0..=600).chain([X32_SYSCALL_BIT, u32::MAX]) {
            for args in arg_samples() {
                let (ret, steps) =
                    interp::evaluate_counted(&prog, AUDIT_ARCH_X86_64, nr, args, 0).expect("runs");
                worst = worst.max((steps, nr));
                if ret == RET_ALLOW && default.rules.iter().all(|r| r.nr != nr) {
                    plain = (plain.0.min(steps), plain.1.max(steps));
                }
            }
        }
        eprintln!(
            "default program: {} instructions; worst path {} (nr {}); other allowed calls {}..={}",
            prog.len(),
            worst.0,
            worst.1,
            plain.0,
            plain.1
        );
        assert!(prog.len() <= 400, "{} instructions", prog.len());
        assert!(worst.0 <= 20, "worst path {worst:?}");
    }

    #[test]
    fn long_programs_use_long_jumps_and_stay_correct() {
        // Every other known syscall denied: ~200 intervals that cannot merge, so the lower half
        // of the top split is longer than an 8-bit jump.
        let mut pol = Policy::default_deny();
        for nr in (0..=MAX_KNOWN_NR).step_by(2) {
            if let Some(name) = names::name(nr) {
                pol.deny(name).expect("known");
            }
        }
        let prog = pol.compile();
        assert!(prog.iter().any(|i| i.code == 0x05), "no JA in {} instructions", prog.len());
        assert!(prog.len() <= interp::MAX_INSNS);
        check_all(&pol);
    }

    #[test]
    fn the_table_is_consistent() {
        let mut seen = Vec::new();
        for g in groups() {
            assert!(g.name.starts_with('@') && g.why.ends_with('.'), "{}", g.name);
            assert!(!g.syscalls.is_empty(), "{}", g.name);
            for r in g.syscalls {
                assert_eq!(names::name(r.nr), Some(r.name), "{} has number {}", r.name, r.nr);
                assert!(!r.why.is_empty(), "{}", r.name);
                assert!(!seen.contains(&r.nr), "{} twice", r.name);
                seen.push(r.nr);
            }
        }
        assert_eq!(names::name(MAX_KNOWN_NR), Some("file_setattr"));
        assert_eq!(errno(libc::EPERM), EPERM);
        assert_eq!(CLONE_NEW_ANY, 0x7e02_0000);
    }
}
