//! Resources (THREATS.md): fork bombs, memory, disk fill, file size, fd exhaustion, CPU spin,
//! sleeping past the wall time. Each limit is shown to bite, and (control) not to bite when
//! raised, and the limit that ended the program is named in brig's last stderr line.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn last_line(o: &std::process::Output) -> String {
    stderr(o).trim_end().lines().last().unwrap_or("").to_string()
}

const FORK_BOMB: &str = r#"
import os, time
n = 0
try:
    for _ in range(200):
        if os.fork() == 0:
            time.sleep(3); os._exit(0)
        n += 1
except OSError:
    pass
print("forked", n)
if n >= 200: print("ESCAPED")
"#;

#[test]
fn fork_bomb_is_capped() {
    for who in everyone() {
        let o = run(who, &["--procs", "32", "--", "python3", "-c", FORK_BOMB]);
        assert_blocked(&o, "fork bomb");
        assert!(stdout(&o).contains("forked"), "{}", stderr(&o));
        let o = run(who, &["--procs", "1000", "--", "python3", "-c", FORK_BOMB]);
        assert_escaped(&o, "control: --procs 1000");
    }
}

const EAT: &str = "import sys\ntry:\n  b = bytearray(int(sys.argv[1]) << 20); b[::4096] = b'x' * len(b[::4096]); print('ESCAPED')\nexcept MemoryError: print('MemoryError')\n";

#[test]
fn memory_is_capped() {
    for who in everyone() {
        if !mem_limit_works(who) {
            continue;
        }
        let o = run(who, &["--mem", "128MiB", "--", "python3", "-c", EAT, "300"]);
        assert_blocked(&o, "memory");
        let o = run(who, &["--mem", "1GiB", "--", "python3", "-c", EAT, "300"]);
        assert_escaped(&o, "control: --mem 1GiB");
    }
}

/// 400 MiB that RLIMIT_AS never saw: a memfd, a tmpfs file, pipe buffers are the prison's memory.
const MEMFD: &str = "import os\nfd = os.memfd_create('x')\nfor i in range(400): os.write(fd, b'x' * (1 << 20))\nprint('ESCAPED')\n";
const TMPFS: &str = "head -c 400000000 /dev/zero > /tmp/fill && echo ESCAPED; true";

#[test]
fn memory_limit_counts_memfd_and_tmpfs() {
    for who in everyone() {
        if !mem_limit_works(who) {
            continue;
        }
        let o = run(who, &["--mem", "64MiB", "--", "python3", "-c", MEMFD]);
        assert_blocked(&o, "memfd past --mem");
        assert!(last_line(&o).contains("memory limit (64 MiB) reached"), "{}", stderr(&o));
        let o = run(who, &["--mem", "64MiB", "--tmp-size", "1GiB", "--", "/bin/sh", "-c", TMPFS]);
        assert_blocked(&o, "tmpfs past --mem");
        let o = run(who, &["--mem", "1GiB", "--", "python3", "-c", MEMFD]);
        assert_escaped(&o, "control: --mem 1GiB");
    }
}

#[test]
fn an_oom_kill_inside_is_reported() {
    // The program survives its child's OOM kill and exits 0: brig still says what happened.
    let probe = "python3 -c 'b = bytearray(200 << 20)'; echo child $?";
    for who in everyone() {
        if !mem_limit_works(who) {
            continue;
        }
        let s = Scratch::new(who);
        let rep = s.sub("report.json");
        let o = run(who, &["--mem", "64MiB", "--report", &rep, "--", "/bin/sh", "-c", probe]);
        assert_eq!((code(&o), stdout(&o).trim()), (0, "child 137"), "{}", stderr(&o));
        assert!(stderr(&o).contains("the kernel killed 1 process"), "{}", stderr(&o));
        let text = std::fs::read_to_string(&rep).expect("report");
        assert!(text.contains("\"oom_kills\": 1"), "{text}");
    }
}

#[test]
fn memory_limit_without_a_cgroup_is_refused_or_partial() {
    // The unprivileged uid, outside the cgroup delegated to it.
    let Some(&Who::User(uid)) = everyone().last() else { return };
    let who = Who::User(uid);
    let out = |args: &[&str]| {
        let mut a = vec!["run"];
        a.extend_from_slice(args);
        command_outside_cgroup(who, &brig_bin(), &a).output().expect("spawn brig")
    };
    let o = out(&["--mem", "64MiB", "--", "true"]);
    if code(&o) == 0 {
        // This uid's own cgroup is delegated to it after all: nothing to refuse here.
        assert!(
            brig_sys::process::ids().0 != 0,
            "root's tests run the uid outside a delegated cgroup"
        );
        return;
    }
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    for want in ["--mem needs a memory cgroup", "belongs to uid", "--best-effort"] {
        assert!(stderr(&o).contains(want), "{want:?} not in {}", stderr(&o));
    }
    let s = Scratch::new(who);
    let rep = s.sub("report.json");
    let o = out(&[
        "--best-effort",
        "--mem",
        "128MiB",
        "--report",
        &rep,
        "--",
        "python3",
        "-c",
        EAT,
        "300",
    ]);
    assert_blocked(&o, "RLIMIT_DATA fallback");
    assert!(stderr(&o).contains("anonymous memory only"), "{}", stderr(&o));
    let text = std::fs::read_to_string(&rep).expect("report");
    assert!(
        text.contains("partial: anonymous memory only; tmpfs, memfd, pipes not counted"),
        "{text}"
    );
}

