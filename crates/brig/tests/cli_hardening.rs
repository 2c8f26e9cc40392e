//! The command line under attack, each finding through the real binary, as root and as an
//! unprivileged uid:
//! - output errors (EPIPE, a full disk) never panic or change the exit status;
//! - bad view targets and a too small `--nofile` are refused in the plan, with a fix;
//! - risky host paths and endpoints, of grants and capabilities alike, are warned about by
//!   `brig check` and `brig run`;
//! - `--report` follows only root's symlinks and writes only a regular file.

mod common;
use std::os::unix::fs::PermissionsExt;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

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

#[test]
fn bad_view_targets_are_refused_in_the_plan() {
    for who in everyone() {
        let s = Scratch::new(who);
        let dir = s.sub("d");
        let file = s.write("f", "x\n");
        let file = file.to_str().expect("utf-8");
        std::fs::create_dir_all(&dir).expect("mkdir");
        s.own(who);
        let at = |dest: &str| format!("{dir}:{dest}");
        let cases: Vec<(Vec<String>, String)> = vec![
            (vec!["--tmpfs".into(), "/proc".into()], "--tmpfs \"/proc\": /proc is".into()),
            (vec!["--ro".into(), at("/proc")], format!("--ro \"{dir}:/proc\": /proc is")),
            (vec!["--ro".into(), at("/proc/sys")], "/proc/sys is inside /proc".into()),
            (vec!["--ro".into(), at("/")], format!("--ro \"{dir}:/\": / is the prison's root")),
            (vec!["--rw".into(), "/".into()], "--rw \"/\": / is the prison's root".into()),
            (vec!["--tmpfs".into(), "/".into()], "--tmpfs \"/\": / is".into()),
            (vec!["--ro".into(), at("/dev")], "/dev is brig's minimal /dev".into()),
            (vec!["--tmpfs".into(), "/dev".into()], "--tmpfs \"/dev\": /dev is".into()),
            (vec!["--ro".into(), format!("{file}:/dev/null")], "/dev/null is a device".into()),
            (vec!["--ro".into(), at("/dev/fd/x")], "/dev/fd/x is inside /dev/fd".into()),
            (vec!["--tmpfs".into(), "/dev/shm".into()], "mount at /tmp instead".into()),
            (vec!["--ro".into(), at("/dev/pts")], "/dev/pts is the prison's own devpts".into()),
            // A path whose root-owned symlinks lead into /proc: caught after resolving, before
            // any mount, with the fix (an explicit destination).
            (vec!["--ro".into(), "/etc/mtab".into()], "give it a destination of its own".into()),
        ];
        for (flags, want) in cases {
            let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
            args.extend(["--", "true"]);
            let o = run(who, &args);
            let e = stderr(&o);
            assert_eq!(code(&o), 125, "{who:?} {args:?}: {e}");
            assert!(e.starts_with("brig: ") && e.contains(&want), "{who:?} {args:?}: {e}");
            assert!(!e.contains("inside the prison"), "{who:?} {args:?}: refused too late: {e}");
        }
        // The same from a manifest, with file, line and column.
        for (text, want) in [
            ("[fs]\n\"/proc\" = \"tmpfs\"\n", "m.toml:4:1: /proc is the prison's own procfs"),
            (
                "[caps.d]\nkind = \"dir\"\npath = \"d\"\nmount = \"/\"\n",
                "m.toml:6:9: / is the prison's root",
            ),
        ] {
            let m = s.write("m.toml", &format!("[program]\npath = \"/bin/true\"\n{text}"));
            s.own(who);
            let o = run(who, &["-m", m.to_str().expect("utf-8")]);
            assert_eq!(code(&o), 125, "{who:?}: {}", stderr(&o));
            let e = stderr(&o);
            assert!(e.contains(want), "{who:?}: want {want:?} in {e}");
        }
        // Places the user may still take: brig's /tmp, and a /dev entry brig does not make.
        for args in [
            vec!["--tmpfs", "/tmp", "--", "true"],
            vec!["--rw", &at("/tmp"), "--", "true"],
            vec!["--ro", &at("/dev/brig-test"), "--", "ls", "/dev/brig-test"],
        ] {
            let o = run(who, &args);
            assert_eq!(code(&o), 0, "{who:?} {args:?}: {}", stderr(&o));
        }
    }
}

