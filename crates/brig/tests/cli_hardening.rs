//! The command line under attack, each finding through the real binary, as root and as an
//! unprivileged uid:
//! - output errors (EPIPE, a full disk) never panic or change the exit status;

mod common;
use std::process::{Output, Stdio};

use common::*;

/// A pipe whose reader is gone: every write to it fails with EPIPE.
fn broken_pipe() -> Stdio {
    let (reader, writer) = brig_sys::fs::pipe().expect("pipe");
    drop(reader);
    Stdio::from(writer)
}

/// /dev/full: every write fails with ENOSPC.
fn full() -> Stdio {
    Stdio::from(std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full"))
}

/// `brig ARGS` as `who` with its stdout and stderr given (the one not given is captured).
fn brig_with(who: Who, args: &[&str], out: Option<Stdio>, err: Option<Stdio>) -> Output {
    let mut c = command(who, &brig_bin(), args);
    if let Some(o) = out {
        c.stdout(o);
    }
    if let Some(e) = err {
        c.stderr(e);
    }
    c.output().expect("spawn brig")
}

#[track_caller]
fn no_panic(o: &Output, what: &str) {
    let e = stderr(o);
    assert!(!e.contains("panicked") && code(o) != 134, "{what}: {:?}\n{e}", o.status);
}

#[test]
fn output_errors_never_panic_nor_change_the_status() {
    for who in everyone() {
        let s = Scratch::new(who);
        let m = s.write("m.toml", "[program]\npath = \"/bin/true\"\n[caps.o]\nkind = \"file\"\npath = \"o\"\nmode = \"create\"\n");
        let m = m.to_str().expect("utf-8");
        s.own(who);
        // check and doctor: a reader that went away ends them quietly, with their own status.
        for args in [&["check", m][..], &["doctor"]] {
            let o = brig_with(who, args, Some(broken_pipe()), None);
            no_panic(&o, &format!("{who:?} {args:?} | (closed)"));
            assert_eq!(code(&o), 0, "{who:?} {args:?} | (closed): {}", stderr(&o));
            assert_eq!(stderr(&o), "", "{who:?} {args:?}: EPIPE is not an error to spew");
            let o = brig_with(who, args, Some(full()), None);
            no_panic(&o, &format!("{who:?} {args:?} >/dev/full"));
            assert_eq!(code(&o), 0, "{who:?} {args:?} >/dev/full: {}", stderr(&o));
        }
        // run: the program's status, whatever happens to brig's messages, before the run (a
        // risk warning), after it (a loosening), or about it (not found).
        let out = s.sub("out");
        let file = format!("o={out}:create");
        for (args, status) in [
            (vec!["run", "--", "/nonexistent"], 127),
            (vec!["run", "--file", &file, "--", "sh", "-c", "echo ran; exit 7"], 7),
            (vec!["run", "--allow-syscalls", "@debug", "--", "sh", "-c", "exit 5"], 5),
        ] {
            for (name, err) in [("/dev/full", full()), ("a closed pipe", broken_pipe())] {
                let o = brig_with(who, &args, None, Some(err));
                assert_eq!(code(&o), status, "{who:?} {args:?} 2>{name}");
                if status == 7 {
                    assert_eq!(stdout(&o), "ran\n", "{who:?}: the program ran");
                }
            }
        }
    }
}
