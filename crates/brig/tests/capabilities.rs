//! Capabilities as file descriptors (docs/capabilities.md): what a program receives, that it
//! can use exactly that, and that every misuse fails in a real prison — in the default mode
//! (Landlock, namespaces) and in capability mode (its seccomp filter and Landlock layer).
//! Each refusal has a control run in which the same step succeeds, so the test can fail.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A directory capability is reachable only through its fd: not by path, not through `..`
/// (it stops at the capability's root), not by an absolute path through the fd (capability
/// mode), not through a symlink inside it that points out, and not for writing, chmod or
/// utimes when it is read-only.
#[test]
fn dir_capability_misuse() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write("site/index.html", "hello");
        s.write("other/x", "x");
        std::os::unix::fs::symlink(s.join("other/x"), s.join("site/out")).expect("symlink");
        s.own(who);
        let site = format!("site={}", s.sub("site"));
        let top = format!("top={}", s.s());
        // by path, the directory is not in the prison's view at all
        let o = run(who, &["--dir", &site, "--", "cat", &s.sub("site/index.html")]);
        assert_ne!(code(&o), 0, "{}", stdout(&o));
        let o = run(who, &["--dir", &site, "--", "sh", "-c", "cat /proc/self/fd/3/index.html"]);
        assert_eq!(stdout(&o), "hello", "{}", stderr(&o));
        // metadata too: `..` does not lead out (stat, chmod are not Landlock's to refuse)
        let sh = "stat -c %s /proc/self/fd/3/../other/x; chmod 600 /proc/self/fd/3/index.html";
        let o = run(who, &["--dir", &site, "--", "sh", "-c", sh]);
        assert_ne!(code(&o), 0);
        assert!(
            stderr(&o).contains("No such file") && stderr(&o).contains("Read-only"),
            "{}",
            stderr(&o)
        );
        // control: through a capability on the parent, the same file is there
        let o = run(who, &["--dir", &top, "--", "stat", "-c", "%s", "/proc/self/fd/3/other/x"]);
        assert_eq!(stdout(&o).trim(), "1", "{}", stderr(&o));

        let steps = [
            "openat:site:index.html:r",
            "openat:site:../index.html:r",
            "openat:site:../other/x:r",
            "openat:site:../../../../../../etc/passwd:r",
            "openat:site:out:r",
            "openat:site:/etc/passwd:r",
            "openat:site:index.html:w",
            "openat:top:other/x:r",
        ];
        for enter in [false, true] {
            let l = probe(who, &s, &["--dir", &site, "--dir", &top], enter, &steps);
            allowed(&l, "openat:site:index.html:r");
            allowed(&l, "openat:top:other/x:r"); // the control for the next three
            allowed(&l, "openat:site:../index.html:r"); // `..` of the root is the root
            refused(&l, "openat:site:../other/x:r", libc::ENOENT);
            refused(&l, "openat:site:../../../../../../etc/passwd:r", libc::ENOENT);
            // the link's absolute target is resolved in the prison's root, where it does not
            // exist (the wide control below has it exist)
            refused(&l, "openat:site:out:r", libc::ENOENT);
            refused(&l, "openat:site:index.html:w", libc::EROFS);
            if enter {
                // the prison's stub /etc/passwd is visible by path in the default mode, but not
                // in capability mode, whatever dirfd the absolute path is given with
                refused(&l, "openat:site:/etc/passwd:r", EACCES);
            } else {
                allowed(&l, "openat:site:/etc/passwd:r");
            }
        }
        // With the scratch tree also granted by path, the symlink's target exists: the default
        // mode follows it (it is granted), capability mode refuses it (outside every capability).
        let wide = ["--dir", &site, "--ro", s.s()];
        let l = probe(who, &s, &wide, false, &steps[..6]);
        allowed(&l, "openat:site:out:r");
        let l = probe(who, &s, &wide, true, &steps[..6]);
        refused(&l, "openat:site:out:r", EACCES);
        // rw rights: writing works (the control for the write refusal above)
        let l = probe(who, &s, &["--dir", &format!("{site}:rw")], true, &steps[..7]);
        allowed(&l, "openat:site:index.html:w");
    }
}

