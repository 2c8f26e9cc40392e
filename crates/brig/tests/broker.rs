//! The broker under attack, in real prisons, both uids: the hostile program
//! (tests/probes/broker.py) rewrites what the broker reads while it reads it, hands it
//! unmapped, unterminated, over-long and NUL-laden arguments, floods it from many threads,
//! dies in the middle of requests, and storms it with forks and execs. Nothing is granted
//! beyond the policy, the supervisor neither crashes nor hangs, and brig returns the
//! program's status.

mod common;
use common::*;
use std::time::{Duration, Instant};

const PROBE: &str = include_str!("probes/broker.py");

fn probe(who: Who, s: &Scratch) -> String {
    let p = s.write("broker.py", PROBE);
    s.own(who);
    p.to_str().expect("utf-8").to_string()
}

#[test]
fn a_flood_of_refusals_from_many_threads_is_answered() {
    // 10^6 notifications as the issue asks, once; the other uid gets 10^5.
    for (i, who) in everyone().into_iter().enumerate() {
        let s = Scratch::new(who);
        let p = probe(who, &s);
        let n = if i == 0 { "1000000" } else { "100000" };
        let t = Instant::now();
        let o = run(who, &["--ro", s.s(), "--", "python3", &p, "flood", n, "8"]);
        assert_eq!(code(&o), 0, "{who:?} {}", stderr(&o));
        let out = stdout(&o);
        assert!(out.starts_with(&format!("flood: {n} calls, 0 not EPERM")), "{out}");
        eprintln!("{who:?}: {} in {:?}", out.trim(), t.elapsed());
    }
}

#[test]
fn rewriting_the_path_while_the_broker_reads_it_reaches_nothing_more() {
    for who in everyone() {
        let s = Scratch::new(who);
        let p = probe(who, &s);
        s.write("allowed", "allowed\n");
        let secret = Scratch::new(who);
        secret.write("secret", "secret\n");
        let (allowed, hidden) = (s.sub("allowed"), secret.sub("secret"));
        for mode in [&["--explain"][..], &[]] {
            let mut a = mode.to_vec();
            a.extend(["--ro", s.s(), "--", "python3", &p, "race", &allowed, &hidden, "100000"]);
            let o = run(who, &a);
            assert_eq!(code(&o), 0, "{who:?} {}", stderr(&o));
            let out = stdout(&o);
            assert!(out.ends_with(" 0 secret\n"), "{who:?} {mode:?}: {out}");
            assert!(!out.contains(" 0 opened"), "{who:?}: the race never opened the allowed file");
        }
    }
}

#[test]
fn hostile_arguments_get_the_kernels_answer() {
    for who in everyone() {
        let s = Scratch::new(who);
        let p = probe(who, &s);
        let o = run(who, &["--explain", "--ro", s.s(), "--", "python3", &p, "bad"]);
        assert_eq!(code(&o), 0, "{who:?} {}", stderr(&o));
        let out = stdout(&o);
        // The answers a kernel without a broker gives: the broker only looked.
        for (step, errno) in [
            ("unmapped", -libc::EFAULT),
            ("unterminated", -libc::ENAMETOOLONG),
            ("straddling", -libc::EFAULT),
            ("long", -libc::ENAMETOOLONG),
            ("exec-unmapped", -libc::EFAULT),
            ("connect-unmapped", -libc::EFAULT),
            ("connect-huge", -libc::EINVAL),
            ("bad-dirfd", -libc::EBADF),
        ] {
            assert!(out.contains(&format!("bad {step}: {errno}\n")), "{step}: {out}");
        }
        // mkdir("/etc\0...") reads as "/etc", which brig made: it exists, on a read-only root.
        let nul = [-libc::EROFS, -libc::EEXIST].map(|e| format!("bad nul: {e}\n"));
        assert!(nul.iter().any(|l| out.contains(l)), "{out}");
        // pid 1's root is out of reach (EACCES as root: pid 1 is not dumpable; ENOENT else).
        let proc_root = [-libc::EACCES, -libc::ENOENT].map(|e| format!("bad proc-root: {e}\n"));
        assert!(proc_root.iter().any(|l| out.contains(l)), "{out}");
    }
}

#[test]
fn a_program_killed_mid_request_does_not_wedge_the_supervisor() {
    for who in everyone() {
        let s = Scratch::new(who);
        let p = probe(who, &s);
        for mode in [&["--explain"][..], &[]] {
            let t = Instant::now();
            let mut a = mode.to_vec();
            a.extend(["--wall", "20s", "--ro", s.s(), "--", "python3", &p, "die"]);
            let o = run(who, &a);
            assert_eq!(code(&o), 128 + 9, "{who:?} {}", stderr(&o));
            assert!(t.elapsed() < Duration::from_secs(10), "{who:?}: {:?}", t.elapsed());
        }
    }
}

#[test]
fn a_fork_and_exec_storm_is_observed_without_harm() {
    for who in everyone() {
        let storm = "for i in $(seq 400); do /bin/true & done; wait; \
                     for i in $(seq 200); do /no/such/prog 2>/dev/null; done; echo done";
        for mode in [&["--explain"][..], &[]] {
            let mut a = mode.to_vec();
            a.extend(["--", "/bin/sh", "-c", storm]);
            let o = run(who, &a);
            assert_eq!((code(&o), stdout(&o).as_str()), (0, "done\n"), "{who:?} {}", stderr(&o));
            // Nothing of this was a refusal: exec of a path nobody has is ENOENT.
            assert!(!stderr(&o).contains("refused"), "{who:?} {}", stderr(&o));
        }
    }
}

#[test]
fn a_program_cannot_install_a_listener_of_its_own() {
    // The kernel allows one listener per filter chain: brig's. A second would take the
    // brokered calls (listen, memfd_create) and could let them through unchecked.
    let new_listener = "
import ctypes
l = ctypes.CDLL(None, use_errno=True)
prog = (ctypes.c_ubyte * 8)(6, 0, 0, 0, 0, 0, 0xff, 0x7f)  # ret ALLOW
class F(ctypes.Structure):
    _fields_ = [('len', ctypes.c_ushort), ('f', ctypes.c_void_p)]
f = F(1, ctypes.addressof(prog))
r = l.syscall(317, 1, 8, ctypes.byref(f))  # SECCOMP_SET_MODE_FILTER, NEW_LISTENER
print(r, ctypes.get_errno())
";
    for who in everyone() {
        let o = run(who, &["--", "python3", "-c", new_listener]);
        assert_eq!(stdout(&o).trim(), format!("-1 {}", libc::EBUSY), "{who:?} {}", stderr(&o));
    }
}
