//! Kernel attack surface and seccomp bypasses: each syscall the default deny-list refuses is
//! called inside a real prison and must be answered by the filter; the control run allows the
//! groups (`--allow-syscalls`) and shows every probe then reaches the kernel.

mod common;
use common::*;

const PROBE: &str = include_str!("probes/surface.py");

/// (syscall probe, errno the filter answers, group that allows it)
const SURFACE: &[(&str, &str, &str)] = &[
    ("bpf", "EPERM", "@bpf"),
    ("userfaultfd", "EPERM", "@userfaultfd"),
    ("io_uring_setup", "EPERM", "@io-uring"),
    ("io_uring_enter", "EPERM", "@io-uring"),
    ("perf_event_open", "EPERM", "@debug"),
    ("keyctl", "EPERM", "@keyring"),
    ("add_key", "EPERM", "@keyring"),
    ("request_key", "EPERM", "@keyring"),
    ("ptrace", "EPERM", "@debug"),
    ("process_vm_readv", "EPERM", "@debug"),
    ("kcmp", "EPERM", "@debug"),
    ("pidfd_getfd", "EPERM", "@debug"),
    ("open_by_handle_at", "EPERM", "@handles"),
    ("name_to_handle_at", "EPERM", "@handles"),
    ("mount", "EPERM", "@mount"),
    ("chroot", "EPERM", "@mount"),
    ("listmount", "EPERM", "@mount"),
    ("unshare", "EPERM", "@namespaces"),
    ("setns", "EPERM", "@namespaces"),
    ("clone3", "ENOSYS", "@namespaces"),
    ("personality", "EPERM", "@personality"),
    ("modify_ldt", "EPERM", "@cpu-emulation"),
    ("adjtimex", "EPERM", "@clock"),
    ("quotactl", "EPERM", "@privileged"),
    ("lookup_dcookie", "EPERM", "@privileged"),
    ("init_module", "EPERM", "@module"),
    ("finit_module", "EPERM", "@module"),
    ("kexec_load", "EPERM", "@reboot"),
    ("iopl", "EPERM", "@raw-io"),
    ("socket-netlink", "EAFNOSUPPORT", "@socket-families"),
    ("socket-vsock", "EAFNOSUPPORT", "@socket-families"),
    ("socket-mptcp", "EPROTONOSUPPORT", "@socket-families"),
    ("socketpair-netlink", "EAFNOSUPPORT", "@socket-families"),
];

fn probe(who: Who, extra: &[&str]) -> Vec<(String, String)> {
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["--", "python3", "-c", PROBE]);
    args.extend(SURFACE.iter().map(|s| s.0));
    let o = run(who, &args);
    assert_eq!(code(&o), 0, "{who:?}: {}", stderr(&o));
    stdout(&o)
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
        .collect()
}

#[test]
fn denied_syscalls_never_reach_the_kernel() {
    for who in everyone() {
        let got = probe(who, &[]);
        assert_eq!(got.len(), SURFACE.len(), "{got:?}");
        for ((name, want, _), (gname, gerr)) in SURFACE.iter().zip(&got) {
            assert_eq!(name, gname);
            assert_eq!(gerr, want, "{who:?}: {name} answered {gerr}, the filter answers {want}");
        }
        // Control: with the groups allowed, every probe reaches the kernel (so each assertion
        // above can fail).
        let groups: Vec<&str> = SURFACE.iter().map(|s| s.2).collect();
        let allow = groups.join(",");
        let got = probe(who, &["--allow-syscalls", &allow]);
        for ((name, want, _), (_, gerr)) in SURFACE.iter().zip(&got) {
            assert_ne!(
                gerr, want,
                "{who:?}: control: {name} still answered {want} with its group allowed"
            );
        }
    }
}