/// brig-policy's list of reserved places covers everything brig-jail puts in /dev: a cross-check
/// of the two, in a real prison. Landlock keeps /dev unlisted, so this prison runs without it
/// (the knockout helper: a kernel without Landlock).
#[test]
fn every_entry_brig_makes_in_dev_is_reserved() {
    let who = everyone()[0];
    let o = run_knocked_out(who, &["444=38"], &["--", "ls", "-A", "/dev"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let listing = stdout(&o);
    let names: Vec<&str> = listing.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    assert!(names.contains(&"null") && names.contains(&"shm"), "{names:?}");
    for name in names {
        let p = std::path::PathBuf::from("/dev").join(name);
        assert!(brig_policy::paths::mount_point(&p).is_err(), "/dev/{name} is not reserved");
    }
}

#[test]
fn capabilities_must_fit_under_nofile() {
    for who in everyone() {
        let s = Scratch::new(who);
        let f = s.write("f", "x\n");
        let f = f.to_str().expect("utf-8");
        s.own(who);
        let (a, b) = (format!("a={f}"), format!("b={f}"));
        // Two capabilities at 3 and 4, the description at 5: 6 leaves the program no fd.
        let o = run(who, &["--data", &a, "--data", &b, "--nofile", "6", "--", "true"]);
        assert_eq!(code(&o), 125, "{who:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.starts_with("brig: --nofile \"6\": ") && e.contains("give --nofile 7 or more"),
            "{who:?}: {e}"
        );
        // The number named is enough for a dynamically linked program.
        let o = run(who, &["--data", &a, "--data", &b, "--nofile", "7", "--", "true"]);
        assert_eq!(code(&o), 0, "{who:?}: {}", stderr(&o));
    }
}

#[test]
fn run_and_check_warn_about_risky_capabilities() {
    for who in everyone() {
        let s = Scratch::new(who);
        let key = s.write(".ssh/id_test", "secret\n");
        let key = key.to_str().expect("utf-8");
        let rules = s.write("rules", "r\n");
        let rules = rules.to_str().expect("utf-8");
        s.own(who);
        let home = s.s();
        let ssh = s.sub(".ssh");
        // brig run: printed before the run, which goes on.
        let data = format!("key={key}");
        let sock = format!("agent=unix:{ssh}/agent.sock");
        let out = format!("out={}:create", s.sub("out"));
        let args = [
            "run",
            "--data",
            &data,
            "--listen",
            &sock,
            "--file",
            &out,
            "--",
            "sh",
            "-c",
            "echo ran >&2",
        ];
        let o = command(who, &brig_bin(), &args).env("HOME", home).output().expect("brig");
        assert_eq!(code(&o), 0, "{who:?}: {}", stderr(&o));
        let e = stderr(&o);
        for want in [
            format!(
                "brig: warning: capability key (--data {data}): {ssh} holds credentials; it \
                 looks like a private key\n"
            ),
            format!("brig: warning: capability agent (--listen {sock}): {ssh} holds credentials\n"),
            format!("brig: warning: capability out (--file {out}): mode create empties"),
        ] {
            let at = e.find(&want).unwrap_or_else(|| panic!("{who:?}: {want:?} not in\n{e}"));
            assert!(at < e.find("ran\n").expect("the program ran"), "{who:?}: after the run\n{e}");
        }
        // Nothing risky, nothing said.
        let plain = format!("rules={rules}");
        let args = ["run", "--data", &plain, "--", "true"];
        let o = command(who, &brig_bin(), &args).env("HOME", home).output().expect("brig");
        assert_eq!((code(&o), stderr(&o).as_str()), (0, ""), "{who:?}");
        // brig check: the same check, on a manifest.
        let m = s.write(
            "m.toml",
            &format!(
                "[caps.key]\nkind = \"data\"\npath = \"{key}\"\n\
                 [caps.docker]\nkind = \"connect\"\naddress = \"unix:/run/docker.sock\"\n\
                 [caps.agent]\nkind = \"listen\"\naddress = \"unix:{ssh}/agent.sock\"\n\
                 [caps.out]\nkind = \"file\"\npath = \"out\"\nmode = \"create\"\n"
            ),
        );
        let m = m.to_str().expect("utf-8");
        s.own(who);
        let o = command(who, &brig_bin(), &["check", m]).env("HOME", home).output().expect("brig");
        assert_eq!(code(&o), 0, "{who:?}: {}", stderr(&o));
        let out = stdout(&o);
        for want in [
            format!("warning: capability key ({m}:1): {ssh} holds credentials"),
            format!("warning: capability docker ({m}:4): it reaches the Docker socket"),
            format!("warning: capability agent ({m}:7): {ssh} holds credentials"),
            format!("warning: capability out ({m}:10): mode create empties {}", s.sub("out")),
        ] {
            assert!(out.contains(&want), "{who:?}: {want:?} not in\n{out}");
        }
    }
}
#[test]
fn report_follows_only_roots_symlinks() {
    for who in everyone() {
        let s = Scratch::new(who);
        std::fs::create_dir(s.join("victim")).expect("mkdir");
        std::fs::set_permissions(s.join("victim"), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        // A link anyone but root made: a prison (or the user) could have planted it.
        let uid = match who {
            Who::Root => 65534,
            Who::User(u) => u,
        };
        std::os::unix::fs::symlink(s.join("victim"), s.join("planted")).expect("symlink");
        std::os::unix::fs::lchown(s.join("planted"), Some(uid), Some(uid)).expect("lchown");
        let through = s.sub("planted/r.json");
        let o = run(who, &["--report", &through, "--", "true"]);
        assert_eq!(code(&o), 125, "{who:?}: {}", stderr(&o));
        let e = stderr(&o);
        let real = s.sub("victim/r.json");
        assert!(
            e.contains(&format!("goes through the symlink {}", s.sub("planted")))
                && e.contains(&format!("give the real path ({real})")),
            "{who:?}: {e}"
        );
        assert!(!s.join("victim/r.json").exists(), "{who:?}: the report was redirected");
        // The same link owned by root (the system's own, like /var/run -> /run) is followed.
        std::os::unix::fs::symlink(s.join("victim"), s.join("system")).expect("symlink");
        let o = run(who, &["--report", &s.sub("system/r.json"), "--", "true"]);
        assert_eq!(code(&o), 0, "{who:?}: {}", stderr(&o));
        let text = std::fs::read_to_string(&real).expect("report written");
        assert!(text.contains("\"exit\""), "{text}");
        // A planted link as the last component is refused the same way.
        std::os::unix::fs::symlink(&real, s.join("last")).expect("symlink");
        std::os::unix::fs::lchown(s.join("last"), Some(uid), Some(uid)).expect("lchown");
        let o = run(who, &["--report", &s.sub("last"), "--", "true"]);
        assert_eq!(code(&o), 125, "{who:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("goes through the symlink"), "{}", stderr(&o));
    }
}

#[test]
fn report_refuses_what_is_not_a_regular_file_truthfully() {
    for who in everyone() {
        let s = Scratch::new(who);
        let fifo = s.sub("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(made.success());
        s.own(who);
        for (path, want) in [
            (fifo.as_str(), "is a FIFO; give a regular file"),
            ("/dev/null", "is a character device; give a regular file"),
            (s.s(), "is a directory; give a regular file"),
        ] {
            let mut child = command(who, &brig_bin(), &["run", "--report", path, "--", "true"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn brig");
            let start = Instant::now();
            while child.try_wait().expect("wait").is_none() {
                if start.elapsed() > Duration::from_secs(20) {
                    let _ = child.kill();
                    panic!("{who:?}: brig hangs on --report {path}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let o = child.wait_with_output().expect("output");
            assert_eq!(code(&o), 125, "{who:?} {path}: {}", stderr(&o));
            assert_eq!(stderr(&o), format!("brig: report {path} {want}\n"), "{who:?}");
        }
    }
}
