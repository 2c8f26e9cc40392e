//! Real programs run correctly inside, as root and as an unprivileged uid, and the exit-status
//! contract holds.

mod common;
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

#[test]
fn exit_status_passes_through() {
    for who in everyone() {
        assert_eq!(code(&run(who, &["--", "/bin/sh", "-c", "exit 7"])), 7, "{who:?}");
        assert_eq!(code(&run(who, &["--", "true"])), 0, "{who:?}");
    }
}

#[test]
fn signal_death_is_128_plus_n() {
    for who in everyone() {
        let o = run(who, &["--", "/bin/sh", "-c", "kill -TERM $$"]);
        assert_eq!(code(&o), 128 + 15, "{who:?} {}", stderr(&o));
    }
}

#[test]
fn not_found_is_127_and_not_executable_is_126() {
    for who in everyone() {
        let o = run(who, &["--", "no-such-program-brig"]);
        assert_eq!(code(&o), 127, "{who:?}");
        assert!(stderr(&o).contains("not found inside the prison"), "{}", stderr(&o));
        let s = Scratch::new(who);
        s.write("script", "#!/bin/sh\necho hi\n");
        let script = s.sub("script");
        let o = run(who, &["--rx", s.s(), "--", &script]);
        assert_eq!(code(&o), 126, "{who:?} {}", stderr(&o));
    }
}

#[test]
fn refusal_is_125() {
    for who in everyone() {
        let o = run(who, &["--ro", "/definitely/not/here", "--", "true"]);
        assert_eq!(code(&o), 125, "{who:?}");
        assert!(stderr(&o).contains("/definitely/not/here"), "{}", stderr(&o));
        let o = run(who, &["--mem", "12XB", "--", "true"]);
        assert_eq!(code(&o), 125);
        assert!(stderr(&o).contains("--mem"), "{}", stderr(&o));
    }
}

#[test]
fn shell_and_coreutils() {
    for who in everyone() {
        let s = Scratch::new(who);
        let script = format!(
            "cd {d} && echo hello > a && cp a b && sort b | uniq | wc -l > n && ls -la >/dev/null && \
             mkdir sub && mv b sub/ && find . -type f | sort && cat n && head -c 4 /dev/urandom | od >/dev/null && \
             date >/dev/null && id -u && awk 'BEGIN{{print 6*7}}' && sed -n 1p a",
            d = s.s()
        );
        let o = run(who, &["--rw", s.s(), "--", "/bin/sh", "-c", &script]);
        assert_eq!(code(&o), 0, "{who:?}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains("./a\n./n\n./sub/b\n1\n"), "{out}");
        assert!(out.contains("42\nhello"), "{out}");
    }
}

#[test]
fn python3_runs_a_script() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write(
            "job.py",
            "import json, os, sys, hashlib, subprocess\n\
             d = {'sum': sum(range(10)), 'h': hashlib.sha256(b'x').hexdigest()[:8]}\n\
             open(os.path.join(sys.argv[1], 'out.json'), 'w').write(json.dumps(d))\n\
             print(subprocess.run(['echo', 'child'], capture_output=True, text=True).stdout.strip())\n",
        );
        let job = s.sub("job.py");
        let o = run(who, &["--rw", s.s(), "--", "python3", &job, s.s()]);
        assert_eq!(code(&o), 0, "{who:?}: {}", stderr(&o));
        assert_eq!(stdout(&o).trim(), "child");
        let out = std::fs::read_to_string(s.join("out.json")).expect("out.json");
        assert!(out.contains("\"sum\": 45") && out.contains("2d711642"), "{out}");
    }
}

#[test]
fn git_init_add_commit() {
    for who in everyone() {
        let s = Scratch::new(who);
        let repo = s.sub("repo");
        std::fs::create_dir(&repo).expect("mkdir");
        s.own(who);
        let script = "git init -q . && echo v1 > f && git add f && \
             git -c user.name=t -c user.email=t@e commit -q -m first && git log --oneline | wc -l";
        let o = run(
            who,
            &["--rw", &repo, "--chdir", &repo, "--env", "HOME=/tmp", "--", "/bin/sh", "-c", script],
        );
        assert_eq!(code(&o), 0, "{who:?}: {}", stderr(&o));
        assert_eq!(stdout(&o).trim(), "1");
        assert!(s.join("repo/.git/HEAD").exists());
    }
}

#[test]
fn gcc_builds_and_runs_hello() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write(
            "hello.c",
            "#include <stdio.h>\nint main(void){puts(\"hello from gcc\");return 0;}\n",
        );
        s.own(who);
        let script = "gcc -O1 -o hello hello.c && ./hello";
        let o = run(who, &["--rwx", s.s(), "--chdir", s.s(), "--", "/bin/sh", "-c", script]);
        assert_eq!(code(&o), 0, "{who:?}: {}", stderr(&o));
        assert_eq!(stdout(&o).trim(), "hello from gcc");
    }
}

