//! The command-line contract: manifests (same Plan as flags, errors with file:line:col and a fix),
//! `brig check`, `brig doctor`, --help.

mod common;
use common::*;

#[test]
fn help_for_each_command() {
    for sub in [&["--help"][..], &["run", "--help"], &["check", "--help"], &["doctor", "--help"]] {
        let o = brig(everyone()[0], sub);
        assert_eq!(code(&o), 0, "{sub:?}");
        assert!(stdout(&o).contains("Usage"), "{sub:?}");
    }
    let o = brig(everyone()[0], &["run", "--no-such-flag", "--", "true"]);
    assert_eq!(code(&o), 125);
}

#[test]
fn manifest_runs_like_flags() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write("site/index.html", "hello manifest\n");
        s.write(
            "app.toml",
            &format!(
                "[program]\npath = \"/bin/cat\"\nargs = [\"/site/index.html\"]\n\n[fs]\n\"/site\" = {{ from = \"{}\", rights = \"r\" }}\n\n[limits]\nwall = \"10s\"\nprocesses = 16\n",
                s.sub("site")
            ),
        );
        s.own(who);
        let o = run(who, &["-m", &s.sub("app.toml")]);
        assert_eq!(code(&o), 0, "{who:?}: {}", stderr(&o));
        assert_eq!(stdout(&o), "hello manifest\n");
        // flags extend: the CLI command replaces [program]
        let o = run(who, &["-m", &s.sub("app.toml"), "--", "ls", "/site"]);
        assert_eq!(stdout(&o), "index.html\n", "{}", stderr(&o));
    }
}

#[test]
fn manifest_errors_name_file_line_column_and_fix() {
    let who = everyone()[0];
    let s = Scratch::new(who);
    for (text, want) in [
        ("[program]\npath = \"/bin/true\"\n[fs]\n\"/a\" = { from = \"/tmp\", rights = \"rq\" }\n", ":4:"),
        ("[program]\npath = \"/bin/true\"\nbogus = 1\n", ":3:"),
        ("[program]\npath = \"/bin/true\"\n[limits]\nwall = \"ten seconds\"\n", ":4:"),
        ("[program\n", ":1:"),
    ] {
        let f = s.write("bad.toml", text);
        let o = run(who, &["-m", f.to_str().expect("utf-8")]);
        assert_eq!(code(&o), 125, "{text}");
        let e = stderr(&o);
        assert!(e.contains("bad.toml") && e.contains(want), "{text}\n=> {e}");
    }
}

#[test]
fn check_describes_authority_and_warns() {
    let who = everyone()[0];
    let s = Scratch::new(who);
    let f = s.write(
        "risky.toml",
        "[program]\npath = \"/bin/true\"\n[fs]\n\"/data\" = { from = \"/tmp\", rights = \"rwc\" }\n\"/sock\" = { from = \"/run\", rights = \"r\" }\n\"/host\" = { from = \"/\", rights = \"rw\" }\n[limits]\nmemory = \"64MiB\"\n",
    );
    let o = brig(who, &["check", f.to_str().expect("utf-8")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for want in ["/data", "write", "memory", "loopback", "--verbose lists them"] {
        assert!(out.contains(want), "check output lacks {want}:\n{out}");
    }
    assert!(out.to_lowercase().contains("warning"), "{out}");
    // The seccomp groups, one by one, behind --verbose, after the summary.
    assert!(!out.contains("ptrace"), "{out}");
    let o = brig(who, &["check", "--verbose", f.to_str().expect("utf-8")]);
    let out = stdout(&o);
    let (summary, groups) = (out.find("It can read").expect("summary"), out.find("ptrace"));
    assert!(groups.is_some_and(|g| g > summary), "{out}");
    // brig run prints the same risk warnings, unless -q.
    let m = f.to_str().expect("utf-8");
    let loud = brig(who, &["run", "-m", m]);
    assert!(stderr(&loud).contains("brig: warning:"), "{}", stderr(&loud));
    let quiet = brig(who, &["run", "-q", "-m", m]);
    assert!(!stderr(&quiet).contains("brig: warning:"), "{}", stderr(&quiet));
}

#[test]
fn doctor_reports_every_probe_and_passes_here() {
    for who in everyone() {
        let o = brig(who, &["doctor"]);
        let out = stdout(&o);
        assert_eq!(code(&o), 0, "{who:?}: {out}{}", stderr(&o));
        for want in [
            "user namespace",
            "landlock",
            "seccomp user notification",
            "pidfd",
            "clone3",
            "cgroup",
            "kvm",
            "enforced",
        ] {
            assert!(out.contains(want), "doctor lacks {want}:\n{out}");
        }
    }
    // Without Landlock the default policy cannot be enforced: non-zero.
    let b = brig_bin();
    let o = command(
        everyone()[0],
        &knockout_bin(),
        &["444=38", "--", b.to_str().expect("utf-8"), "doctor"],
    )
    .output()
    .expect("doctor");
    assert_ne!(code(&o), 0, "{}", stdout(&o));
}
