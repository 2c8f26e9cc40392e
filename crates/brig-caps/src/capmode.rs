//! Capability mode: Linux's `cap_enter()`, built from a seccomp filter and a Landlock layer.
//!
//! After entering it, a process can act only through the file descriptors it holds:
//!
//! - **No path lookups from the root or the working directory.** seccomp refuses every syscall
//!   that takes a path without a directory fd (`open`, `stat`, `execve`, ...) and every `*at()`
//!   call whose directory fd is `AT_FDCWD`. A path through a held directory fd is checked by a
//!   Landlock layer that allows nothing but what is beneath the directory capabilities, with their
//!   rights: `..`, an absolute path or a symlink that leads out of them is refused by the kernel
//!   (EACCES), whatever fd it starts from.
//! - **No new network authority.** `socket`, `bind` and `connect` are refused; `socketpair` only
//!   for unix streams and seqpackets; a send with `MSG_FASTOPEN` (a connect in disguise) is
//!   refused; `accept` works on the listeners it holds.
//! - **No metadata changes by path** (`fchmodat`, `fchownat`, `utimensat` with a path, xattrs
//!   by path): the fd forms work. Reading metadata (`fstatat`, `readlinkat`) with an absolute
//!   path is not refused: it reveals the prison's view, not the host's.
//! - **No signals to other processes, no new processes.** `kill`, `tgkill`, `rt_sigqueueinfo`,
//!   `rt_tgsigqueueinfo`, `prlimit64` and the scheduling and page-migration calls work only on
//!   the process itself; `tkill`, `pidfd_*`, `ptrace`, `process_vm_*`, `setpriority` and
//!   `ioprio_set` are refused; `fork`, `vfork` and `clone` without `CLONE_THREAD` are refused and
//!   `clone3` gets ENOSYS (so the pid the filter compares with is always the caller's). Threads
//!   work. `unshare`, `setns` and io_uring are refused too, whatever the default deny-list says.
//! - **No ambient IPC names:** System V `*get` and POSIX message queues by name are refused.
//!
//! seccomp refusals answer EPERM, Landlock's EACCES. Both layers stack on whatever the process
//! had before and can never be lifted. x86_64 only, like the rest of brig.

use std::os::fd::BorrowedFd;

use brig_policy::Rights;
use brig_sys::seccomp::bpf::{
    arg_high, arg_low, errno, ins, ret, ALU_AND_K, ARCH, AUDIT_ARCH_X86_64, JEQ_K, JGE_K, JSET_K,
    LD_W_ABS, NR, RET_ALLOW, RET_KILL_PROCESS, X32_SYSCALL_BIT,
};
use brig_sys::seccomp::SockFilter;
use landlock::{
    Access, AccessFs, CompatLevel, Compatible, PathBeneath, Ruleset, RulesetAttr, RulesetCreated,
    RulesetCreatedAttr, RulesetStatus, ABI,
};

use crate::Error;

