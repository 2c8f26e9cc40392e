//! The default deny-list: reviewed data. One syscall per line, with the reason it is refused;
//! each group with the sentence `brig check` shows. x86_64 numbers, from `libc::SYS_*` where
//! libc has the constant and as a commented literal where it does not yet. Group names follow
//! systemd's where one exists. Every rule here is checked against the compiled filter, one by
//! one, by the tests in `mod.rs`.

use libc::c_long;

use super::{Group, Rule, RuleAction};

/// A rule refused with EPERM, the answer a privileged operation gets from an unprivileged caller.
const fn eperm(name: &'static str, nr: c_long, why: &'static str) -> Rule {
    Rule { name, nr: nr as u32, action: RuleAction::Errno(libc::EPERM), why }
}

/// A rule with another action: an errno, or a check of the arguments.
const fn rule(name: &'static str, nr: c_long, action: RuleAction, why: &'static str) -> Rule {
    Rule { name, nr: nr as u32, action, why }
}

#[rustfmt::skip]
pub(super) static GROUPS: &[Group] = &[
    Group {
        name: "@mount",
        why: "Mounting and re-rooting would change the filesystem view brig built; it is fixed \
              before the program starts.",
        syscalls: &[
            eperm("mount", libc::SYS_mount, "a remount could drop read-only or nosuid, or cover files"),
            eperm("umount2", libc::SYS_umount2, "unmounting could uncover what a mount hides"),
            eperm("pivot_root", libc::SYS_pivot_root, "replaces the root brig set up"),
            eperm("chroot", libc::SYS_chroot, "a building block of classic chroot escapes"),
            eperm("move_mount", libc::SYS_move_mount, "new mount API: attaches and moves mounts"),
            eperm("open_tree", libc::SYS_open_tree, "new mount API: clones mount trees"),
            eperm("fsopen", libc::SYS_fsopen, "new mount API: creates a filesystem context"),
            eperm("fsconfig", libc::SYS_fsconfig, "new mount API: configures a filesystem context"),
            eperm("fsmount", libc::SYS_fsmount, "new mount API: turns a context into a mount"),
            eperm("fspick", libc::SYS_fspick, "new mount API: reconfigures an existing mount"),
            eperm("mount_setattr", libc::SYS_mount_setattr, "clears read-only and nosuid (flatpak CVE-2021-41133)"),
            eperm("open_tree_attr", 467, /* open_tree_attr */ "new mount API: clones trees with new attributes"),
            eperm("statmount", 457, /* statmount */ "mount-table introspection the program does not need"),
            eperm("listmount", 458, /* listmount */ "mount-table introspection the program does not need"),
        ],
    },
    Group {
        name: "@module",
        why: "Kernel modules are code running in the kernel.",
        syscalls: &[
            eperm("init_module", libc::SYS_init_module, "loads a kernel module from memory"),
            eperm("finit_module", libc::SYS_finit_module, "loads a kernel module from a file"),
            eperm("delete_module", libc::SYS_delete_module, "unloads a kernel module"),
        ],
    },
    Group {
        name: "@reboot",
        why: "Rebooting or replacing the running kernel affects the whole host.",
        syscalls: &[
            eperm("reboot", libc::SYS_reboot, "reboots or halts the machine"),
            eperm("kexec_load", libc::SYS_kexec_load, "loads a kernel to boot into"),
            eperm("kexec_file_load", libc::SYS_kexec_file_load, "loads a kernel to boot into, from a file"),
        ],
    },
    Group {
        name: "@swap",
        why: "Swap is host-wide memory configuration.",
        syscalls: &[
            eperm("swapon", libc::SYS_swapon, "adds swap space to the host"),
            eperm("swapoff", libc::SYS_swapoff, "removes swap space from the host"),
        ],
    },
    Group {
        name: "@raw-io",
        why: "Port I/O reaches the hardware directly, beneath every kernel check.",
        syscalls: &[
            eperm("iopl", libc::SYS_iopl, "raises the I/O privilege level"),
            eperm("ioperm", libc::SYS_ioperm, "opens I/O ports to the process"),
        ],
    },
    Group {
        name: "@debug",
        why: "Tracing reads and rewrites other processes' memory and registers.",
        syscalls: &[
            eperm("ptrace", libc::SYS_ptrace, "rewrites another process; bypassed seccomp before Linux 4.8"),
            eperm("process_vm_readv", libc::SYS_process_vm_readv, "reads another process's memory"),
            eperm("process_vm_writev", libc::SYS_process_vm_writev, "writes another process's memory"),
            eperm("perf_event_open", libc::SYS_perf_event_open, "large kernel attack surface and side channels"),
            eperm("kcmp", libc::SYS_kcmp, "compares other processes' kernel objects: an information leak"),
            eperm("pidfd_getfd", libc::SYS_pidfd_getfd, "copies a file descriptor out of another process"),
        ],
    },
    Group {
        name: "@keyring",
        why: "Kernel keyrings are not namespaced: the keys are shared with the host user.",
        syscalls: &[
            eperm("add_key", libc::SYS_add_key, "adds a key to a kernel keyring"),
            eperm("request_key", libc::SYS_request_key, "finds or requests a key"),
            eperm("keyctl", libc::SYS_keyctl, "reads and changes keyrings and keys"),
        ],
    },
    Group {
        name: "@bpf",
        why: "eBPF programs run in the kernel; verifier bugs are a frequent privilege escalation.",
        syscalls: &[
            eperm("bpf", libc::SYS_bpf, "loads eBPF programs and maps"),
        ],
    },
    Group {
        name: "@userfaultfd",
        why: "userfaultfd lets a program stall the kernel mid-copy, widening the races exploits \
              need.",
        syscalls: &[
            eperm("userfaultfd", libc::SYS_userfaultfd, "handles page faults in user space"),
        ],
    },
    Group {
        name: "@io-uring",
        why: "io_uring performs operations this filter never sees, and is a frequent source of \
              kernel bugs.",
        syscalls: &[
            eperm("io_uring_setup", libc::SYS_io_uring_setup, "creates a ring whose operations bypass this filter"),
            eperm("io_uring_enter", libc::SYS_io_uring_enter, "submits and waits for ring operations"),
            eperm("io_uring_register", libc::SYS_io_uring_register, "registers files and buffers with a ring"),
        ],
    },
    Group {
        name: "@namespaces",
        why: "A new user namespace hands the program full capabilities over kernel code \
              otherwise reachable only by root. Allowing this group lets clone3 through as well.",
        syscalls: &[
            eperm("unshare", libc::SYS_unshare, "creates namespaces, a user namespace with full capabilities first"),
            eperm("setns", libc::SYS_setns, "joins another namespace"),
            rule("clone", libc::SYS_clone, RuleAction::CloneFlags, "refused only with a CLONE_NEW* flag: fork and threads work"),
            rule("clone3", libc::SYS_clone3, RuleAction::Errno(libc::ENOSYS), "flags sit behind a pointer seccomp cannot read; ENOSYS makes libc fall back to clone"),
        ],
    },
    Group {
        name: "@personality",
        why: "Execution domains can turn off protections such as address randomization and \
              non-executable memory.",
        syscalls: &[
            rule("personality", libc::SYS_personality, RuleAction::Personality, "only PER_LINUX (0) and the query (0xffffffff)"),
        ],
    },
    Group {
        name: "@tty-inject",
        why: "TIOCSTI and TIOCLINUX push keystrokes into the terminal brig was started from.",
        syscalls: &[
            rule("ioctl", libc::SYS_ioctl, RuleAction::Ioctl, "TIOCSTI/TIOCLINUX inject terminal input (CVE-2017-5226); other requests pass"),
        ],
    },
    Group {
        name: "@socket-families",
        why: "Socket families other than unix, inet and inet6 (netlink, packet, vsock, ...) are \
              large kernel attack surface programs rarely need.",
        syscalls: &[
            rule("socket", libc::SYS_socket, RuleAction::SocketFamily, "only AF_UNIX, AF_INET, AF_INET6; others EAFNOSUPPORT"),
            rule("socketpair", libc::SYS_socketpair, RuleAction::SocketFamily, "the same families as socket"),
        ],
    },
    Group {
        name: "@tcp-fastopen",
        why: "A send with MSG_FASTOPEN connects a TCP socket without connect(), which Landlock's \
              TCP rule does not see; on a listening capability reset by shutdown() it would \
              reach out from the host's network.",
        syscalls: &[
            rule("sendto", libc::SYS_sendto, RuleAction::NoFastOpen(3), "MSG_FASTOPEN in the flags only"),
            rule("sendmsg", libc::SYS_sendmsg, RuleAction::NoFastOpen(2), "MSG_FASTOPEN in the flags only"),
            rule("sendmmsg", libc::SYS_sendmmsg, RuleAction::NoFastOpen(3), "MSG_FASTOPEN in the flags only"),
        ],
    },
    Group {
        name: "@setid-bits",
        why: "A setuid or setgid bit is inert inside (every mount is nosuid) but real on the \
              host: a file the program makes in a writable grant must not carry one.",
        syscalls: &[
            rule("chmod", libc::SYS_chmod, RuleAction::NoSetid(1), "S_ISUID/S_ISGID in the mode only"),
            rule("fchmod", libc::SYS_fchmod, RuleAction::NoSetid(1), "S_ISUID/S_ISGID in the mode only"),
            rule("fchmodat", libc::SYS_fchmodat, RuleAction::NoSetid(2), "S_ISUID/S_ISGID in the mode only"),
            rule("fchmodat2", libc::SYS_fchmodat2, RuleAction::NoSetid(2), "S_ISUID/S_ISGID in the mode only"),
            rule("open", libc::SYS_open, RuleAction::NoSetidCreate { flags: 1, mode: 2 }, "S_ISUID/S_ISGID in the creation mode only"),
            rule("openat", libc::SYS_openat, RuleAction::NoSetidCreate { flags: 2, mode: 3 }, "S_ISUID/S_ISGID in the creation mode only"),
            rule("creat", libc::SYS_creat, RuleAction::NoSetid(1), "S_ISUID/S_ISGID in the creation mode only"),
            rule("mknod", libc::SYS_mknod, RuleAction::NoSetid(1), "S_ISUID/S_ISGID in the mode only"),
            rule("mknodat", libc::SYS_mknodat, RuleAction::NoSetid(2), "S_ISUID/S_ISGID in the mode only"),
            rule("openat2", libc::SYS_openat2, RuleAction::Errno(libc::ENOSYS), "its mode sits behind a pointer seccomp cannot read; ENOSYS makes callers fall back to openat"),
        ],
    },
    Group {
        name: "@init",
        why: "The prison's pid 1 (brig's reaper) runs as the program's uid: calls that name it \
              could lower its limits until the kernel kills it, or starve it.",
        syscalls: &[
            rule("prlimit64", libc::SYS_prlimit64, RuleAction::NotPid1(0), "pid 1 only: a CPU limit would get it killed"),
            rule("setpriority", libc::SYS_setpriority, RuleAction::NotPid1Who { process: 0, user: 2 }, "pid 1 and PRIO_USER (which reaches pid 1) only"),
            rule("ioprio_set", libc::SYS_ioprio_set, RuleAction::NotPid1Who { process: 1, user: 3 }, "pid 1 and IOPRIO_WHO_USER only"),
            rule("sched_setaffinity", libc::SYS_sched_setaffinity, RuleAction::NotPid1(0), "pid 1 only"),
            rule("sched_setscheduler", libc::SYS_sched_setscheduler, RuleAction::NotPid1(0), "pid 1 only"),
            rule("sched_setparam", libc::SYS_sched_setparam, RuleAction::NotPid1(0), "pid 1 only"),
            rule("sched_setattr", libc::SYS_sched_setattr, RuleAction::NotPid1(0), "pid 1 only"),
            rule("pidfd_open", libc::SYS_pidfd_open, RuleAction::NotPid1(0), "pid 1 only"),
            rule("migrate_pages", libc::SYS_migrate_pages, RuleAction::NotPid1(0), "pid 1 only"),
            rule("move_pages", libc::SYS_move_pages, RuleAction::NotPid1(0), "pid 1 only"),
        ],
    },
    Group {
        name: "@handles",
        why: "File handles open files by inode, past mount and chroot boundaries (the Shocker \
              escape).",
        syscalls: &[
            eperm("open_by_handle_at", libc::SYS_open_by_handle_at, "opens a file by handle, whatever the mounts show"),
            eperm("name_to_handle_at", libc::SYS_name_to_handle_at, "makes the handles open_by_handle_at takes"),
        ],
    },
    Group {
        name: "@clock",
        why: "The system clock is host-wide state.",
        syscalls: &[
            eperm("settimeofday", libc::SYS_settimeofday, "sets the wall clock"),
            eperm("clock_settime", libc::SYS_clock_settime, "sets a system clock"),
            eperm("clock_adjtime", libc::SYS_clock_adjtime, "adjusts a system clock"),
            eperm("adjtimex", libc::SYS_adjtimex, "tunes the kernel clock"),
        ],
    },
    Group {
        name: "@syslog",
        why: "The kernel log leaks kernel addresses and host activity.",
        syscalls: &[
            eperm("syslog", libc::SYS_syslog, "reads or clears the kernel log"),
        ],
    },
    Group {
        name: "@cpu-emulation",
        why: "Legacy CPU modes have a long history of kernel bugs.",
        syscalls: &[
            eperm("modify_ldt", libc::SYS_modify_ldt, "installs 16-bit segment descriptors"),
        ],
    },
    Group {
        name: "@privileged",
        why: "Host administration the prison never has the privilege for; refusing it keeps that \
              kernel code out of reach.",
        syscalls: &[
            eperm("acct", libc::SYS_acct, "switches process accounting"),
            eperm("quotactl", libc::SYS_quotactl, "manages disk quotas"),
            eperm("quotactl_fd", libc::SYS_quotactl_fd, "manages disk quotas"),
            eperm("vhangup", libc::SYS_vhangup, "hangs up the current terminal"),
            eperm("lookup_dcookie", libc::SYS_lookup_dcookie, "old profiler interface"),
            eperm("nfsservctl", libc::SYS_nfsservctl, "NFS server control, gone since Linux 3.1"),
            eperm("uselib", libc::SYS_uselib, "obsolete a.out library loading"),
            eperm("fanotify_init", libc::SYS_fanotify_init, "filesystem-wide event watching"),
        ],
    },
];

/// The syscalls the supervisor answers instead of the kernel (`crate::broker`). Not a group of
/// the deny-list: `--allow-syscalls` cannot remove them; denying one refuses it outright.
#[rustfmt::skip]
pub(super) static BROKERED: &[Rule] = &[
    rule("memfd_create", libc::SYS_memfd_create, RuleAction::MemfdNoExec, "an executable memfd runs code past every noexec grant: MFD_EXEC is refused, and the broker makes every other memfd with MFD_NOEXEC_SEAL"),
    rule("listen", libc::SYS_listen, RuleAction::Broker, "a socket of the host's network (a capability, or one accepted from it) must not become a listener: after connect(AF_UNSPEC) or shutdown, listen would auto-bind it on every host interface"),
];
