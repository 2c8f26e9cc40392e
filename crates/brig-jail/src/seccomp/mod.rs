//! The seccomp policy: a deny-list of kernel attack surface in named groups (reviewed data in
//! `table.rs`), its compiler (`bpf.rs`) and an interpreter the tests check it with (`interp.rs`).

mod bpf;
pub mod interp;
mod table;

pub use bpf::{AUDIT_ARCH_X86_64, RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS};

/// The highest syscall number reviewed for the table (file_setattr, Linux 6.17). Anything newer
/// is answered ENOSYS: a new syscall the deny-list has never heard of never reaches the kernel.
pub const MAX_KNOWN_NR: u32 = 469;

/// What a rule does to its syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    /// Refuse with this errno.
    Errno(i32),
    /// clone: EPERM if any namespace flag is set in the low 32 bits of the flags.
    CloneFlags,
    /// ioctl: EPERM for TIOCSTI and TIOCLINUX, compared on the low 32 bits of the request.
    Ioctl,
    /// socket/socketpair: only AF_UNIX, AF_INET, AF_INET6; others EAFNOSUPPORT.
    SocketFamily,
    /// personality: only the query (0xffffffff) and PER_LINUX (0).
    Personality,
}

#[derive(Debug)]
pub struct Rule {
    pub name: &'static str,
    pub nr: u32,
    pub action: RuleAction,
    pub why: &'static str,
}

#[derive(Debug)]
pub struct Group {
    pub name: &'static str,
    pub why: &'static str,
    pub syscalls: &'static [Rule],
}

/// The default deny-list.
pub fn groups() -> &'static [Group] {
    table::GROUPS
}

/// The rules a name selects: a whole group (`@debug`) or one syscall (`ptrace`).
fn select(name: &str) -> Result<Vec<&'static Rule>, String> {
    if let Some(g) = groups().iter().find(|g| g.name == name) {
        return Ok(g.syscalls.iter().collect());
    }
    if let Some(r) = groups().iter().flat_map(|g| g.syscalls).find(|r| r.name == name) {
        return Ok(vec![r]);
    }
    let names: Vec<&str> = groups().iter().map(|g| g.name).collect();
    Err(format!("unknown syscall group or name `{name}`; groups are {}", names.join(", ")))
}

/// The effective deny-list of one run.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<&'static Rule>,
}

impl Policy {
    pub fn default_deny() -> Policy {
        Policy { rules: groups().iter().flat_map(|g| g.syscalls).collect() }
    }

    /// Removes a group or syscall from the deny-list (a loosening: callers warn).
    pub fn allow(&mut self, name: &str) -> Result<(), String> {
        let sel = select(name)?;
        self.rules.retain(|r| !sel.iter().any(|s| s.name == r.name));
        Ok(())
    }

    /// Adds a group or syscall (back) to the deny-list.
    pub fn deny(&mut self, name: &str) -> Result<(), String> {
        for r in select(name)? {
            if !self.rules.iter().any(|x| x.name == r.name) {
                self.rules.push(r);
            }
        }
        Ok(())
    }

    pub fn compile(&self) -> Vec<brig_sys::seccomp::SockFilter> {
        bpf::compile(&self.rules)
    }

    pub fn denied_names(&self) -> Vec<&'static str> {
        self.rules.iter().map(|r| r.name).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const I386: u32 = 0x4000_0003;

    fn eval(p: &[brig_sys::seccomp::SockFilter], nr: u32, args: [u64; 6]) -> u32 {
        interp::run(p, AUDIT_ARCH_X86_64, nr, args, 0).expect("well-formed").0
    }

    fn want(r: &Rule, args: [u64; 6]) -> u32 {
        match r.action {
            RuleAction::Errno(e) => RET_ERRNO | e as u32,
            RuleAction::CloneFlags if args[0] as u32 & 0x1000_0000 != 0 => {
                RET_ERRNO | libc::EPERM as u32
            }
            RuleAction::SocketFamily if ![1, 2, 10].contains(&(args[0] as u32)) => {
                RET_ERRNO | libc::EAFNOSUPPORT as u32
            }
            RuleAction::Personality if ![0, 0xffff_ffff].contains(&(args[0] as u32)) => {
                RET_ERRNO | libc::EPERM as u32
            }
            _ => RET_ALLOW,
        }
    }

    #[test]
    fn every_number_gets_the_table_action() {
        let p = Policy::default_deny().compile();
        let table: Vec<&Rule> = groups().iter().flat_map(|g| g.syscalls).collect();
        for nr in 0..=600u32 {
            for args in [[0u64; 6], [0x1000_0011, 0, 0, 0, 0, 0], [16, 3, 0, 0, 0, 0]] {
                let got = eval(&p, nr, args);
                let expect = match table.iter().find(|r| r.nr == nr) {
                    Some(r) => want(r, args),
                    None if nr > MAX_KNOWN_NR => RET_ERRNO | libc::ENOSYS as u32,
                    None => RET_ALLOW,
                };
                assert_eq!(got, expect, "nr {nr} args {args:?}");
            }
        }
    }

