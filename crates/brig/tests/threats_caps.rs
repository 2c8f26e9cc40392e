//! Holes an outside attacker found in capabilities (issue 7), each with its regression test in
//! a real prison, as root and as an unprivileged uid. Where the prison's answer differs from
//! the kernel's own, a control shows on the host that the kernel alone would let the step
//! through, so the refusal seen inside is brig's doing.

mod common;
use common::*;

use std::net::TcpListener;
use std::os::fd::AsFd;

/// On the host, with no prison: a `:0` listener reset with connect(AF_UNSPEC) listens again on
/// a new port. This is what a listen capability must not be able to do.
#[test]
fn control_the_kernel_moves_a_reset_listener() {
    for ip in ["127.0.0.1:0", "[::1]:0"] {
        let l = TcpListener::bind(ip).expect("bind");
        let before = l.local_addr().expect("addr");
        rustix::net::connect_unspec(l.as_fd()).expect("disconnect");
        rustix::net::listen(l.as_fd(), 7).expect("the kernel lets it listen again");
        let after = l.local_addr().expect("addr");
        assert_ne!(before.port(), after.port(), "{ip}: the control did not move");
    }
}

fn port_of(line: &str) -> &str {
    line.rsplit(':').next().unwrap_or_default()
}

/// A socket of the host's network handed over as a capability cannot be turned into a listener
/// anywhere else: resetting a listen capability (connect AF_UNSPEC) and listening again is
/// refused by the broker (a `:0` one would move to a new port; IPv6 too), and so is listening
/// on a reset connect capability. Changing a listen capability's backlog works, and so does any
/// listener in the prison's own network. Options that would widen a socket need privilege over
/// the host's network, which the prison never has.
#[test]
fn socket_capabilities_cannot_become_other_listeners() {
    let server = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = server.local_addr().expect("addr").port();
    let accept = std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in server.incoming().take(2 * everyone().len()) {
            held.push(c);
        }
    });
    for who in everyone() {
        let s = Scratch::new(who);
        for (listen, v6) in [("h=tcp://127.0.0.1:0", false), ("h=tcp://[::1]:0", true)] {
            let (level, transparent) = if v6 { ("41", "75") } else { ("0", "19") };
            let ip_transparent = format!("sockopt:h:{level}:{transparent}");
            let steps =
                ["listen:h", "relisten:h", "innerlisten", "sockopt:h:1:62", "sockopt:h:1:36"];
            let mut steps = steps.to_vec();
            steps.push(&ip_transparent);
            let l = probe(who, &s, &["--listen", listen], false, &steps);
            allowed(&l, "listen:h");
            refused(&l, "relisten:h", EPERM);
            allowed(&l, "innerlisten");
            // SO_BINDTOIFINDEX: binding an unbound socket to a device only narrows it; moving
            // it again would need CAP_NET_RAW over the host's network.
            allowed(&l, "sockopt:h:1:62");
            refused(&l, "sockopt:h:1:36", EPERM); // SO_MARK
            refused(&l, &ip_transparent, EPERM);
            // The same in capability mode, whose own filter does not stop listen.
            let l = probe(who, &s, &["--listen", listen], true, &["relisten:h", "listen:h"]);
            refused(&l, "relisten:h", EPERM);
            allowed(&l, "listen:h");
        }
        // A listen capability at a fixed port keeps it.
        let fixed = free_port();
        let cap = format!("h=tcp://127.0.0.1:{fixed}");
        let l = probe(who, &s, &["--listen", &cap], false, &["listen:h"]);
        assert_eq!(port_of(result(&l, "listen:h")), fixed.to_string(), "{l:?}");
        // A connect capability, reset, cannot listen.
        let cap = format!("c=tcp://127.0.0.1:{port}");
        let l = probe(who, &s, &["--connect", &cap], false, &["relisten:c"]);
        refused(&l, "relisten:c", EPERM);
    }
    drop(accept);
}

/// Tries every way to change a file capability's metadata (fd 3) or to write it; prints
/// ESCAPED for each that works.
const META: &str = r#"
import os, fcntl, struct
def t(name, fn):
    try:
        fn(); print(name, 'ESCAPED')
    except OSError as e:
        print(name, 'refused', e.errno)
t('fchmod', lambda: os.fchmod(3, 0o666))
t('futimens', lambda: os.utime(3, (1, 1)))
t('fsetxattr', lambda: os.setxattr(3, 'user.brig', b'1'))
t('chmod-proc', lambda: os.chmod('/proc/self/fd/3', 0o600))
t('reopen-w', lambda: os.open('/proc/self/fd/3', os.O_WRONLY))
t('setflags', lambda: fcntl.ioctl(3, 0x40086602, struct.pack('l', 0x10)))
"#;

