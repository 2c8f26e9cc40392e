//! `--explain`: each layer's refusal is said once, on brig's stderr, with the flag that grants
//! it; following the suggestion makes the command succeed. Without `--explain`, a failed
//! program after refusals brig saw gets a one-line hint. Real prisons, both uids.

mod common;
use common::*;

/// The line brig said for a refusal of `what`, e.g. "exec of /x".
#[track_caller]
fn said(err: &str, what: &str) -> String {
    // brig shares stderr with the program: its line may land inside one of the program's.
    let start = format!("brig: refused {what}");
    err.lines()
        .find_map(|l| l.find(&start).map(|i| l[i..].to_string()))
        .unwrap_or_else(|| panic!("no refusal of {what} in:\n{err}"))
}

/// The flags of a suggestion "...; grant it with --rwx /w" (the words after "with").
fn suggested(line: &str) -> Vec<String> {
    let fix = line.rsplit("; ").next().expect("fix");
    let flags = fix.split(" with ").nth(1).unwrap_or_else(|| panic!("no flag in {line}"));
    flags.split_whitespace().map(String::from).collect()
}

fn args<'a>(v: &'a [String], rest: &[&'a str]) -> Vec<&'a str> {
    v.iter().map(String::as_str).chain(rest.iter().copied()).collect()
}

/// A scratch directory holding `app`, a script that prints `ran`.
fn with_app(who: Who) -> Scratch {
    let s = Scratch::new(who);
    let app = s.write("app", "#!/bin/sh\necho ran\n");
    std::fs::set_permissions(app, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    s.own(who);
    s
}

#[test]
fn each_layer_is_explained_and_the_fix_works() {
    for who in everyone() {
        let s = with_app(who);
        s.write("data", "secret-ish\n");
        s.own(who);
        let app = s.sub("app");
        let data = s.sub("data");

        // noexec: a grant without x.
        let o = run(who, &["--explain", "--rw", s.s(), "--", "/bin/sh", "-c", &app]);
        assert_ne!(code(&o), 0);
        let line = said(&stderr(&o), &format!("exec of {app}"));
        assert!(line.contains(&format!("the grant --rw {} has no x", s.s())), "{line}");
        let fix = suggested(&line);
        assert_eq!(fix, ["--rwx", s.s()], "{line}");
        let o = run(who, &args(&fix, &["--", "/bin/sh", "-c", &app]));
        assert_eq!((code(&o), stdout(&o).trim()), (0, "ran"), "{who:?} {}", stderr(&o));

        // Landlock right: writing in a read-only grant.
        let write = format!("echo x > {data}");
        let o = run(who, &["--explain", "--ro", s.s(), "--", "/bin/sh", "-c", &write]);
        assert_ne!(code(&o), 0);
        let line = said(&stderr(&o), &format!("write of {data}"));
        let fix = suggested(&line);
        assert_eq!(fix, ["--rw", s.s()], "{line}");
        let o = run(who, &args(&fix, &["--", "/bin/sh", "-c", &write]));
        assert_eq!(code(&o), 0, "{who:?} {}", stderr(&o));

        // Not in the view (the host has it); the private /tmp does not hold the host's file.
        let o = run(who, &["--explain", "--", "cat", &data]);
        assert_ne!(code(&o), 0);
        let line = said(&stderr(&o), &format!("read of {data}"));
        assert!(line.contains("not in the prison's view"), "{line}");
        let fix = suggested(&line);
        assert_eq!(fix, ["--ro", data.as_str()], "{line}");
        let o = run(who, &args(&fix, &["--", "cat", &data]));
        assert_eq!((code(&o), stdout(&o).as_str()), (0, "x\n"), "{who:?} {}", stderr(&o));

        // A path the host does not have either is no refusal: ENOENT both ways.
        let o = run(who, &["--explain", "--", "cat", "/no/such/brig-file"]);
        assert!(!stderr(&o).contains("refused read of /no/such"), "{}", stderr(&o));

        // seccomp: ptrace is in @debug.
        let ptrace = "import ctypes,sys; sys.exit(ctypes.CDLL(None).ptrace(0,0,0,0) != 0)";
        let o = run(who, &["--explain", "--", "python3", "-c", ptrace]);
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        let line = said(&stderr(&o), "syscall ptrace");
        assert!(line.contains("seccomp group @debug"), "{line}");
        let fix = suggested(&line);
        assert_eq!(fix, ["--allow-syscalls", "@debug"], "{line}");
        let o = run(who, &args(&fix, &["--", "python3", "-c", ptrace]));
        assert_eq!(code(&o), 0, "{who:?} {}", stderr(&o));

        // The network: a TCP connection the prison may not open itself.
        let port = free_port();
        let connect = format!("import socket; socket.create_connection(('127.0.0.1', {port}))");
        let o = run(who, &["--explain", "--", "python3", "-c", &connect]);
        let line = said(&stderr(&o), &format!("connect to 127.0.0.1:{port}"));
        assert!(line.ends_with(&format!("--connect NAME=tcp://127.0.0.1:{port}")), "{line}");
        // A name: the prison has no name server.
        let o = run(who, &["--explain", "--", "curl", "-sS", "http://example.org/"]);
        let line = said(&stderr(&o), "read of /etc/resolv.conf");
        assert!(line.ends_with("--egress HOST:PORT"), "{line}");
        let bind = format!("import socket; socket.socket().bind(('127.0.0.1', {port}))");
        let o = run(who, &["--explain", "--", "python3", "-c", &bind]);
        let line = said(&stderr(&o), &format!("bind of 127.0.0.1:{port}"));
        assert!(line.ends_with(&format!("--listen NAME=tcp://127.0.0.1:{port}")), "{line}");
    }
}

#[test]
fn each_refusal_is_said_once_and_reported() {
    for who in everyone() {
        let s = Scratch::new(who);
        let report = s.sub("report.json");
        let twice = "import ctypes; [ctypes.CDLL(None).ptrace(0,0,0,0) for _ in range(5)]";
        let o = run(who, &["--explain", "--report", &report, "--", "python3", "-c", twice]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.matches("refused syscall ptrace").count(), 1, "{err}");
        assert!(err.contains("refusals (") && err.contains("5 seccomp"), "{err}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
        let r =
            json["refusals"].as_array().expect("refusals").iter().find(|r| r["target"] == "ptrace");
        let r = r.unwrap_or_else(|| panic!("{json}"));
        assert_eq!((r["layer"].as_str(), r["count"].as_u64()), (Some("seccomp"), Some(5)), "{r}");
        assert_eq!(r["fix"], "allow it with --allow-syscalls @debug");
    }
}

#[test]
fn a_failure_after_refusals_gets_a_hint_without_explain() {
    for who in everyone() {
        let s = with_app(who);
        let script = format!("{} ; exit 3", s.sub("app"));
        let o = run(who, &["--rw", s.s(), "--", "/bin/sh", "-c", &script]);
        assert_eq!(code(&o), 3);
        let err = stderr(&o);
        assert!(!err.contains("brig: refused"), "said without --explain: {err}");
        let hint = err.lines().find(|l| l.contains("rerun with --explain")).unwrap_or_else(|| {
            panic!("no hint in {err}");
        });
        assert!(hint.contains(&format!("exec of {}", s.sub("app"))), "{hint}");
        // A program that succeeds despite a refusal gets no hint.
        let script = format!("{} ; exit 0", s.sub("app"));
        let o = run(who, &["--rw", s.s(), "--", "/bin/sh", "-c", &script]);
        assert!(!stderr(&o).contains("--explain"), "{}", stderr(&o));
    }
}

#[test]
fn the_manifest_can_ask_for_explanations() {
    for who in everyone() {
        let s = Scratch::new(who);
        for (i, text) in ["explain = true\n", "[sandbox]\nexplain = true\n"].iter().enumerate() {
            let m = s.write(&format!("m{i}.toml"), text);
            let m = m.to_str().expect("utf-8");
            let o = run(
                who,
                &["-m", m, "--", "python3", "-c", "import ctypes; ctypes.CDLL(None).setns(0, 0)"],
            );
            let line = said(&stderr(&o), "syscall setns");
            assert!(line.contains("@namespaces"), "{line}");
        }
    }
}

#[test]
fn a_limit_is_a_refusal_with_its_flag() {
    for who in everyone() {
        let s = Scratch::new(who);
        let report = s.sub("r.json");
        let forks = "for i in $(seq 30); do sleep 0.3 & done; wait";
        let o = run(who, &["--procs", "8", "--report", &report, "--", "/bin/sh", "-c", forks]);
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
        if json["hits"].is_null() {
            continue; // RLIMIT_NPROC: no cgroup counts the refusals here
        }
        let r =
            json["refusals"].as_array().expect("refusals").iter().find(|r| r["layer"] == "limit");
        let r = r.unwrap_or_else(|| panic!("{who:?}: {json}\n{}", stderr(&o)));
        assert_eq!(r["fix"], "raise it with --procs 16", "{r}");
        assert!(r["count"].as_u64().is_some_and(|n| n > 0), "{r}");
    }
}