#[test]
fn stdin_and_stdout_are_the_callers() {
    for who in everyone() {
        let mut c = command(who, &brig_bin(), &["run", "--", "tr", "a-z", "A-Z"]);
        c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
        let mut child = c.spawn().expect("spawn");
        use std::io::Write;
        child.stdin.take().expect("stdin").write_all(b"prison\n").expect("write");
        let o = child.wait_with_output().expect("wait");
        assert_eq!(stdout(&o), "PRISON\n");
    }
}

/// pid 1 forwards the signals brig receives to the program, which can handle them.
#[test]
fn signals_are_forwarded_to_the_program() {
    for who in everyone() {
        let script = "trap 'echo got TERM; exit 3' TERM; echo ready; sleep 10 & wait";
        let mut c = command(who, &brig_bin(), &["run", "--", "/bin/bash", "-c", script]);
        let mut child = c.stdout(std::process::Stdio::piped()).spawn().expect("spawn");
        let mut out = child.stdout.take().expect("stdout");
        let mut buf = [0u8; 6];
        use std::io::Read;
        out.read_exact(&mut buf).expect("ready");
        assert_eq!(&buf, b"ready\n");
        let _ =
            std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let mut rest = String::new();
        out.read_to_string(&mut rest).expect("rest");
        let st = child.wait().expect("wait");
        assert_eq!(rest, "got TERM\n", "{who:?}");
        assert_eq!(st.code(), Some(3), "{who:?}");
    }
}

#[test]
fn starts_in_the_callers_directory_when_a_grant_shows_it() {
    for who in everyone() {
        let s = Scratch::new(who);
        std::fs::create_dir_all(s.join("proj/sub")).expect("mkdir");
        s.own(who);
        let sub = s.sub("proj/sub");
        let pwd = |args: &[&str]| {
            let mut a = vec!["run"];
            a.extend_from_slice(args);
            a.extend(["--", "pwd"]);
            command(who, &brig_bin(), &a).current_dir(&sub).output().expect("brig")
        };
        // Granted at its own path, or elsewhere: the same directory inside.
        let o = pwd(&["--ro", &s.sub("proj")]);
        assert_eq!(stdout(&o), format!("{sub}\n"), "{who:?}: {}", stderr(&o));
        let o = pwd(&["--ro", &format!("{}:/w", s.sub("proj"))]);
        assert_eq!(stdout(&o), "/w/sub\n", "{who:?}: {}", stderr(&o));
        // Not granted: `/`. Asked for: that one.
        assert_eq!(stdout(&pwd(&[])), "/\n");
        assert_eq!(stdout(&pwd(&["--rw", &s.sub("proj"), "--chdir", "/tmp"])), "/tmp\n");
        // One that is not in the view is named, with the fix.
        let o = pwd(&["--chdir", "/no/such/dir"]);
        assert_eq!(code(&o), 125);
        let e = stderr(&o);
        assert!(e.contains("cannot start in /no/such/dir") && e.contains("--chdir"), "{e}");
    }
}

#[test]
fn home_is_private_and_writable_unless_a_grant_shows_the_callers() {
    for who in everyone() {
        let s = Scratch::new(who);
        let script = "echo $HOME; cd && mkdir -p .cache/tool && git config --global user.name p \
                      && cat .gitconfig | grep -c name; getent passwd $(id -u) | cut -d: -f6";
        let o = command(who, &brig_bin(), &["run", "--", "sh", "-c", script])
            .env("HOME", s.s())
            .output()
            .expect("brig");
        assert_eq!(stdout(&o), "/tmp\n1\n/tmp\n", "{who:?}: {}", stderr(&o));
        assert!(!s.join(".gitconfig").exists(), "the host home was written");
        // The caller's home granted: HOME is its place inside.
        let o = command(
            who,
            &brig_bin(),
            &["run", "--rw", &format!("{}:/h", s.s()), "--", "sh", "-c", "echo $HOME"],
        )
        .env("HOME", s.s())
        .output()
        .expect("brig");
        assert_eq!(stdout(&o), "/h\n", "{who:?}: {}", stderr(&o));
    }
}

