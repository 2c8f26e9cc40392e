//! The default deny-list: reviewed data, one syscall per line with the reason it is refused.
//! x86_64 numbers. Groups follow systemd's names where one exists.

use super::{Group, Rule, RuleAction};

const EPERM: RuleAction = RuleAction::Errno(libc::EPERM);

macro_rules! rule {
    ($name:literal, $nr:expr, $why:literal) => {
        Rule { name: $name, nr: $nr as u32, action: EPERM, why: $why }
    };
    ($name:literal, $nr:expr, $action:expr, $why:literal) => {
        Rule { name: $name, nr: $nr as u32, action: $action, why: $why }
    };
}

pub static GROUPS: &[Group] = &[
    Group {
        name: "@mount",
        why: "changing the filesystem view",
        syscalls: &[
            rule!("mount", libc::SYS_mount, "remount grants writable, cover the view"),
            rule!("umount2", libc::SYS_umount2, "uncover what a mount hides"),
            rule!("pivot_root", libc::SYS_pivot_root, "swap the root"),
            rule!("chroot", libc::SYS_chroot, "classic chroot-escape building block"),
            rule!("move_mount", libc::SYS_move_mount, "new mount API: attach mounts"),
            rule!("open_tree", libc::SYS_open_tree, "new mount API: clone mount trees"),
            rule!("fsopen", libc::SYS_fsopen, "new mount API: create filesystems"),
            rule!("fsconfig", libc::SYS_fsconfig, "new mount API: configure filesystems"),
            rule!("fsmount", libc::SYS_fsmount, "new mount API: create mounts"),
            rule!("fspick", libc::SYS_fspick, "new mount API: reconfigure existing mounts"),
            rule!(
                "mount_setattr",
                libc::SYS_mount_setattr,
                "clear read-only/nosuid flags (flatpak CVE-2021-41133)"
            ),
            rule!("statmount", 457, "mount-table introspection, unneeded inside"),
            rule!("listmount", 458, "mount-table introspection, unneeded inside"),
            rule!("open_tree_attr", 467, "new mount API: clone trees with attributes"),
        ],
    },
    Group {
        name: "@module",
        why: "loading kernel code",
        syscalls: &[
            rule!("init_module", libc::SYS_init_module, "load kernel code"),
            rule!("finit_module", libc::SYS_finit_module, "load kernel code from a file"),
            rule!("delete_module", libc::SYS_delete_module, "unload kernel code"),
        ],
    },
    Group {
        name: "@reboot",
        why: "rebooting or replacing the kernel",
        syscalls: &[
            rule!("reboot", libc::SYS_reboot, "reboot the machine"),
            rule!("kexec_load", libc::SYS_kexec_load, "boot another kernel"),
            rule!("kexec_file_load", libc::SYS_kexec_file_load, "boot another kernel"),
        ],
    },
    Group {
        name: "@swap",
        why: "swap configuration",
        syscalls: &[
            rule!("swapon", libc::SYS_swapon, "host memory configuration"),
            rule!("swapoff", libc::SYS_swapoff, "host memory configuration"),
        ],
    },
    Group {
        name: "@raw-io",
        why: "direct hardware I/O",
        syscalls: &[
            rule!("iopl", libc::SYS_iopl, "raw port I/O"),
            rule!("ioperm", libc::SYS_ioperm, "raw port I/O"),
        ],
    },
    Group {
        name: "@debug",
        why: "tracing and inspecting other processes",
        syscalls: &[
            rule!("ptrace", libc::SYS_ptrace, "rewrite another process's syscalls and memory"),
            rule!("process_vm_readv", libc::SYS_process_vm_readv, "read another process's memory"),
            rule!(
                "process_vm_writev",
                libc::SYS_process_vm_writev,
                "write another process's memory"
            ),
            rule!(
                "perf_event_open",
                libc::SYS_perf_event_open,
                "large attack surface, side channels"
            ),
            rule!("kcmp", libc::SYS_kcmp, "compare kernel objects of other processes"),
            rule!("pidfd_getfd", libc::SYS_pidfd_getfd, "steal another process's fds"),
        ],
    },
    Group {
        name: "@keyring",
        why: "the kernel keyring (not namespaced)",
        syscalls: &[
            rule!("add_key", libc::SYS_add_key, "keyrings are shared with the host user"),
            rule!("request_key", libc::SYS_request_key, "keyrings are shared with the host user"),
            rule!("keyctl", libc::SYS_keyctl, "keyrings are shared with the host user"),
        ],
    },
    Group {
        name: "@bpf",
        why: "eBPF programs in the kernel",
        syscalls: &[rule!("bpf", libc::SYS_bpf, "verifier bugs are a frequent kernel escape")],
    },
    Group {
        name: "@userfaultfd",
        why: "userfaultfd",
        syscalls: &[rule!(
            "userfaultfd",
            libc::SYS_userfaultfd,
            "widens kernel race windows for exploits"
        )],
    },
    Group {
        name: "@io-uring",
        why: "io_uring (runs operations seccomp never sees)",
        syscalls: &[
            rule!("io_uring_setup", libc::SYS_io_uring_setup, "bypasses syscall filtering"),
            rule!("io_uring_enter", libc::SYS_io_uring_enter, "bypasses syscall filtering"),
            rule!("io_uring_register", libc::SYS_io_uring_register, "bypasses syscall filtering"),
        ],
    },
    Group {
        name: "@namespaces",
        why: "creating or joining namespaces",
        syscalls: &[
            rule!("unshare", libc::SYS_unshare, "nested user namespaces regain capabilities"),
            rule!("setns", libc::SYS_setns, "join other namespaces"),
            rule!(
                "clone",
                libc::SYS_clone,
                RuleAction::CloneFlags,
                "namespace flags refused; plain fork and threads allowed"
            ),
            rule!(
                "clone3",
                libc::SYS_clone3,
                RuleAction::Errno(libc::ENOSYS),
                "flags are behind a pointer seccomp cannot read; libc falls back to clone"
            ),
        ],
    },
    Group {
        name: "@personality",
        why: "execution domains",
        syscalls: &[rule!(
            "personality",
            libc::SYS_personality,
            RuleAction::Personality,
            "READ_IMPLIES_EXEC and friends weaken the program's own protections"
        )],
    },
    Group {
        name: "@tty-inject",
        why: "terminal input injection",
        syscalls: &[rule!(
            "ioctl",
            libc::SYS_ioctl,
            RuleAction::Ioctl,
            "TIOCSTI/TIOCLINUX push input into the caller's terminal (CVE-2017-5226)"
        )],
    },
    Group {
        name: "@socket-families",
        why: "socket families beyond unix, inet and inet6",
        syscalls: &[
            rule!(
                "socket",
                libc::SYS_socket,
                RuleAction::SocketFamily,
                "netlink, packet, vsock... are large attack surface"
            ),
            rule!(
                "socketpair",
                libc::SYS_socketpair,
                RuleAction::SocketFamily,
                "same families as socket"
            ),
        ],
    },
    Group {
        name: "@handles",
        why: "opening files by handle",
        syscalls: &[
            rule!(
                "open_by_handle_at",
                libc::SYS_open_by_handle_at,
                "walks past mount boundaries (Shocker)"
            ),
            rule!(
                "name_to_handle_at",
                libc::SYS_name_to_handle_at,
                "the other half of open_by_handle_at"
            ),
        ],
    },
    Group {
        name: "@clock",
        why: "setting the system clock",
        syscalls: &[
            rule!("settimeofday", libc::SYS_settimeofday, "host-wide state"),
            rule!("clock_settime", libc::SYS_clock_settime, "host-wide state"),
            rule!("clock_adjtime", libc::SYS_clock_adjtime, "host-wide state"),
            rule!("adjtimex", libc::SYS_adjtimex, "host-wide state"),
        ],
    },
    Group {
        name: "@syslog",
        why: "the kernel log",
        syscalls: &[rule!(
            "syslog",
            libc::SYS_syslog,
            "kernel log leaks addresses and host activity"
        )],
    },
    Group {
        name: "@cpu-emulation",
        why: "legacy CPU modes",
        syscalls: &[rule!(
            "modify_ldt",
            libc::SYS_modify_ldt,
            "16-bit segments, a history of kernel bugs"
        )],
    },
    Group {
        name: "@privileged",
        why: "host administration",
        syscalls: &[
            rule!("acct", libc::SYS_acct, "process accounting"),
            rule!("quotactl", libc::SYS_quotactl, "disk quotas"),
            rule!("quotactl_fd", 443, "disk quotas"),
            rule!("vhangup", libc::SYS_vhangup, "hang up terminals"),
            rule!("lookup_dcookie", libc::SYS_lookup_dcookie, "profiling interface"),
            rule!("nfsservctl", libc::SYS_nfsservctl, "NFS server control"),
            rule!("uselib", libc::SYS_uselib, "obsolete library loading"),
            rule!("fanotify_init", libc::SYS_fanotify_init, "watch the whole filesystem"),
        ],
    },
];