#[test]
fn loosening_is_warned_about() {
    let o = run(everyone()[0], &["--allow-syscalls", "@debug", "--", "true"]);
    assert_eq!(code(&o), 0);
    assert!(stderr(&o).contains("warning") && stderr(&o).contains("@debug"), "{}", stderr(&o));
    let o = run(everyone()[0], &["--allow-syscalls", "@nonsense", "--", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("@nonsense"), "{}", stderr(&o));
}

/// x32 syscall numbers (nr | 0x40000000) and the 32-bit `int 0x80` entry kill the process before
/// the kernel dispatches them; run bare, both reach the kernel.
const ABI_PROBE: &str = r#"
import ctypes, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def child(f):
    pid = os.fork()
    if pid == 0:
        f(); print("ESCAPED", flush=True); os._exit(0)
    _, st = os.waitpid(pid, 0)
    return os.WTERMSIG(st) if os.WIFSIGNALED(st) else None
def x32():
    libc.syscall(ctypes.c_long(0x40000000 | 39))
def int80():
    # mov eax, 20 (getpid on i386); int 0x80; ret
    code = bytes([0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3])
    m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    m.write(code)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    ctypes.CFUNCTYPE(ctypes.c_int)(addr)()
print("x32", child(x32), flush=True)
print("int80", child(int80), flush=True)
"#;

#[test]
fn x32_and_int80_are_killed() {
    for who in everyone() {
        let o = run(who, &["--", "python3", "-c", ABI_PROBE]);
        assert_blocked(&o, "x32 / int 0x80");
        let out = stdout(&o);
        assert!(out.contains("x32 31") && out.contains("int80 31"), "{who:?}: want SIGSYS: {out}");
        // Control: bare, both calls return into the program.
        let bare = command(who, std::path::Path::new("/usr/bin/python3"), &["-c", ABI_PROBE])
            .output()
            .expect("bare");
        assert_escaped(&bare, "bare x32 / int 0x80");
    }
}

/// clone with namespace flags is refused; the control allows @namespaces and a nested user
/// namespace is created (the classic way to regain capabilities).
const NESTED_USERNS: &str = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER = 0x10000000
r = libc.syscall(ctypes.c_long(56), ctypes.c_long(CLONE_NEWUSER | 17), 0, 0, 0, 0)
if r == 0:
    os._exit(0)
if r > 0:
    os.waitpid(r, 0); print("ESCAPED clone(CLONE_NEWUSER)")
if libc.unshare(CLONE_NEWUSER) == 0:
    print("ESCAPED unshare(CLONE_NEWUSER)")
"#;

#[test]
fn nested_user_namespaces_refused() {
    for who in everyone() {
        let o = run(who, &["--", "python3", "-c", NESTED_USERNS]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_blocked(&o, "nested user namespace");
        let o =
            run(who, &["--allow-syscalls", "@namespaces", "--", "python3", "-c", NESTED_USERNS]);
        assert_escaped(&o, "control: @namespaces allowed");
    }
}

/// TIOCSTI / TIOCLINUX are refused whatever the high bits of the request number, and the program
/// has no controlling terminal. Run on a pty that is brig's controlling terminal.
const TTY_DRIVER: &str = r#"
import os, pty, select, subprocess, sys, fcntl, termios
m, s = pty.openpty()
def ctty():
    os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0)
probe = sys.argv[2]
subprocess.run(sys.argv[1].split("\x1f") + [probe], stdin=s, stdout=s, stderr=subprocess.DEVNULL, preexec_fn=ctty, timeout=60)
os.set_blocking(s, False)
got = os.read(s, 4096) if select.select([s], [], [], 0.5)[0] else b""
print("ESCAPED" if b"INJECTED" in got else "blocked")
"#;
const TTY_PROBE: &str = "import ctypes\nl=ctypes.CDLL(None)\nfor req in (0x5412, 0x5412 | (1 << 32), 0xffffffff00005412):\n  for fd in (0,1,2):\n    for c in b'INJECTED\\n':\n      l.ioctl(fd, ctypes.c_ulong(req), ctypes.byref(ctypes.c_char(c)))\n";

#[test]
fn tiocsti_injection_refused() {
    for who in everyone() {
        let b = brig_bin();
        let mut cmd: Vec<String> = vec![b.to_str().expect("utf-8").into()];
        for loosen in [false, true] {
            cmd.truncate(1);
            cmd.push("run".into());
            if loosen {
                // Control 1: the filter off still leaves no controlling terminal.
                cmd.extend(["--allow-syscalls".into(), "@tty-inject".into()]);
            }
            cmd.extend(["--".into(), "python3".into(), "-c".into()]);
            let joined = cmd.join("\x1f");
            let o = command(
                who,
                std::path::Path::new("/usr/bin/python3"),
                &["-c", TTY_DRIVER, &joined, TTY_PROBE],
            )
            .output()
            .expect("driver");
            assert_blocked(&o, "TIOCSTI");
        }
        // Control 2: the same probe run bare on its controlling terminal does inject.
        let o = command(
            who,
            std::path::Path::new("/usr/bin/python3"),
            &["-c", TTY_DRIVER, "/usr/bin/python3\x1f-c", TTY_PROBE],
        )
        .output()
        .expect("driver");
        assert_escaped(&o, "bare TIOCSTI");
    }
}