#[test]
fn workspace_preset_runs_a_project_and_exec_refusals_name_the_fix() {
    for who in everyone() {
        let s = Scratch::new(who);
        let app = s.write(
            "app.sh",
            "#!/bin/sh\necho in $(pwd)\ncp /bin/true /tmp/t && /tmp/t && echo tmp-exec\necho made > out.txt\n",
        );
        std::fs::set_permissions(&app, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        s.own(who);
        let brig_in = |dir: &str, args: &[&str]| {
            let mut a = vec!["run"];
            a.extend_from_slice(args);
            command(who, &brig_bin(), &a).current_dir(dir).output().expect("brig")
        };
        // -w: the directory read-write-exec, started in, and an exec-capable /tmp.
        let o = brig_in(s.s(), &["-w", "--", "./app.sh"]);
        assert_eq!(code(&o), 0, "{who:?}: {}", stderr(&o));
        assert_eq!(stdout(&o), format!("in {}\ntmp-exec\n", s.s()));
        assert_eq!(std::fs::read_to_string(s.join("out.txt")).expect("out"), "made\n");
        // Without it: the refusal names the grant that lacks x and the flag that gives it.
        let o = brig_in("/", &["--rw", &format!("{}:/w", s.s()), "--", "/w/app.sh"]);
        assert_eq!(code(&o), 126);
        let want = format!("the grant --rw {}:/w has no x: grant it with --rwx {}", s.s(), s.s());
        assert!(stderr(&o).contains(&want), "{who:?}: {}", stderr(&o));
        // /tmp runs nothing unless asked: --tmpfs /tmp:x.
        let copy = ["--", "sh", "-c", "cp /bin/true /tmp/t && /tmp/t"];
        assert_eq!(code(&brig_in("/", &copy)), 126);
        let o = brig_in("/", &[&["--tmpfs", "/tmp:x"][..], &copy].concat());
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        // -w refuses to grant / or the whole home.
        let o = brig_in("/", &["-w", "--", "true"]);
        assert_eq!(code(&o), 125);
        assert!(stderr(&o).contains("the whole host"), "{}", stderr(&o));
    }
}

#[test]
fn nothing_of_the_prison_runs_once_brig_has_returned() {
    for who in everyone() {
        let s = Scratch::new(who);
        let late = s.sub("late");
        let script = format!("(sleep 0.3; echo late > {late}) & exit 0");
        let o = run(who, &["--rw", s.s(), "--", "sh", "-c", &script]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        std::thread::sleep(std::time::Duration::from_millis(800));
        assert!(!s.join("late").exists(), "{who:?}: a background process outlived the prison");
    }
}

#[test]
fn as_root_a_root_owned_workspace_is_writable_and_keeps_its_owner() {
    if everyone()[0] != Who::Root {
        eprintln!("skipped: only a root run id-maps its grants (the tests run unprivileged)");
        return;
    }
    let who = Who::Root;
    let s = Scratch::new(who);
    s.write("f", "old\n");
    let chown = Command::new("chown").args(["-R", "0:0", s.s()]).status().expect("chown");
    assert!(chown.success());
    std::fs::set_permissions(&s.path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(s.join("f"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let rep = format!("{}.json", s.s());
    let work = "echo more >> f && echo new > made && mkdir d && id -u";
    let o = run(who, &["--rw", s.s(), "--chdir", s.s(), "--report", &rep, "--", "sh", "-c", work]);
    assert_eq!((code(&o), stdout(&o).trim()), (0, "65534"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(s.join("f")).expect("f"), "old\nmore\n");
    for name in ["made", "d"] {
        let m = std::fs::metadata(s.join(name)).expect(name);
        assert_eq!((m.uid(), m.gid()), (0, 0), "{name} is not the grant owner's on the host");
    }
    let report = std::fs::read_to_string(&rep).expect("report");
    let _ = std::fs::remove_file(&rep);
    assert!(report.contains("files of 0:0 are the prison's"), "{report}");
    // Never a setuid file of the owner's (root's) on the host: not by chmod, not at creation.
    let setid = "chmod u+s made; chmod g+s made; \
        python3 -c \"import os; os.open('s', os.O_CREAT | os.O_WRONLY, 0o6755)\"; true";
    let o = run(who, &["--rw", s.s(), "--chdir", s.s(), "--", "sh", "-c", setid]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for name in ["made", "s"] {
        if let Ok(m) = std::fs::metadata(s.join(name)) {
            assert_eq!(m.mode() & 0o6000, 0, "{name} has a setid bit: {:o}", m.mode());
        }
    }
    // ... so neither --allow-syscalls nor --best-effort may take @setid-bits away, nor
    // @namespaces (root of a nested user namespace could give the owner's files capabilities).
    for group in ["@setid-bits", "@namespaces"] {
        let o = run(who, &["--rw", s.s(), "--allow-syscalls", group, "--", "true"]);
        assert_eq!(code(&o), 125, "{group}: {}", stderr(&o));
        assert!(stderr(&o).contains(&format!("{group} stays denied")), "{}", stderr(&o));
    }
    // Control: a grant the prison's uid owns is not id-mapped, and may be loosened.
    let own = Scratch::new(who);
    let o = run(who, &["--rw", own.s(), "--allow-syscalls", "@namespaces", "--", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = run_knocked_out(who, &["317=22"], &["--rw", s.s(), "--", "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot drop seccomp"), "{}", stderr(&o));
}