/// A read-only file capability is opened through a read-only mount: no chmod, utimes, xattr,
/// inode flags, or re-open for writing, by fd or through /proc/self/fd, also with Landlock
/// knocked out. Control: a `write` capability of a file the prison owns can be chmod'ed.
#[test]
fn read_only_file_capability_cannot_change_metadata() {
    use std::os::unix::fs::PermissionsExt;
    for who in everyone() {
        let s = Scratch::new(who);
        let f = s.write("f.txt", "data");
        s.own(who);
        let read = format!("f={}:read", f.display());
        let o = run(who, &["--file", &read, "--", "python3", "-c", META]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_blocked(&o, "read-only file capability");
        assert_eq!(stdout(&o).matches("refused").count(), 6, "{}", stdout(&o));
        let o = run_knocked_out(who, &["444=38"], &["--file", &read, "--", "python3", "-c", META]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_blocked(&o, "read-only file capability without Landlock");
        let mode = std::fs::metadata(&f).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(mode, 0o644, "the host file's mode changed");
        let write = format!("f={}:write", f.display());
        let o = run(who, &["--file", &write, "--", "python3", "-c", META]);
        assert!(stdout(&o).contains("fchmod ESCAPED"), "control: {}", stdout(&o));
    }
}

/// Setuid and setgid bits cannot be set in a writable grant, by chmod or at creation, and the
/// host file keeps its mode. Control: with `@setid-bits` allowed, chmod u+s works.
#[test]
fn setid_bits_are_refused_in_writable_grants() {
    use std::os::unix::fs::PermissionsExt;
    let script = r#"
import os, sys
d = sys.argv[1]
def t(name, fn):
    try:
        fn(); print(name, 'ESCAPED')
    except OSError as e:
        print(name, 'refused', e.errno)
t('chmod', lambda: os.chmod(d + '/f', 0o4755))
t('create', lambda: os.close(os.open(d + '/s', os.O_CREAT | os.O_WRONLY, 0o4755)))
t('mknod', lambda: os.mknod(d + '/n', 0o102755))
os.chmod(d + '/f', 0o750)
print('plain chmod works')
"#;
    for who in everyone() {
        let s = Scratch::new(who);
        s.write("f", "x");
        s.own(who);
        let o = run(who, &["--rw", s.s(), "--", "python3", "-c", script, s.s()]);
        assert_blocked(&o, "setid bits");
        assert!(stdout(&o).contains("plain chmod works"), "{}", stdout(&o));
        for p in ["f", "s", "n"] {
            let mode = std::fs::metadata(s.join(p)).map(|m| m.permissions().mode()).unwrap_or(0);
            assert_eq!(mode & 0o6000, 0, "{p} has a setid bit on the host");
        }
        let args = ["--allow-syscalls", "@setid-bits", "--rw", s.s(), "--", "python3", "-c"];
        let o = run(who, &[&args[..], &[script, s.s()]].concat());
        assert!(stdout(&o).contains("chmod ESCAPED"), "control: {}", stdout(&o));
    }
}

/// No memfd in the prison can be executed: one the program makes (execveat by fd and exec of
/// /proc/self/fd/N), MFD_EXEC, and a data capability. Control: the same script outside brig.
#[test]
fn memfds_are_never_executable() {
    let script = r#"
import os, ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
def runs(fd, how):
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open('/dev/null', os.O_WRONLY), 2)
        if how == 'at':
            argv = (ctypes.c_char_p * 2)(b't', None); envp = (ctypes.c_char_p * 1)(None)
            libc.syscall(322, fd, b'', argv, envp, 0x1000)
        else:
            try: os.execv('/proc/self/fd/%d' % fd, ['t'])
            except OSError: pass
        os._exit(3)
    return os.waitpid(pid, 0)[1] == 0
fd = os.memfd_create('x', 0)
os.write(fd, open('/bin/true', 'rb').read())
for how in ['at', 'proc']:
    print(how, 'ESCAPED' if runs(fd, how) else 'refused')
try:
    os.memfd_create('y', 0x10); print('MFD_EXEC ESCAPED')
except OSError as e:
    print('MFD_EXEC refused', e.errno)
if len(sys.argv) > 1:
    print('data', 'ESCAPED' if runs(int(sys.argv[1]), 'at') else 'refused')
"#;
    for who in everyone() {
        let o = run(who, &["--data", "d=/bin/true", "--", "python3", "-c", script, "3"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_blocked(&o, "memfd exec");
        assert_eq!(stdout(&o).matches("refused").count(), 4, "{}", stdout(&o));
        let bare = command(who, std::path::Path::new("/usr/bin/python3"), &["-c", script])
            .output()
            .expect("python3");
        assert_escaped(&bare, "control: outside brig");
    }
}

/// A run refused because a later capability cannot open changes nothing on the host: a
/// `create` capability neither empties its existing file nor creates a missing one. Control:
/// without the failing capability, both happen.
#[test]
fn refused_run_leaves_create_files_alone() {
    for who in everyone() {
        let s = Scratch::new(who);
        let keep = s.write("keep.txt", "precious");
        let new = s.join("new.txt");
        s.own(who);
        let a = format!("a={}:create", keep.display());
        let b = format!("b={}:create", new.display());
        let bad = format!("c={}:read", s.sub("missing"));
        let o = run(who, &["--file", &a, "--file", &b, "--file", &bad, "--", "true"]);
        assert_eq!(code(&o), 125, "{}", stderr(&o));
        assert_eq!(std::fs::read_to_string(&keep).expect("keep"), "precious");
        assert!(!new.exists(), "a refused run created {}", new.display());
        let o = run(who, &["--file", &a, "--file", &b, "--", "true"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(std::fs::read_to_string(&keep).expect("keep"), "", "control: create empties");
        assert!(new.exists(), "control: create makes the file");
    }
}