/// File capabilities carry exactly their mode: a read-only one cannot be written, nor re-opened
/// for writing through /proc/self/fd; data capabilities are sealed.
#[test]
fn file_and_data_capability_misuse() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write("in.txt", "input");
        s.write("log.txt", "");
        let ro = format!("ro={}", s.sub("in.txt"));
        let log = format!("log={}:append", s.sub("log.txt"));
        let data = format!("blob={}", s.sub("in.txt"));
        let args = ["--file", &ro, "--file", &log, "--data", &data];
        let steps = ["read:ro", "write:ro", "reopen:ro", "write:log", "write:blob", "reopen:blob"];
        for enter in [false, true] {
            let l = probe(who, &s, &args, enter, &steps);
            assert_eq!(result(&l, "read:ro"), "ok input");
            refused(&l, "write:ro", libc::EBADF);
            // The read-only mount refuses first (EROFS); capability mode refuses the path.
            refused(&l, "reopen:ro", if enter { EPERM } else { libc::EROFS });
            assert_eq!(result(&l, "write:log"), "ok 1");
            refused(&l, "write:blob", libc::EBADF);
            if enter {
                refused(&l, "reopen:blob", EPERM);
            } else {
                // a memfd can be re-opened, but its seals refuse every write
                let o = run(who, &["--data", &data, "--", "sh", "-c", "echo x >> /proc/self/fd/3"]);
                assert_ne!(code(&o), 0);
            }
        }
        assert_eq!(std::fs::read_to_string(s.join("log.txt")).expect("log"), "xx");
        assert_eq!(std::fs::read_to_string(s.join("in.txt")).expect("in"), "input");
        // The read-only capability stays read-only even where the directory is granted
        // writable (its own read-only mount). Control: an append capability there re-opens.
        let l = probe(who, &s, &["--file", &ro, "--rw", s.s()], false, &["reopen:ro"]);
        refused(&l, "reopen:ro", libc::EROFS);
        let l = probe(who, &s, &["--file", &log, "--rw", s.s()], false, &["reopen:log"]);
        allowed(&l, "reopen:log");
    }
}

/// A one-shot TCP server on the host's loopback: answers "pong " + what it read. Returns its
/// port and a handle yielding what it received.
fn echo_server() -> (u16, std::thread::JoinHandle<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let h = std::thread::spawn(move || {
        l.set_nonblocking(false).expect("blocking");
        let (mut c, _) = l.accept().expect("accept");
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut got = vec![0u8; 64];
        let n = c.read(&mut got).unwrap_or(0);
        got.truncate(n);
        let _ = c.write_all(b"pong");
        got
    });
    (port, h)
}

/// A listener that records whether anyone connected within a short time.
fn bystander() -> (u16, std::thread::JoinHandle<bool>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    l.set_nonblocking(true).expect("nonblocking");
    let h = std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end {
            if l.accept().is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    });
    (port, h)
}

/// A connect capability reaches its server, and nothing else: not another address through the
/// same socket (connect, sendto), not a new socket (no network of its own; capability mode
/// refuses sockets outright).
#[test]
fn connect_capability_reaches_only_its_endpoint() {
    for who in everyone() {
        for enter in [false, true] {
            let s = Scratch::new(who);
            let (port, server) = echo_server();
            let (other, watch) = bystander();
            let db = format!("db=tcp://127.0.0.1:{port}");
            let c = format!("connect:db:127.0.0.1:{other}");
            let t = format!("sendto:db:127.0.0.1:{other}");
            let l = probe(who, &s, &["--connect", &db], enter, &[&c, &t, "talk:db", "socket"]);
            refused(&l, &c, if enter { EPERM } else { EACCES });
            assert_eq!(result(&l, "talk:db"), "ok pong");
            if enter {
                refused(&l, "socket", EPERM);
            } else {
                allowed(&l, "socket"); // but in its own network namespace: see below
            }
            // sendto's address is ignored on a connected TCP socket: the byte went to the
            // capability's own server, never to the other port.
            let got = server.join().expect("server");
            assert!(got.starts_with(b"x") && !watch.join().expect("watch"), "{got:?}");
        }
        // A new socket in the default mode cannot reach the host at all.
        let (other, watch) = bystander();
        let py = format!(
            "import socket\ntry:\n socket.create_connection(('127.0.0.1',{other}),timeout=2); print('ESCAPED')\nexcept OSError as e: print('blocked', e)"
        );
        let o = run(who, &["--", "python3", "-c", &py]);
        assert_blocked(&o, "new socket to the host");
        assert!(!watch.join().expect("watch"));
    }
}

