//! `--ask`: a refused open is asked about on brig's terminal (a pty the test drives as a person
//! would: tests/probes/ask_driver.py); yes hands the file over without a restart, no and no
//! answer refuse, "always" asks once, and nothing the program writes can answer. Both uids.

mod common;
use common::*;
use std::path::Path;

/// Runs `brig run ARGS` on a terminal answered with `keys`; returns what it showed and the
/// exit status line.
fn asked(who: Who, keys: &str, args: &[&str]) -> String {
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probes/ask_driver.py");
    let brig = brig_bin();
    let mut a = vec![driver.to_str().expect("utf-8"), keys, brig.to_str().expect("utf-8"), "run"];
    a.extend_from_slice(args);
    let o =
        command_outside_cgroup(who, Path::new("/usr/bin/python3"), &a).output().expect("driver");
    assert!(o.status.success(), "driver: {}", stderr(&o));
    stdout(&o)
}

fn secret(who: Who) -> (Scratch, String) {
    let s = Scratch::new(who);
    s.write("note.txt", "the asked-for file\n");
    s.own(who);
    let p = s.sub("note.txt");
    (s, p)
}

#[test]
fn yes_once_hands_the_file_over_and_no_refuses() {
    for who in everyone() {
        let (_s, file) = secret(who);
        let out = asked(who, "o", &["--ask", "--", "cat", &file]);
        assert!(out.contains(&format!("allow read of {file}?")), "{who:?}: {out}");
        assert!(out.contains("the asked-for file"), "{who:?}: {out}");
        assert!(out.trim_end().ends_with("exit 0"), "{who:?}: {out}");
        let out = asked(who, "n", &["--ask", "--", "cat", &file]);
        assert!(!out.contains("the asked-for file"), "{who:?}: {out}");
        assert!(out.trim_end().ends_with("exit 1"), "{who:?}: {out}");
    }
}

#[test]
fn no_answer_is_no_and_the_program_cannot_answer() {
    for who in everyone() {
        let (_s, file) = secret(who);
        // The program types the answer on its own terminal first: it is not brig's.
        let script = format!("printf 'o\\r\\na'; cat {file}");
        let out = asked(who, "", &["--ask", "--ask-timeout", "1s", "--", "/bin/sh", "-c", &script]);
        assert!(out.contains("allow read of"), "{who:?}: {out}");
        assert!(out.contains("no\r\n"), "{who:?}: timed out as no: {out}");
        assert!(!out.contains("the asked-for file"), "{who:?}: {out}");
        assert!(out.trim_end().ends_with("exit 1"), "{who:?}: {out}");
    }
}

#[test]
fn always_asks_once_per_file() {
    for who in everyone() {
        let (_s, file) = secret(who);
        let script = format!("cat {file} {file}");
        let out = asked(who, "a", &["--ask", "--", "/bin/sh", "-c", &script]);
        assert_eq!(out.matches("[o]nce [a]lways [n]o").count(), 1, "{who:?}: {out}");
        assert_eq!(out.matches("the asked-for file").count(), 2, "{who:?}: {out}");
        // ... and says how to keep the answer.
        assert!(out.contains(&format!("[fs] \"{file}\" = \"r\"")), "{who:?}: {out}");
    }
}

#[test]
fn ask_without_a_terminal_is_refused() {
    for who in everyone() {
        // setsid: no controlling terminal, so no /dev/tty to ask on.
        let _ = who;
        let o = std::process::Command::new("setsid")
            .args(["-w", brig_bin().to_str().expect("utf-8"), "run", "--ask", "--", "true"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("setsid");
        assert_eq!(code(&o), 125, "{}", stderr(&o));
        assert!(stderr(&o).contains("--ask"), "{}", stderr(&o));
    }
}

#[test]
fn rewriting_the_path_while_the_broker_asks_opens_only_what_was_allowed() {
    // The broker opens its own copy of the path it showed: a thread rewriting the program's
    // buffer to another file outside the view gets that file asked about (and refused), never
    // opened under the allowed one's answer.
    let probe = include_str!("probes/broker.py");
    for who in everyone() {
        let (s, allowed) = secret(who);
        let p = s.write("broker.py", probe);
        let hidden = Scratch::new(who);
        hidden.write("secret", "secret\n");
        hidden.own(who);
        s.own(who);
        let (p, secret) = (p.to_str().expect("utf-8").to_string(), hidden.sub("secret"));
        let args =
            ["--ask", "--rx", &p, "--", "/usr/bin/python3", &p, "race", &allowed, &secret, "20000"];
        let out = asked(who, "an+", &args);
        let line = out.lines().find(|l| l.starts_with("race:")).unwrap_or_else(|| panic!("{out}"));
        assert!(line.ends_with(" 0 secret"), "{who:?}: {line}");
        assert!(!line.contains(" 0 opened"), "{who:?}: the allowed file was never opened: {line}");
    }
}

#[test]
fn links_the_program_makes_are_never_followed_for_it() {
    // Even with every question answered "always", a symlink the program makes in its own grant,
    // or /proc/self/root, leads only into the prison's view: nothing is asked, nothing opened.
    for who in everyone() {
        let (_s, file) = secret(who);
        let w = Scratch::new(who);
        let link = w.sub("l");
        let script = format!("ln -s {file} {link}; cat {link}; cat /proc/self/root{file}; true");
        let out = asked(who, "a+", &["--ask", "--rw", w.s(), "--", "/bin/sh", "-c", &script]);
        assert!(!out.contains("the asked-for file"), "{who:?}: {out}");
        assert!(!out.contains("[o]nce"), "{who:?}: asked: {out}");
    }
}

#[test]
fn as_root_yes_does_not_lend_roots_rights() {
    // brig runs as root, the prison as uid 65534: a yes opens only what 65534 may open by the
    // file's mode, never with root's rights.
    if !everyone().contains(&Who::Root) {
        return;
    }
    let s = Scratch::new(Who::Root);
    let file = s.write("roots-only", "root's own file\n");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let _ = std::process::Command::new("chown").args(["0:0"]).arg(&file).status();
    let file = file.to_str().expect("utf-8");
    let out = asked(Who::Root, "o", &["--ask", "--", "cat", file]);
    assert!(out.contains("allow read of"), "{out}");
    assert!(!out.contains("root's own file"), "{out}");
    assert!(out.trim_end().ends_with("exit 1"), "{out}");
}