/// What the filter does with one syscall.
#[derive(Debug, Clone, Copy)]
enum Check {
    /// Always EPERM.
    Deny,
    /// Always ENOSYS (libc falls back to an older call the filter can check).
    NoSys,
    /// EPERM unless the path argument is NULL (`utimensat(fd, NULL, ...)` is `futimens`).
    NullPathOnly(u32),
    /// EPERM when these flags (low 32 bits of the argument) hold MSG_FASTOPEN.
    NoFastOpen(u32),
    /// EPERM if any of these arguments (directory fds) is `AT_FDCWD`.
    NotCwd(&'static [u32]),
    /// Allowed only if this argument (a pid) is the process's own; `or_zero` also allows 0
    /// ("myself" for prlimit64).
    OwnPid { arg: u32, or_zero: bool },
    /// clone: allowed only with `CLONE_THREAD`.
    ThreadsOnly,
    /// socketpair: allowed only for `AF_UNIX` streams and seqpackets (a datagram socket can
    /// send to any named socket by path).
    UnixStreamOnly,
}

use Check::*;

/// The rules, reviewed as data: (syscall number, check). The filter does not rely on brig's
/// default deny-list: a program may enter capability mode outside brig, or under a loosened
/// list.
const RULES: &[(libc::c_long, Check)] = &[
    // Paths from the root or the working directory.
    (libc::SYS_open, Deny),
    (libc::SYS_creat, Deny),
    (libc::SYS_stat, Deny),
    (libc::SYS_lstat, Deny),
    (libc::SYS_access, Deny),
    (libc::SYS_readlink, Deny),
    (libc::SYS_mkdir, Deny),
    (libc::SYS_rmdir, Deny),
    (libc::SYS_unlink, Deny),
    (libc::SYS_rename, Deny),
    (libc::SYS_link, Deny),
    (libc::SYS_symlink, Deny),
    (libc::SYS_chmod, Deny),
    (libc::SYS_chown, Deny),
    (libc::SYS_lchown, Deny),
    (libc::SYS_chdir, Deny),
    (libc::SYS_chroot, Deny),
    (libc::SYS_truncate, Deny),
    (libc::SYS_utime, Deny),
    (libc::SYS_utimes, Deny),
    (libc::SYS_mknod, Deny),
    (libc::SYS_execve, Deny),
    (libc::SYS_uselib, Deny),
    (libc::SYS_statfs, Deny),
    (libc::SYS_setxattr, Deny),
    (libc::SYS_lsetxattr, Deny),
    (libc::SYS_getxattr, Deny),
    (libc::SYS_lgetxattr, Deny),
    (libc::SYS_listxattr, Deny),
    (libc::SYS_llistxattr, Deny),
    (libc::SYS_removexattr, Deny),
    (libc::SYS_lremovexattr, Deny),
    (libc::SYS_inotify_add_watch, Deny),
    (libc::SYS_fanotify_init, Deny),
    (libc::SYS_acct, Deny),
    (libc::SYS_quotactl, Deny),
    (libc::SYS_name_to_handle_at, Deny),
    (libc::SYS_open_by_handle_at, Deny),
    // Metadata changes by path: an absolute path ignores the directory fd, and Landlock does
    // not cover chmod, chown, utimes or xattrs. The fd forms (fchmod, fchown, fsetxattr,
    // futimens) stay.
    (libc::SYS_fchmodat, Deny),
    (452, Deny), // fchmodat2
    (libc::SYS_fchownat, Deny),
    (libc::SYS_futimesat, Deny),
    (libc::SYS_utimensat, NullPathOnly(1)),
    (463, Deny), // setxattrat
    (466, Deny), // removexattrat
    (469, Deny), // file_setattr
    // Lookups through a directory fd: refused from the working directory; an absolute path or
    // `..` is left to the Landlock layer (reading metadata by absolute path is not refused).
    (libc::SYS_openat, NotCwd(&[0])),
    (libc::SYS_openat2, NotCwd(&[0])),
    (libc::SYS_mkdirat, NotCwd(&[0])),
    (libc::SYS_mknodat, NotCwd(&[0])),
    (libc::SYS_newfstatat, NotCwd(&[0])),
    (libc::SYS_unlinkat, NotCwd(&[0])),
    (libc::SYS_renameat, NotCwd(&[0, 2])),
    (libc::SYS_renameat2, NotCwd(&[0, 2])),
    (libc::SYS_linkat, NotCwd(&[0, 2])),
    (libc::SYS_symlinkat, NotCwd(&[1])),
    (libc::SYS_readlinkat, NotCwd(&[0])),
    (libc::SYS_faccessat, NotCwd(&[0])),
    (libc::SYS_faccessat2, NotCwd(&[0])),
    (libc::SYS_statx, NotCwd(&[0])),
    (libc::SYS_execveat, NotCwd(&[0])),
    (libc::SYS_open_tree, NotCwd(&[0])),
    (libc::SYS_fanotify_mark, NotCwd(&[3])),
    (464, NotCwd(&[0])), // getxattrat
    (465, NotCwd(&[0])), // listxattrat
    (467, NotCwd(&[0])), // open_tree_attr
    (468, NotCwd(&[0])), // file_getattr
    // New network authority.
    (libc::SYS_socket, Deny),
    (libc::SYS_bind, Deny),
    (libc::SYS_connect, Deny),
    (libc::SYS_socketpair, UnixStreamOnly),
    (libc::SYS_sendto, NoFastOpen(3)),
    (libc::SYS_sendmsg, NoFastOpen(2)),
    (libc::SYS_sendmmsg, NoFastOpen(3)),
    // Other processes.
    (libc::SYS_kill, OwnPid { arg: 0, or_zero: false }),
    (libc::SYS_tgkill, OwnPid { arg: 0, or_zero: false }),
    (libc::SYS_rt_sigqueueinfo, OwnPid { arg: 0, or_zero: false }),
    (libc::SYS_rt_tgsigqueueinfo, OwnPid { arg: 0, or_zero: false }),
    (libc::SYS_prlimit64, OwnPid { arg: 0, or_zero: true }),
    (libc::SYS_sched_setaffinity, OwnPid { arg: 0, or_zero: true }),
    (libc::SYS_sched_setscheduler, OwnPid { arg: 0, or_zero: true }),
    (libc::SYS_sched_setparam, OwnPid { arg: 0, or_zero: true }),
    (libc::SYS_sched_setattr, OwnPid { arg: 0, or_zero: true }),
    (libc::SYS_migrate_pages, OwnPid { arg: 0, or_zero: true }),
    (libc::SYS_move_pages, OwnPid { arg: 0, or_zero: true }),
    (libc::SYS_setpriority, Deny),
    (libc::SYS_ioprio_set, Deny),
    (libc::SYS_tkill, Deny),
    (libc::SYS_pidfd_open, Deny),
    (libc::SYS_pidfd_send_signal, Deny),
    (libc::SYS_pidfd_getfd, Deny),
    (libc::SYS_ptrace, Deny),
    (libc::SYS_process_vm_readv, Deny),
    (libc::SYS_process_vm_writev, Deny),
    (libc::SYS_kcmp, Deny),
    (libc::SYS_fork, Deny),
    (libc::SYS_vfork, Deny),
    (libc::SYS_clone, ThreadsOnly),
    (libc::SYS_clone3, NoSys),
    (libc::SYS_unshare, Deny),
    (libc::SYS_setns, Deny),
    // Work the filter could not see.
    (libc::SYS_io_uring_setup, Deny),
    (libc::SYS_io_uring_enter, Deny),
    (libc::SYS_io_uring_register, Deny),
    // IPC objects found by name or key.
    (libc::SYS_shmget, Deny),
    (libc::SYS_semget, Deny),
    (libc::SYS_msgget, Deny),
    (libc::SYS_mq_open, Deny),
    (libc::SYS_mq_unlink, Deny),
];

/// `AT_FDCWD` as the kernel sees an `int` argument (low 32 bits).
const AT_FDCWD: u32 = libc::AT_FDCWD as u32;

/// The capability-mode seccomp program for the process whose pid is `own_pid`.
///
/// Each syscall without an argument check ends in a constant, so the kernel's per-syscall
/// action cache skips the filter for every syscall it allows outright (read, write, accept,
/// sendfile...): the program costs nothing on a server's hot path.
pub fn filter(own_pid: u32) -> Vec<SockFilter> {
    let deny = errno(libc::EPERM);
    let mut prog = vec![
        ins(LD_W_ABS, 0, 0, ARCH),
        ins(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        ret(RET_KILL_PROCESS),
        ins(LD_W_ABS, 0, 0, NR),
        // x32 calls share the arch value; none of the numbers below apply to them.
        ins(JGE_K, 0, 1, X32_SYSCALL_BIT),
        ret(RET_KILL_PROCESS),
    ];
    for &(nr, check) in RULES {
        let leaf: Vec<SockFilter> = match check {
            Deny => vec![ret(deny)],
            NoSys => vec![ret(errno(libc::ENOSYS))],
            NullPathOnly(a) => vec![
                ins(LD_W_ABS, 0, 0, arg_low(a)),
                ins(JEQ_K, 0, 2, 0),
                ins(LD_W_ABS, 0, 0, arg_high(a)),
                ins(JEQ_K, 1, 0, 0),
                ret(deny),
                ret(RET_ALLOW),
            ],
            NoFastOpen(a) => vec![
                ins(LD_W_ABS, 0, 0, arg_low(a)),
                ins(JSET_K, 0, 1, libc::MSG_FASTOPEN as u32),
                ret(deny),
                ret(RET_ALLOW),
            ],
            NotCwd(args) => {
                let n = args.len() as u8;
                let mut v = Vec::new();
                for (k, &a) in args.iter().enumerate() {
                    v.push(ins(LD_W_ABS, 0, 0, arg_low(a)));
                    // to the `ret(deny)` after the final `ret(RET_ALLOW)`
                    v.push(ins(JEQ_K, 2 * (n - k as u8) - 1, 0, AT_FDCWD));
                }
                v.extend([ret(RET_ALLOW), ret(deny)]);
                v
            }
            OwnPid { arg, or_zero } => {
                let mut v = vec![ins(LD_W_ABS, 0, 0, arg_low(arg))];
                if or_zero {
                    v.push(ins(JEQ_K, 2, 0, own_pid));
                    v.push(ins(JEQ_K, 1, 0, 0));
                } else {
                    v.push(ins(JEQ_K, 1, 0, own_pid));
                }
                v.extend([ret(deny), ret(RET_ALLOW)]);
                v
            }
            ThreadsOnly => vec![
                ins(LD_W_ABS, 0, 0, arg_low(0)),
                ins(JSET_K, 1, 0, libc::CLONE_THREAD as u32),
                ret(deny),
                ret(RET_ALLOW),
            ],
            UnixStreamOnly => vec![
                ins(LD_W_ABS, 0, 0, arg_low(0)),
                ins(JEQ_K, 0, 3, libc::AF_UNIX as u32),
                ins(LD_W_ABS, 0, 0, arg_low(1)),
                ins(ALU_AND_K, 0, 0, 0xf),
                ins(JEQ_K, 0, 1, libc::SOCK_DGRAM as u32),
                ret(deny),
                ret(RET_ALLOW),
            ],
        };
        prog.push(ins(JEQ_K, 0, leaf.len() as u8, nr as u32));
        prog.extend(leaf);
    }
    prog.push(ret(RET_ALLOW));
    prog
}

/// Maps unveil-style rights to Landlock access rights for a file or a directory.
pub fn access(rights: Rights, is_dir: bool, abi: ABI) -> landlock::BitFlags<AccessFs> {
    let mut a = landlock::BitFlags::<AccessFs>::empty();
    if rights.read {
        a |= AccessFs::ReadFile | AccessFs::ReadDir;
    }
    if rights.write {
        a |= AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev;
    }
    if rights.exec {
        a |= AccessFs::Execute;
    }
    if rights.create {
        a |= AccessFs::MakeReg
            | AccessFs::MakeDir
            | AccessFs::MakeSym
            | AccessFs::MakeFifo
            | AccessFs::MakeSock
            | AccessFs::RemoveFile
            | AccessFs::RemoveDir
            | AccessFs::Refer;
    }
    let supported = if is_dir { AccessFs::from_all(abi) } else { AccessFs::from_file(abi) };
    a & supported
}

/// The kernel's Landlock ABI, or why there is none.
pub fn landlock_abi() -> Result<ABI, Error> {
    match brig_sys::landlock::abi() {
        Ok(v) if v >= 1 => Ok(ABI::from(v)),
        Ok(v) => Err(Error::Unavailable { layer: "landlock", why: format!("ABI {v}") }),
        Err(e) => Err(Error::Unavailable { layer: "landlock", why: e.to_string() }),
    }
}

/// The capability-mode Landlock layer: every filesystem right handled, and allowed only beneath
/// `dirs` (with their rights) and, if given, on the single file `exec` (read and execute: the
/// program brig is about to run).
pub fn ruleset(
    dirs: &[(BorrowedFd<'_>, Rights)],
    exec: Option<BorrowedFd<'_>>,
) -> Result<RulesetCreated, Error> {
    let abi = landlock_abi()?;
    let err = |e: landlock::RulesetError| Error::Kernel {
        step: "capability mode: Landlock ruleset",
        source: std::io::Error::other(e.to_string()),
    };
    let mut rs = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .map_err(err)?
        .create()
        .map_err(err)?;
    for (fd, rights) in dirs {
        let a = access(*rights, true, abi);
        if !a.is_empty() {
            rs = rs.add_rule(PathBeneath::new(*fd, a)).map_err(err)?;
        }
    }
    if let Some(fd) = exec {
        rs = rs.add_rule(PathBeneath::new(fd, access(Rights::RX, false, abi))).map_err(err)?;
    }
    Ok(rs)
}

/// Restricts the calling (single-threaded) process: no_new_privs, the Landlock layer `rs`, then
/// the seccomp filter. Refuses unless the kernel enforces all of it.
pub fn enter(rs: RulesetCreated, own_pid: u32) -> Result<(), Error> {
    let kernel = |step: &'static str| move |source| Error::Kernel { step, source };
    brig_sys::process::require_single_thread().map_err(|_| Error::Threads)?;
    brig_sys::process::prctl(libc::PR_SET_NO_NEW_PRIVS, 1).map_err(kernel("no_new_privs"))?;
    let st = rs.restrict_self().map_err(|e| Error::Kernel {
        step: "capability mode: Landlock restrict_self",
        source: std::io::Error::other(e.to_string()),
    })?;
    if st.ruleset != RulesetStatus::FullyEnforced {
        return Err(Error::Unavailable {
            layer: "landlock",
            why: "the kernel enforced the capability-mode ruleset only partly".into(),
        });
    }
    brig_sys::seccomp::install(&filter(own_pid)).map_err(kernel("capability mode: seccomp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every jump lands inside the program and every path ends in a return.
    #[test]
    fn filter_is_well_formed() {
        let p = filter(2);
        assert!(p.len() < 4096, "{} instructions", p.len());
        for (i, x) in p.iter().enumerate() {
            if x.code == JEQ_K || x.code == JSET_K {
                assert!(i + 1 + (x.jt.max(x.jf) as usize) < p.len(), "jump out at {i}");
            }
        }
        assert_eq!(p.last().map(|x| x.k), Some(RET_ALLOW));
        let mut nrs: Vec<libc::c_long> = RULES.iter().map(|r| r.0).collect();
        nrs.sort();
        assert!(nrs.windows(2).all(|w| w[0] != w[1]), "a syscall listed twice");
    }
}