/// Capability mode from brig-caps: no new sockets but unix socketpairs, no signals to other
/// processes, no new processes, no paths from the root.
#[test]
fn capability_mode_refuses_ambient_authority() {
    for who in everyone() {
        let s = Scratch::new(who);
        let steps = ["socket", "socketpair", "kill:1", "spawn", "open:/etc/passwd:r"];
        // brig-caps needs a description, so the probe gets one capability
        let data = format!("any={}", s.write("any", "").display());
        let l = probe(who, &s, &["--data", &data], false, &steps);
        for st in steps {
            allowed(&l, st); // the controls: each works outside capability mode
        }
        let l = probe(who, &s, &["--data", &data], true, &steps);
        allowed(&l, "enter");
        allowed(&l, "socketpair");
        for st in ["socket", "kill:1", "spawn", "open:/etc/passwd:r"] {
            refused(&l, st, EPERM);
        }
    }
}

/// `--capability-mode` applies it at exec: a static binary runs with its capabilities and
/// nothing else; a dynamic one is refused with the reason.
#[test]
fn capability_mode_at_exec() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write("mail.txt", "one\ntwo\n");
        let stdin = format!("stdin={}", s.sub("mail.txt"));
        let o = run(who, &["--capability-mode", "--data", &stdin, "--", "/bin/busybox", "cat"]);
        assert_eq!((code(&o), stdout(&o).as_str()), (0, "one\ntwo\n"), "{}", stderr(&o));
        for path in ["/etc/passwd", &s.sub("mail.txt")] {
            let o = run(who, &["--capability-mode", "--", "/bin/busybox", "cat", path]);
            assert_ne!(code(&o), 0, "{}", stdout(&o));
            assert!(stderr(&o).contains("Operation not permitted"), "{}", stderr(&o));
            // control: without capability mode the stub /etc/passwd is readable
            if path == "/etc/passwd" {
                let o = run(who, &["--", "/bin/busybox", "cat", path]);
                assert_eq!(code(&o), 0, "{}", stderr(&o));
            }
        }
        let o = run(who, &["--capability-mode", "--", "/bin/true"]);
        assert_eq!(code(&o), 126);
        assert!(stderr(&o).contains("only a statically linked program"), "{}", stderr(&o));
    }
}

/// Polls until something accepts on `port`.
fn wait_for(port: u16, child: &mut Child) {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            let mut e = String::new();
            child.stderr.take().map(|mut x| x.read_to_string(&mut e));
            panic!("server exited: {st}\n{e}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on {port}");
}

fn get(port: u16, path: &str) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").expect("send");
    let mut r = String::new();
    c.read_to_string(&mut r).expect("read");
    r
}

/// `brig ARGS...` as `who`, in the background, its stderr piped.
fn spawn(who: Who, args: &[&str]) -> Child {
    command(who, &brig_bin(), args).stderr(Stdio::piped()).spawn().expect("spawn brig")
}

/// SIGTERM to brig, which forwards it to the program; then reap.
fn stop(mut child: Child) {
    let _ = std::process::Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

/// The example web server: a client outside fetches files through the listener capability;
/// inside, its backdoor finds every other file and every network destination unreachable.
#[test]
fn static_server_serves_and_its_backdoor_fails() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write("site/index.html", "welcome\n");
        s.write("site/a/b.txt", "deep\n");
        s.write("secret.txt", "top secret\n");
        let bin = install(&s, who, "static_server");
        let port = free_port();
        let site = format!("site={}", s.sub("site"));
        let http = format!("http=tcp://127.0.0.1:{port}");
        let args = ["run", "--rx", &bin, "--dir", &site, "--listen", &http, "--", &bin];
        let mut child = spawn(who, &args);
        wait_for(port, &mut child);
        let r = get(port, "/");
        assert!(r.starts_with("HTTP/1.1 200") && r.ends_with("welcome\n"), "{r}");
        assert!(get(port, "/a/b.txt").ends_with("deep\n"));
        assert!(get(port, "/../secret.txt").starts_with("HTTP/1.1 404"));
        let b = get(port, "/backdoor");
        stop(child);
        let lines: Vec<&str> = b.lines().filter(|l| l.contains(": ")).skip(3).collect();
        assert_eq!(lines.len(), 6, "{b}");
        for l in &lines {
            assert!(l.contains("REFUSED") && !l.contains("SUCCEEDED"), "{l}\n{b}");
        }
        assert!(!b.contains("top secret") && !b.contains("root:"), "{b}");
    }
}