    #[test]
    fn arch_and_x32_are_killed() {
        let p = Policy::default_deny().compile();
        assert_eq!(interp::run(&p, I386, 20, [0; 6], 0).expect("ok").0, RET_KILL_PROCESS);
        assert_eq!(eval(&p, 39 | 0x4000_0000, [0; 6]), RET_KILL_PROCESS);
        assert_eq!(eval(&p, 0xffff_ffff, [0; 6]), RET_KILL_PROCESS);
    }

    #[test]
    fn argument_checks() {
        let p = Policy::default_deny().compile();
        let eperm = RET_ERRNO | libc::EPERM as u32;
        let clone = libc::SYS_clone as u32;
        assert_eq!(eval(&p, clone, [0x1000_0000 | 17, 0, 0, 0, 0, 0]), eperm);
        assert_eq!(eval(&p, clone, [0x4000_0000 | 17, 0, 0, 0, 0, 0]), eperm);
        assert_eq!(eval(&p, clone, [0x0120_0011, 0, 0, 0, 0, 0]), RET_ALLOW); // fork
        assert_eq!(eval(&p, clone, [0x003d_0f00, 0, 0, 0, 0, 0]), RET_ALLOW); // pthread_create
        let ioctl = libc::SYS_ioctl as u32;
        for req in [0x5412u64, 0x1_0000_5412, 0xffff_ffff_0000_5412, 0x541C] {
            assert_eq!(eval(&p, ioctl, [0, req, 0, 0, 0, 0]), eperm, "{req:#x}");
        }
        assert_eq!(eval(&p, ioctl, [0, 0x5401, 0, 0, 0, 0]), RET_ALLOW);
        let socket = libc::SYS_socket as u32;
        assert_eq!(eval(&p, socket, [16, 3, 0, 0, 0, 0]), RET_ERRNO | libc::EAFNOSUPPORT as u32);
        assert_eq!(eval(&p, socket, [2, 1, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(eval(&p, socket, [0x1_0000_0002, 1, 0, 0, 0, 0]), RET_ALLOW);
        let pers = libc::SYS_personality as u32;
        assert_eq!(eval(&p, pers, [0, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(eval(&p, pers, [0xffff_ffff, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(eval(&p, pers, [0x040_0000, 0, 0, 0, 0, 0]), eperm);
        assert_eq!(eval(&p, libc::SYS_clone3 as u32, [0; 6]), RET_ERRNO | libc::ENOSYS as u32);
        assert_eq!(eval(&p, MAX_KNOWN_NR + 1, [0; 6]), RET_ERRNO | libc::ENOSYS as u32);
    }

    #[test]
    fn allow_and_deny_change_the_program() {
        let mut pol = Policy::default_deny();
        pol.allow("@debug").expect("group");
        let p = pol.compile();
        assert_eq!(eval(&p, libc::SYS_ptrace as u32, [0; 6]), RET_ALLOW);
        assert_eq!(eval(&p, libc::SYS_bpf as u32, [0; 6]), RET_ERRNO | libc::EPERM as u32);
        pol.deny("ptrace").expect("name");
        assert_eq!(
            eval(&pol.compile(), libc::SYS_ptrace as u32, [0; 6]),
            RET_ERRNO | libc::EPERM as u32
        );
        let e = pol.allow("@nope").expect_err("unknown");
        assert!(e.contains("@nope") && e.contains("@debug"), "{e}");
    }

    #[test]
    fn program_is_small_and_every_path_is_short() {
        let p = Policy::default_deny().compile();
        assert!(p.len() < 400, "{} instructions", p.len());
        let worst = (0..=MAX_KNOWN_NR + 5)
            .map(|nr| interp::run(&p, AUDIT_ARCH_X86_64, nr, [0; 6], 0).expect("ok").1)
            .max()
            .unwrap_or(0);
        assert!(worst <= 30, "worst path {worst} instructions");
    }

    #[test]
    fn interpreter_rejects_malformed_programs() {
        use brig_sys::seccomp::SockFilter as F;
        let jump_out = [F { code: 0x15, jt: 5, jf: 0, k: 0 }, F { code: 0x06, jt: 0, jf: 0, k: 0 }];
        assert!(interp::run(&jump_out, AUDIT_ARCH_X86_64, 0, [0; 6], 0).is_err());
        let no_ret = [F { code: 0x20, jt: 0, jf: 0, k: 0 }];
        assert!(interp::run(&no_ret, AUDIT_ARCH_X86_64, 0, [0; 6], 0).is_err());
        let bad_op = [F { code: 0xff, jt: 0, jf: 0, k: 0 }];
        assert!(interp::run(&bad_op, AUDIT_ARCH_X86_64, 0, [0; 6], 0).is_err());
    }
}