#[test]
fn process_limit_counts_threads_and_says_when_it_bit() {
    let threads = "import threading, time\nts = [threading.Thread(target=time.sleep, args=(1,)) for _ in range(int(__import__('sys').argv[1]))]\n[t.start() for t in ts]\n[t.join() for t in ts]\nprint('threads ok')\n";
    for who in everyone() {
        // The default lets a 1,100-thread program run.
        let o = run(who, &["--", "python3", "-c", threads, "1100"]);
        assert_eq!((code(&o), stdout(&o).trim()), (0, "threads ok"), "{}", stderr(&o));
        let o = run(who, &["--procs", "16", "--", "python3", "-c", threads, "64"]);
        assert_ne!(code(&o), 0, "{who:?}: 64 threads under --procs 16");
        assert!(!stdout(&o).contains("threads ok"));
        if delegated(who).is_some() || who == Who::Root {
            assert!(
                stderr(&o).contains("reached its process limit (16 processes and threads)"),
                "{}",
                stderr(&o)
            );
        }
    }
}

#[test]
fn tmp_fill_is_capped() {
    let probe = "dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>/dev/null && echo ESCAPED; true";
    for who in everyone() {
        assert_blocked(
            &run(who, &["--tmp-size", "16MiB", "--", "/bin/sh", "-c", probe]),
            "tmp fill",
        );
        assert_escaped(
            &run(who, &["--tmp-size", "128MiB", "--", "/bin/sh", "-c", probe]),
            "control",
        );
    }
}

#[test]
fn file_size_limit_ends_the_writer() {
    for who in everyone() {
        let s = Scratch::new(who);
        let out = s.sub("big");
        let cmd = format!("head -c 4000000 /dev/zero > {out}");
        let o = run(who, &["--rw", s.s(), "--fsize", "1MiB", "--", "/bin/sh", "-c", &cmd]);
        assert_ne!(code(&o), 0);
        let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        assert!(size <= 1 << 20, "{who:?}: wrote {size} bytes past --fsize");
        let o = run(who, &["--rw", s.s(), "--fsize", "8MiB", "--", "/bin/sh", "-c", &cmd]);
        assert_eq!(code(&o), 0, "control: {}", stderr(&o));
    }
}

#[test]
fn fsize_kill_is_named() {
    for who in everyone() {
        let o = run(
            who,
            &["--fsize", "1MiB", "--", "/bin/sh", "-c", "exec head -c 4000000 /dev/zero > /tmp/x"],
        );
        assert_eq!(code(&o), 128 + 25, "{}", stderr(&o));
        assert!(last_line(&o).contains("file-size limit"), "{}", stderr(&o));
    }
}

#[test]
fn fd_exhaustion_is_capped() {
    let probe = "import os\nfds=[]\ntry:\n  for _ in range(500): fds.append(os.open('/dev/null', os.O_RDONLY))\nexcept OSError: pass\nprint(len(fds))\nif len(fds) >= 500: print('ESCAPED')\n";
    for who in everyone() {
        assert_blocked(&run(who, &["--nofile", "64", "--", "python3", "-c", probe]), "nofile");
        assert_escaped(&run(who, &["--nofile", "1024", "--", "python3", "-c", probe]), "control");
    }
}

#[test]
fn cpu_spin_is_killed_and_named() {
    for who in everyone() {
        let t = Instant::now();
        let o = run(who, &["--cpu", "1s", "--", "/bin/sh", "-c", "while :; do :; done"]);
        assert_eq!(code(&o), 128 + 24, "{who:?}: {}", stderr(&o));
        assert!(last_line(&o).contains("cpu-time limit"), "{}", stderr(&o));
        assert!(t.elapsed() < Duration::from_secs(10));
        // Control: without --cpu the spin runs until the wall limit.
        let o = run(who, &["--wall", "2s", "--", "/bin/sh", "-c", "while :; do :; done"]);
        assert_eq!(code(&o), 124);
    }
}

#[test]
fn a_program_cannot_pass_its_own_signal_off_as_a_limit() {
    for who in everyone() {
        for (sig, limit) in [("XCPU", "cpu-time limit"), ("XFSZ", "file-size limit")] {
            let o = run(who, &["--", "/bin/sh", "-c", &format!("kill -{sig} $$")]);
            assert_ne!(code(&o), 0);
            assert!(!stderr(&o).contains(limit), "{who:?} {sig}: {}", stderr(&o));
        }
    }
}

#[test]
fn sleeping_past_the_wall_time() {
    for who in everyone() {
        let t = Instant::now();
        let o = run(who, &["--wall", "500ms", "--", "sleep", "30"]);
        assert_eq!(code(&o), 124);
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(last_line(&o).contains("wall-time limit (0.5s)"), "{}", stderr(&o));
        let o = run(who, &["--wall", "10s", "--", "sleep", "0.1"]);
        assert_eq!(code(&o), 0, "control: {}", stderr(&o));
    }
}

#[test]
fn limits_are_reported_with_their_mechanism() {
    for who in everyone() {
        if !mem_limit_works(who) {
            continue;
        }
        let s = Scratch::new(who);
        let rep = s.sub("report.json");
        let o = run(
            who,
            &["--mem", "256MiB", "--procs", "64", "--wall", "5s", "--report", &rep, "--", "true"],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let text = std::fs::read_to_string(&rep).expect("report");
        for want in [
            "\"memory\"",
            "\"processes\"",
            "\"wall\"",
            "rlimit",
            "supervisor",
            "\"cause\": \"exited\"",
        ] {
            assert!(text.contains(want), "{who:?}: report lacks {want}:\n{text}");
        }
        if who == Who::Root || delegated(who).is_some() {
            assert!(
                text.contains("cgroup v1") || text.contains("cgroup v2"),
                "{who:?} should use a cgroup here:\n{text}"
            );
        }
    }
}