/// A listener on port 0: brig says on stderr which port the kernel picked, and the description
/// and the report carry it.
#[test]
fn listener_on_port_zero_is_announced() {
    use std::io::BufRead;
    for who in everyone() {
        let s = Scratch::new(who);
        s.write("site/index.html", "picked\n");
        let bin = install(&s, who, "static_server");
        let site = format!("site={}", s.sub("site"));
        let report = s.sub("report.json");
        let args = [
            "run",
            "--report",
            &report,
            "--rx",
            &bin,
            "--dir",
            &site,
            "--listen",
            "http=tcp://127.0.0.1:0",
            "--",
            &bin,
        ];
        let mut child = spawn(who, &args);
        let mut first = String::new();
        let mut err = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        err.read_line(&mut first).expect("stderr line");
        let port: u16 = first
            .trim()
            .strip_prefix("brig: capability http listens on tcp://127.0.0.1:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no announcement: {first:?}"));
        wait_for(port, &mut child);
        assert!(get(port, "/").ends_with("picked\n"));
        stop(child);
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
        let addr = format!("tcp://127.0.0.1:{port}");
        assert_eq!(r["capabilities"][1]["address"], serde_json::json!(addr), "{r}");
    }
}

/// The server over a unix listener; the socket file is gone when brig ends.
#[test]
fn static_server_on_a_unix_socket() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write("site/index.html", "over unix\n");
        let bin = install(&s, who, "static_server");
        let sock = s.join("http.sock");
        let site = format!("site={}", s.sub("site"));
        let http = format!("http=unix:{}", sock.display());
        let args = ["run", "--rx", &bin, "--dir", &site, "--listen", &http, "--", &bin];
        let child = spawn(who, &args);
        let end = Instant::now() + Duration::from_secs(10);
        let mut c = loop {
            match std::os::unix::net::UnixStream::connect(&sock) {
                Ok(c) => break c,
                Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("connect {}: {e}", sock.display()),
            }
        };
        c.write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").expect("send");
        let mut r = String::new();
        c.read_to_string(&mut r).expect("read");
        assert!(r.ends_with("over unix\n"), "{r}");
        stop(child);
        assert!(!sock.exists(), "socket file left behind");
    }
}

/// The filter example: stdin to stdout, a rules file as its only other capability.
#[test]
fn filter_example() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write("rules.txt", "# words\nlottery\nviagra\n");
        let mail = s.write("mail.txt", "hello\nWIN THE LOTTERY\nbye\n");
        s.own(who);
        let bin = install(&s, who, "filter");
        let rules = format!("rules={}", s.sub("rules.txt"));
        let stdin = format!("stdin={}", mail.display());
        let o = run(who, &["--rx", &bin, "--data", &rules, "--data", &stdin, "--", &bin]);
        assert_eq!(stdout(&o), "ok   hello\nSPAM WIN THE LOTTERY\nok   bye\n", "{}", stderr(&o));
        assert!(stderr(&o).contains("1 of 3 lines are spam"));
    }
}

/// An unmodified socket-activated server from Debian (gunicorn) takes its listening socket
/// from brig through LISTEN_FDS/LISTEN_PID.
#[test]
fn gunicorn_socket_activation() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write(
            "app/app.py",
            "def application(env, start):\n    start('200 OK', [('Content-Type', 'text/plain')])\n    return [b'hello from gunicorn\\n']\n",
        );
        s.own(who);
        let port = free_port();
        let http = format!("http=tcp://127.0.0.1:{port}");
        let app = s.sub("app");
        let args = [
            "run",
            "--ro",
            &app,
            "--listen",
            &http,
            "--",
            "gunicorn",
            "--chdir",
            &app,
            "-w",
            "1",
            "app:application",
        ];
        let mut child = spawn(who, &args);
        wait_for(port, &mut child);
        let r = get(port, "/");
        stop(child);
        assert!(r.starts_with("HTTP/1.1 200") && r.contains("hello from gunicorn\n"), "{r}");
    }
}

