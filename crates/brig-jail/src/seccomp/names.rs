//! Every x86_64 syscall name up to `MAX_KNOWN_NR`, so a manifest can deny any syscall by name
//! (`--deny-syscalls mkdir`) and so numbers nobody has assigned yet can be told apart.
//!
//! From the kernel's `arch/x86/entry/syscalls/syscall_64.tbl` (Linux 6.19; entries marked x32
//! left out, as the filter kills x32). 0..=336 are contiguous; 337..=423 are unassigned (the
//! kernel reserves 387..=423, the numbers of 32-bit-only calls); 424 onward are the calls added
//! for every architecture at once. Numbers here without a kernel implementation (tuxcall,
//! vserver, ...) still have their names. The tests check this list against `libc::SYS_*`.

use super::MAX_KNOWN_NR;

/// First number of the block of calls numbered alike on every architecture.
const HIGH_FIRST: u32 = 424;

/// The name of syscall `nr`, if it has one.
pub(super) fn name(nr: u32) -> Option<&'static str> {
    match nr {
        0..HIGH_FIRST => LOW.get(nr as usize).copied(),
        HIGH_FIRST..=MAX_KNOWN_NR => HIGH.get((nr - HIGH_FIRST) as usize).copied(),
        _ => None,
    }
}

/// The number of the syscall called `name`, if there is one.
pub(super) fn number(name: &str) -> Option<u32> {
    if let Some(i) = LOW.iter().position(|n| *n == name) {
        return Some(i as u32);
    }
    HIGH.iter().position(|n| *n == name).map(|i| HIGH_FIRST + i as u32)
}

#[rustfmt::skip]
static LOW: [&str; 337] = [
    /*   0 */ "read", "write", "open", "close", "stat", "fstat", "lstat", "poll", "lseek",
    /*   9 */ "mmap", "mprotect", "munmap", "brk", "rt_sigaction", "rt_sigprocmask",
    /*  15 */ "rt_sigreturn", "ioctl", "pread64", "pwrite64", "readv", "writev", "access",
    /*  22 */ "pipe", "select", "sched_yield", "mremap", "msync", "mincore", "madvise", "shmget",
    /*  30 */ "shmat", "shmctl", "dup", "dup2", "pause", "nanosleep", "getitimer", "alarm",
    /*  38 */ "setitimer", "getpid", "sendfile", "socket", "connect", "accept", "sendto",
    /*  45 */ "recvfrom", "sendmsg", "recvmsg", "shutdown", "bind", "listen", "getsockname",
    /*  52 */ "getpeername", "socketpair", "setsockopt", "getsockopt", "clone", "fork", "vfork",
    /*  59 */ "execve", "exit", "wait4", "kill", "uname", "semget", "semop", "semctl", "shmdt",
    /*  68 */ "msgget", "msgsnd", "msgrcv", "msgctl", "fcntl", "flock", "fsync", "fdatasync",
    /*  76 */ "truncate", "ftruncate", "getdents", "getcwd", "chdir", "fchdir", "rename",
    /*  83 */ "mkdir", "rmdir", "creat", "link", "unlink", "symlink", "readlink", "chmod",
    /*  91 */ "fchmod", "chown", "fchown", "lchown", "umask", "gettimeofday", "getrlimit",
    /*  98 */ "getrusage", "sysinfo", "times", "ptrace", "getuid", "syslog", "getgid", "setuid",
    /* 106 */ "setgid", "geteuid", "getegid", "setpgid", "getppid", "getpgrp", "setsid",
    /* 113 */ "setreuid", "setregid", "getgroups", "setgroups", "setresuid", "getresuid",
    /* 119 */ "setresgid", "getresgid", "getpgid", "setfsuid", "setfsgid", "getsid", "capget",
    /* 126 */ "capset", "rt_sigpending", "rt_sigtimedwait", "rt_sigqueueinfo", "rt_sigsuspend",
    /* 131 */ "sigaltstack", "utime", "mknod", "uselib", "personality", "ustat", "statfs",
    /* 138 */ "fstatfs", "sysfs", "getpriority", "setpriority", "sched_setparam",
    /* 143 */ "sched_getparam", "sched_setscheduler", "sched_getscheduler",
    /* 146 */ "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
    /* 149 */ "mlock", "munlock", "mlockall", "munlockall", "vhangup", "modify_ldt",
    /* 155 */ "pivot_root", "_sysctl", "prctl", "arch_prctl", "adjtimex", "setrlimit", "chroot",
    /* 162 */ "sync", "acct", "settimeofday", "mount", "umount2", "swapon", "swapoff", "reboot",
    /* 170 */ "sethostname", "setdomainname", "iopl", "ioperm", "create_module", "init_module",
    /* 176 */ "delete_module", "get_kernel_syms", "query_module", "quotactl", "nfsservctl",
    /* 181 */ "getpmsg", "putpmsg", "afs_syscall", "tuxcall", "security", "gettid", "readahead",
    /* 188 */ "setxattr", "lsetxattr", "fsetxattr", "getxattr", "lgetxattr", "fgetxattr",
    /* 194 */ "listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr",
    /* 199 */ "fremovexattr", "tkill", "time", "futex", "sched_setaffinity", "sched_getaffinity",
    /* 205 */ "set_thread_area", "io_setup", "io_destroy", "io_getevents", "io_submit",
    /* 210 */ "io_cancel", "get_thread_area", "lookup_dcookie", "epoll_create", "epoll_ctl_old",
    /* 215 */ "epoll_wait_old", "remap_file_pages", "getdents64", "set_tid_address",
    /* 219 */ "restart_syscall", "semtimedop", "fadvise64", "timer_create", "timer_settime",
    /* 224 */ "timer_gettime", "timer_getoverrun", "timer_delete", "clock_settime",
    /* 228 */ "clock_gettime", "clock_getres", "clock_nanosleep", "exit_group", "epoll_wait",
    /* 233 */ "epoll_ctl", "tgkill", "utimes", "vserver", "mbind", "set_mempolicy",
    /* 239 */ "get_mempolicy", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
    /* 244 */ "mq_notify", "mq_getsetattr", "kexec_load", "waitid", "add_key", "request_key",
    /* 250 */ "keyctl", "ioprio_set", "ioprio_get", "inotify_init", "inotify_add_watch",
    /* 255 */ "inotify_rm_watch", "migrate_pages", "openat", "mkdirat", "mknodat", "fchownat",
    /* 261 */ "futimesat", "newfstatat", "unlinkat", "renameat", "linkat", "symlinkat",
    /* 267 */ "readlinkat", "fchmodat", "faccessat", "pselect6", "ppoll", "unshare",
    /* 273 */ "set_robust_list", "get_robust_list", "splice", "tee", "sync_file_range",
    /* 278 */ "vmsplice", "move_pages", "utimensat", "epoll_pwait", "signalfd", "timerfd_create",
    /* 284 */ "eventfd", "fallocate", "timerfd_settime", "timerfd_gettime", "accept4",
    /* 289 */ "signalfd4", "eventfd2", "epoll_create1", "dup3", "pipe2", "inotify_init1",
    /* 295 */ "preadv", "pwritev", "rt_tgsigqueueinfo", "perf_event_open", "recvmmsg",
    /* 300 */ "fanotify_init", "fanotify_mark", "prlimit64", "name_to_handle_at",
    /* 304 */ "open_by_handle_at", "clock_adjtime", "syncfs", "sendmmsg", "setns", "getcpu",
    /* 310 */ "process_vm_readv", "process_vm_writev", "kcmp", "finit_module", "sched_setattr",
    /* 315 */ "sched_getattr", "renameat2", "seccomp", "getrandom", "memfd_create",
    /* 320 */ "kexec_file_load", "bpf", "execveat", "userfaultfd", "membarrier", "mlock2",
    /* 326 */ "copy_file_range", "preadv2", "pwritev2", "pkey_mprotect", "pkey_alloc",
    /* 331 */ "pkey_free", "statx", "io_pgetevents", "rseq", "uretprobe", "uprobe",
];

