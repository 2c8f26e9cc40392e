//! `brig learn`: the learning run touches nothing of the host (its directory is a copy), the
//! draft grants only what the run touched (never the home directory) with only the rights it
//! used, and replaying the draft under normal enforcement succeeds. Both uids.

mod common;
use common::*;
use std::path::Path;
use std::process::Output;

fn brig_in(who: Who, dir: &Path, args: &[&str]) -> Output {
    command(who, &brig_bin(), args).current_dir(dir).output().expect("spawn brig")
}

/// Learns `cmd` in `dir`, checks the draft, replays it; returns the draft and the replay.
fn learn_and_replay(who: Who, dir: &Path, cmd: &[&str]) -> (String, Output) {
    let out = Scratch::new(who);
    let draft = out.sub("draft.toml");
    let mut a = vec!["learn", "-o", &draft, "--"];
    a.extend_from_slice(cmd);
    let o = brig_in(who, dir, &a);
    assert_eq!(code(&o), 0, "{who:?} learn {cmd:?}: {}\n{}", stdout(&o), stderr(&o));
    let text = std::fs::read_to_string(&draft).expect("draft written");
    for line in text.lines().filter(|l| l.starts_with('"')) {
        let path = line.split('"').nth(1).expect("key");
        // The run's home was brig's private one: no host home is ever granted.
        let home = path == "/root" || path.starts_with("/root/") || path.starts_with("/home");
        assert!(!home, "{who:?}: the draft grants a home directory: {line}\n{text}");
        assert!(!path.contains("unused"), "{who:?}: granted what the run never touched: {line}");
    }
    let mut a = vec!["run", "-m", &draft, "--"];
    a.extend_from_slice(cmd);
    let replay = brig_in(who, dir, &a);
    assert_eq!(code(&replay), 0, "{who:?} replay {cmd:?}\n{text}\n{}", stderr(&replay));
    (text, replay)
}

/// A project in a scratch directory, with a directory the commands never touch.
fn project(who: Who, files: &[(&str, &str)]) -> Scratch {
    let s = Scratch::new(who);
    for (name, text) in files {
        s.write(name, text);
    }
    s.write("unused/secret.txt", "nobody reads this\n");
    s.own(who);
    s
}

#[test]
fn python_with_a_config_and_an_output_file() {
    for who in everyone() {
        let app = "import configparser\nc = configparser.ConfigParser()\nc.read('config.ini')\n\
                   open('out.txt', 'w').write(c['app']['name'] + '\\n')\n";
        let s = project(who, &[("app.py", app), ("config.ini", "[app]\nname = demo\n")]);
        let (text, _) = learn_and_replay(who, &s.path, &["/usr/bin/python3", "app.py"]);
        // The learning run wrote into its copy; the replay wrote the real file.
        assert_eq!(std::fs::read_to_string(s.join("out.txt")).expect("out.txt"), "demo\n");
        let dir = format!("\"{}\" = \"rwc\"", s.s());
        assert!(text.contains(&dir), "{who:?}: {text}");
        assert!(text.contains("# made entries: out.txt"), "{text}");
        assert!(text.contains("config.ini"), "the reason names what was read: {text}");
        assert!(!text.contains("config.ini\" = \"rw"), "{text}");
    }
}

#[test]
fn the_learning_run_changes_nothing_on_the_host() {
    for who in everyone() {
        let s = project(who, &[("keep.txt", "original\n")]);
        let out = Scratch::new(who);
        let draft = out.sub("d.toml");
        let cmd = "echo changed > keep.txt; rm -rf unused; touch new.txt";
        // brig's own temporary directory, to see that the copy is gone afterwards.
        let tmp = Scratch::new(who);
        let o = command(who, &brig_bin(), &["learn", "-o", &draft, "--", "/bin/sh", "-c", cmd])
            .current_dir(&s.path)
            .env("TMPDIR", &tmp.path)
            .output()
            .expect("brig");
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(std::fs::read_to_string(s.join("keep.txt")).expect("kept"), "original\n");
        assert!(s.join("unused/secret.txt").exists() && !s.join("new.txt").exists());
        let left: Vec<_> = std::fs::read_dir(&tmp.path).expect("tmp").collect();
        assert!(left.is_empty(), "the copy is removed: {left:?}");
    }
}

#[test]
fn git_status_in_a_repository() {
    for who in everyone() {
        let s = project(who, &[("a.txt", "a\n")]);
        // Set up as the prison's owner sees it (as root, the repository is nobody's).
        let git = "git init -q && git -c safe.directory='*' add a.txt && \
                   git -c safe.directory='*' -c user.email=t@e -c user.name=t commit -qm one";
        let o = command(who, Path::new("/bin/sh"), &["-c", git])
            .current_dir(&s.path)
            .env("HOME", &s.path)
            .output()
            .expect("git");
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        s.own(who);
        let (text, replay) = learn_and_replay(who, &s.path, &["git", "status", "--short"]);
        assert_eq!(stdout(&replay), "?? unused/\n", "{text}");
        assert!(text.contains("# RISK: git runs the hooks"), "{text}");
    }
}

#[test]
fn gcc_builds_a_file_and_runs_it() {
    for who in everyone() {
        let c = "#include <stdio.h>\nint main(void) { puts(\"built\"); return 0; }\n";
        let s = project(who, &[("hello.c", c)]);
        let cmd = ["/bin/sh", "-c", "cc -o hello hello.c && ./hello"];
        let (text, replay) = learn_and_replay(who, &s.path, &cmd);
        assert_eq!(stdout(&replay), "built\n");
        assert!(text.contains(&format!("\"{}\" = \"rwxc\"", s.s())), "{text}");
    }
}

#[test]
fn npm_installs_a_local_tarball() {
    for who in everyone() {
        let s = project(
            who,
            &[
                ("lib/package.json", "{\"name\": \"brig-lib\", \"version\": \"1.0.0\"}\n"),
                ("lib/index.js", "module.exports = (a, b) => a + b;\n"),
                ("app/package.json", "{\"name\": \"app\", \"version\": \"1.0.0\"}\n"),
            ],
        );
        let npm = "cd lib && npm pack -q --offline >/dev/null && cd ../app && \
            npm install --offline --no-audit --no-fund -q ../lib/brig-lib-1.0.0.tgz >/dev/null && \
            node -e \"console.log('sum', require('brig-lib')(2, 3))\"";
        let (_, replay) = learn_and_replay(who, &s.path, &["/bin/sh", "-c", npm]);
        assert_eq!(stdout(&replay), "sum 5\n");
    }
}