/// What the program receives: exactly its capabilities at their documented numbers, the
/// description, socket activation variables, and the [app] table with names made fd numbers.
#[test]
fn fds_environment_and_app_config() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write("site/x", "x");
        s.write("rules", "r");
        let port = free_port();
        let manifest = s.write(
            "m.toml",
            &format!(
                "[program]\npath = \"/bin/sh\"\nargs = [\"-c\", \"ls /proc/self/fd | tr '\\\\n' ' '; echo; env | grep -E '^(LISTEN|BRIG)' | sort; cat <&$BRIG_CAPS_FD\"]\n\
                 [caps.site]\nkind = \"dir\"\npath = \"site\"\n\
                 [caps.rules]\nkind = \"data\"\npath = \"rules\"\n\
                 [caps.http]\nkind = \"listen\"\naddress = \"tcp://127.0.0.1:{port}\"\n\
                 [app]\nname = \"demo\"\nsite = {{ cap = \"site\" }}\nlisteners = [{{ cap = \"http\" }}]\n"
            ),
        );
        s.own(who);
        let o = run(who, &["-m", manifest.to_str().expect("utf-8")]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let out = stdout(&o);
        let mut lines = out.lines();
        // 0-2, http (3), site (4), rules (5), the description (6), and ls's own directory fd
        assert_eq!(lines.next(), Some("0 1 2 3 4 5 6 7 "), "{out}");
        let env: Vec<&str> = lines.by_ref().take(4).collect();
        assert_eq!(env, ["BRIG_CAPS_FD=6", "LISTEN_FDNAMES=http", "LISTEN_FDS=1", "LISTEN_PID=2"]);
        let desc: serde_json::Value =
            serde_json::from_str(lines.next().expect("desc")).expect("json");
        assert_eq!(desc["version"], 1);
        assert_eq!(desc["app"], serde_json::json!({"name": "demo", "site": 4, "listeners": [3]}));
        let caps: Vec<(String, i64)> = desc["caps"]
            .as_array()
            .expect("caps")
            .iter()
            .map(|c| (c["name"].as_str().unwrap_or("").to_string(), c["fd"].as_i64().unwrap_or(-1)))
            .collect();
        assert_eq!(caps, [("site".into(), 4), ("rules".into(), 5), ("http".into(), 3)]);
    }
}

/// Bad capabilities fail before the program starts: exit 125, naming the capability and a fix.
#[test]
fn bad_capabilities_are_refused_before_start() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write("real/x", "x");
        std::os::unix::fs::symlink(s.join("real"), s.join("link")).expect("symlink");
        s.own(who);
        if unsafe_free_uid_is_root() {
            // a link owned by the prison's uid, as one an earlier run could have planted
            let uid = if who == Who::Root { 65534 } else { test_uid() };
            let _ = std::process::Command::new("chown")
                .args(["-h", &format!("{uid}:{uid}"), &s.sub("link")])
                .status();
        }
        let held = TcpListener::bind("127.0.0.1:0").expect("bind");
        let busy = held.local_addr().expect("addr").port();
        let marker = s.sub("ran");
        let touch = format!("touch {marker}");
        let manifest = s.write("bad.toml", "[caps.x]\nkind = \"pipe\"\npath = \"x\"\n");
        let cases: Vec<(Vec<String>, &str)> = vec![
            (
                vec!["-m".into(), manifest.to_str().expect("utf-8").into()],
                "bad.toml:2:8: capability kind \"pipe\" does not exist; use \"dir\"",
            ),
            (vec!["--dir".into(), format!("d={}", s.sub("link"))], "capability d (--dir d="),
            (
                vec!["--listen".into(), format!("h=tcp://127.0.0.1:{busy}")],
                "Address already in use (os error 98); something already listens there",
            ),
            (
                vec!["--connect".into(), "db=tcp://no-such-host.invalid:5432".into()],
                "cannot resolve \"no-such-host.invalid\"",
            ),
            (vec!["--file".into(), format!("f={}", s.sub("nope"))], "create it, or fix the path"),
        ];
        for (flags, want) in cases {
            let mut a: Vec<&str> = flags.iter().map(String::as_str).collect();
            a.extend(["--rw", s.s(), "--", "sh", "-c", &touch]);
            let o = run(who, &a);
            let e = stderr(&o);
            assert_eq!(code(&o), 125, "{flags:?}: {e}");
            assert!(e.contains(want), "{flags:?}: {e}");
            assert!(e.trim_end().ends_with(|c: char| c != ';'), "{e}");
            assert!(!PathBuf::from(&marker).exists(), "the program ran for {flags:?}");
        }
        let o = run(who, &["--dir", &format!("d={}", s.sub("link")), "--", "true"]);
        assert!(stderr(&o).contains("goes through a symlink") && stderr(&o).contains("real"));
        drop(held);
    }
}