#[rustfmt::skip]
static HIGH: [&str; 46] = [
    /* 424 */ "pidfd_send_signal", "io_uring_setup", "io_uring_enter", "io_uring_register",
    /* 428 */ "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "pidfd_open",
    /* 435 */ "clone3", "close_range", "openat2", "pidfd_getfd", "faccessat2", "process_madvise",
    /* 441 */ "epoll_pwait2", "mount_setattr", "quotactl_fd", "landlock_create_ruleset",
    /* 445 */ "landlock_add_rule", "landlock_restrict_self", "memfd_secret", "process_mrelease",
    /* 449 */ "futex_waitv", "set_mempolicy_home_node", "cachestat", "fchmodat2",
    /* 453 */ "map_shadow_stack", "futex_wake", "futex_wait", "futex_requeue", "statmount",
    /* 458 */ "listmount", "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules", "mseal",
    /* 463 */ "setxattrat", "getxattrat", "listxattrat", "removexattrat", "open_tree_attr",
    /* 468 */ "file_getattr", "file_setattr",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_agree_with_libc() {
        let sample = [
            ("read", libc::SYS_read),
            ("open", libc::SYS_open),
            ("ioctl", libc::SYS_ioctl),
            ("socket", libc::SYS_socket),
            ("clone", libc::SYS_clone),
            ("execve", libc::SYS_execve),
            ("mkdir", libc::SYS_mkdir),
            ("ptrace", libc::SYS_ptrace),
            ("personality", libc::SYS_personality),
            ("_sysctl", libc::SYS__sysctl),
            ("tuxcall", libc::SYS_tuxcall),
            ("futex", libc::SYS_futex),
            ("openat", libc::SYS_openat),
            ("perf_event_open", libc::SYS_perf_event_open),
            ("seccomp", libc::SYS_seccomp),
            ("rseq", libc::SYS_rseq),
            ("pidfd_send_signal", libc::SYS_pidfd_send_signal),
            ("clone3", libc::SYS_clone3),
            ("landlock_restrict_self", libc::SYS_landlock_restrict_self),
            ("set_mempolicy_home_node", libc::SYS_set_mempolicy_home_node),
            ("fchmodat2", libc::SYS_fchmodat2),
            ("mseal", libc::SYS_mseal),
        ];
        for (n, nr) in sample {
            assert_eq!(number(n), Some(nr as u32), "{n}");
            assert_eq!(name(nr as u32), Some(n), "{nr}");
        }
    }

    #[test]
    fn names_are_unique_and_the_gap_is_empty() {
        let all: Vec<&str> = (0..=MAX_KNOWN_NR).filter_map(name).collect();
        assert_eq!(all.len(), 337 + 46);
        for (i, n) in all.iter().enumerate() {
            assert!(!all[..i].contains(n), "{n} twice");
            assert_eq!(name(number(n).expect("listed")), Some(*n));
        }
        assert!((337..HIGH_FIRST).all(|nr| name(nr).is_none()));
        assert_eq!(name(MAX_KNOWN_NR), Some("file_setattr"));
        assert_eq!(name(MAX_KNOWN_NR + 1), None);
        assert_eq!(number("listns"), None);
    }
}
