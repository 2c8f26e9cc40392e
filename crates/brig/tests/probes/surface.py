# Kernel-surface probe: calls each named syscall with harmless, invalid arguments and prints
# "name errno-name". seccomp answers with its own errno (EPERM, EAFNOSUPPORT, ENOSYS) before the
# kernel looks at the arguments; a syscall that reaches the kernel answers something else
# (EFAULT, EINVAL, EBADF, ...) or succeeds.
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(64)
p = ctypes.addressof(buf)
me = os.getpid()
CALLS = {
    "bpf": (321, 9999, 0, 0),
    "userfaultfd": (323, 0xFFFF),
    "io_uring_setup": (425, 0, 0),
    "io_uring_enter": (426, -1, 0, 0, 0, 0, 0),
    "perf_event_open": (298, 0, 0, -1, -1, 0),
    "keyctl": (250, 9999, 0, 0, 0, 0),
    "add_key": (248, 0, 0, 0, 0, 0),
    "request_key": (249, 0, 0, 0, 0),
    "ptrace": (101, 9999, 0, 0, 0),
    "process_vm_readv": (310, me, 0, 0, 0, 0, 0),
    "kcmp": (312, me, me, 0, 0, 0),
    "pidfd_getfd": (438, -1, 0, 0),
    "open_by_handle_at": (304, -1, 0, 0),
    "name_to_handle_at": (303, -1, 0, 0, 0, 0),
    "mount": (165, 0, 0, 0, 0, 0),
    "chroot": (161, 0),
    "listmount": (458, 0, 0, 0, 0),
    "unshare": (272, 0),
    "setns": (308, -1, 0),
    "personality": (135, 0x0400000),
    "modify_ldt": (154, 0, p, 16),
    "adjtimex": (159, 0),
    "quotactl": (179, 0, 0, 0, 0),
    "init_module": (175, 0, 0, 0),
    "finit_module": (313, -1, 0, 0),
    "kexec_load": (246, 0, 0, 0, 0),
    "iopl": (172, 0),
    "lookup_dcookie": (212, 0, 0, 0),
    "clone3": (435, 0, 0),
    "socket-netlink": (41, 16, 3, 0),
    "socket-vsock": (41, 40, 1, 0),
    "socket-mptcp": (41, 2, 1, 262),
    "socketpair-netlink": (53, 16, 3, 0, p),
}
for name in sys.argv[1:]:
    nr, *args = CALLS[name]
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    e = ctypes.get_errno() if r == -1 else 0
    print(name, errno.errorcode.get(e, str(e)) if e else "OK", flush=True)