fn unsafe_free_uid_is_root() -> bool {
    brig_sys::process::ids().0 == 0
}

/// `brig check` lists every capability with its rights in plain words.
#[test]
fn check_lists_capabilities() {
    let s = Scratch::new(Who::Root);
    let m = s.write(
        "m.toml",
        "[sandbox]\nmode = \"capability\"\n[caps.site]\nkind = \"dir\"\npath = \"site\"\nrights = \"rwc\"\n\
         [caps.http]\nkind = \"listen\"\naddress = \"tcp://127.0.0.1:8080\"\n\
         [caps.log]\nkind = \"file\"\npath = \"log\"\nmode = \"append\"\n",
    );
    let o = brig(everyone()[0], &["check", m.to_str().expect("utf-8")]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}{}", stderr(&o));
    for want in [
        "Capability http (fd 3): a socket listening on TCP 127.0.0.1:8080 in the host's network",
        &format!(
            "Capability site (fd 4): the directory {}: list and read files, write existing files, \
             create, rename and delete entries beneath it, only through the fd",
            s.sub("site")
        ),
        &format!(
            "Capability log (fd 5): the file {}, to append to (created if missing)",
            s.sub("log")
        ),
        "The description of its capabilities is at fd 6 (BRIG_CAPS_FD)",
        "Capability mode: from exec on it acts only through the fds it holds",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
}

/// The manifests in examples/ are valid and say what they grant.
#[test]
fn example_manifests_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    for (name, want) in [
        ("static-server.toml", "Capability http (fd 3)"),
        ("filter.toml", "Capability rules (fd 3)"),
    ] {
        let m = dir.join(name);
        let o = brig(everyone()[0], &["check", m.to_str().expect("utf-8")]);
        assert_eq!(code(&o), 0, "{name}: {}", stderr(&o));
        assert!(stdout(&o).contains(want), "{name}: {}", stdout(&o));
    }
}

/// A listening capability lives in the host's network. TCP Fast Open would let a program reset
/// it with shutdown() and connect out with one sendto(MSG_FASTOPEN), past Landlock's TCP rule:
/// the default deny-list refuses it, and capability mode refuses it whatever that list says.
/// The control loosens the deny-list and the probe does reach a host service.
#[test]
fn listen_capability_cannot_connect_out() {
    for who in everyone() {
        let s = Scratch::new(who);
        let listen = "h=tcp://127.0.0.1:0";
        for (extra, enter, escapes) in [
            (&[][..], false, false),
            (&["--allow-syscalls", "@tcp-fastopen"][..], true, false),
            (&["--allow-syscalls", "@tcp-fastopen"][..], false, true),
        ] {
            let (other, watch) = bystander();
            let step = format!("fastopen:h:127.0.0.1:{other}");
            let mut args = vec!["--listen", listen];
            args.extend_from_slice(extra);
            let l = probe(who, &s, &args, enter, &[&step]);
            let reached = watch.join().expect("watch");
            if escapes {
                // Linux 6.18 (this machine) refuses the connect itself (Landlock EACCES, or
                // EINVAL without it); older kernels let it reach the host service. Either way,
                // with seccomp's rule removed, only the kernel stands in the way.
                assert!(result(&l, &step).starts_with("errno"), "{l:?}");
                assert!(!reached, "reached the host service without @tcp-fastopen: {l:?}");
            } else {
                refused(&l, &step, EPERM);
                assert!(!reached, "{extra:?} enter={enter}: reached the host service");
            }
        }
    }
}

/// Capability mode also refuses unix datagram socketpairs (a datagram can be sent to any named
/// socket by path) and metadata changes by absolute path (Landlock does not cover chmod).
#[test]
fn capability_mode_refuses_paths_landlock_does_not_cover() {
    for who in everyone() {
        let s = Scratch::new(who);
        let f = s.write("f.txt", "x");
        s.own(who);
        let d = format!("d={}", s.sub("f.txt"));
        let chmod = format!("chmod:d:{}", f.display());
        let steps = ["dgrampair", chmod.as_str()];
        let l = probe(who, &s, &["--data", &d, "--rw", s.s()], false, &steps);
        allowed(&l, "dgrampair");
        allowed(&l, &chmod);
        let l = probe(who, &s, &["--data", &d, "--rw", s.s()], true, &steps);
        refused(&l, "dgrampair", EPERM);
        refused(&l, &chmod, EPERM);
    }
}
