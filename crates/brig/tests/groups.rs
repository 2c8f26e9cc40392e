//! Groups of components from one manifest (issue 10): `[component.NAME]` prisons joined by
//! `[[channel]]`s, run by `brig run -m GROUP.toml`: channels, prefixed output, dependency order,
//! restarts, the group stopped together (also when its supervisor is killed), siblings that
//! cannot reach each other, `brig check`, and the manifest's errors. Root and an unprivileged
//! uid.

mod common;

use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// A python program as a component's `[program]`.
fn python(name: &str, script: &str) -> String {
    format!(
        "[component.{name}.program]\npath = \"/usr/bin/python3\"\nargs = [\"-c\", '''{script}''']\n"
    )
}

const SERVER: &str = "
import socket
s = socket.socket(fileno=3)
while True:
    m = s.recv(100)
    if not m: break
    s.send(m.upper())
print('server: peer hung up', flush=True)
";

const CLIENT: &str = "
import socket, sys
s = socket.socket(fileno=3)
s.send(b'hello')
print('client got', s.recv(100).decode(), flush=True)
print('client to stderr', file=sys.stderr, flush=True)
";

/// Two components joined by a channel: the client's request reaches the server through its
/// capability and comes back; output lines carry their component's name; when the client ends
/// for good, the server sees the channel hang up and the group ends with 0.
#[test]
fn a_channel_joins_two_components() {
    for who in everyone() {
        let s = Scratch::new(who);
        let toml = format!(
            "{}\n[component.client]\nafter = [\"server\"]\n{}\n[[channel]]\nends = [\"client.up\", \"server.down\"]\n",
            python("server", SERVER),
            python("client", CLIENT)
        );
        let m = s.write("group.toml", &toml);
        let o = brig(who, &["run", "-m", m.to_str().expect("utf-8")]);
        let (out, err) = (stdout(&o), stderr(&o));
        assert_eq!(code(&o), 0, "{who:?}: {out}\n{err}");
        assert!(out.contains("client | client got HELLO"), "{who:?}: {out}\n{err}");
        assert!(out.contains("server | server: peer hung up"), "{who:?}: {out}\n{err}");
        assert!(err.contains("client | client to stderr"), "{who:?}: {err}");
    }
}

/// Each component is a prison of its own: a prober beside a holder cannot read the holder's
/// granted directory, see or signal its processes, or reach its abstract socket (which the
/// holder reaches itself) or its TCP listener (a listen capability); the holder stays alive (it
/// answers over their channel at the end). Control: the same prober given the holder's
/// directory and a connect capability to its listener reads the one and reaches the other, so
/// those checks can fail.
#[test]
fn siblings_cannot_reach_each_other() {
    // The sockets among the capabilities (fds from 3).
    const SOCKS: &str = "
import os, signal, socket
def socks():
    out = []
    for fd in range(3, 8):
        try: out.append(socket.socket(fileno=fd))
        except OSError: pass
    return out
";
    const HOLDER: &str = "
# holder-mark-77
secret = open('/held/secret').read().strip()
ab = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
ab.bind('\\0brig-holder-TAG'); ab.listen()
me = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); me.connect('\\0brig-holder-TAG')
print('holder read', secret, 'and reaches its own abstract socket', flush=True)
ch = [s for s in socks() if s.type == socket.SOCK_SEQPACKET][0]
while True:
    m = ch.recv(100)
    if not m: break
    ch.send(b'alive')
";
    const PROBER: &str = "
def attempt(what, f):
    try:
        f(); print(what, 'REACHED', flush=True)
    except OSError as e:
        print(what, 'refused', e.__class__.__name__, flush=True)
attempt('secret', lambda: open('/held/secret').read())
mine = {int(p) for p in os.listdir('/proc') if p.isdigit()}
foreign = []
for pid in range(1, 70000):
    try:
        os.kill(pid, 0)
        if pid not in mine: foreign.append(pid)
    except (ProcessLookupError, PermissionError):
        pass
print('foreign pids', len(foreign), flush=True)
marked = [p for p in mine if b'holder-' + b'mark-77' in open(f'/proc/{p}/cmdline', 'rb').read()]
print('holder processes seen', len(marked), flush=True)
def abstract():
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.connect('\\0brig-holder-TAG')
attempt('abstract', abstract)
attempt('tcp', lambda: socket.create_connection(('127.0.0.1', PORT), timeout=2))
for s in socks():
    if s.type == socket.SOCK_STREAM: print('web capability connected', s.getpeername(), flush=True)
ch = [s for s in socks() if s.type == socket.SOCK_SEQPACKET][0]
ch.send(b'there?'); print('holder says', ch.recv(100).decode(), flush=True)
";
    for who in everyone() {
        let s = Scratch::new(who);
        s.write("held/secret", "s3cr3t\n");
        s.own(who);
        let held = s.sub("held");
        let port = free_port();
        let tag = format!("{}-{port}", std::process::id());
        let holder = format!("{SOCKS}{}", HOLDER.replace("TAG", &tag));
        let prober = format!("{SOCKS}{}", PROBER.replace("TAG", &tag));
        let prober = prober.replace("PORT", &port.to_string());
        let group = |prober_too: bool| {
            let grant = format!(
                "[component.{{}}.fs]\n\"/held\" = {{ from = \"{held}\", rights = \"r\" }}\n"
            );
            let web = |kind: &str| {
                format!("[component.{{}}.caps.web]\nkind = \"{kind}\"\naddress = \"tcp://127.0.0.1:{port}\"\n")
            };
            let mut toml = String::from("[group]\nmain = \"prober\"\n");
            toml.push_str(&python("holder", &holder));
            toml.push_str(&grant.replace("{}", "holder"));
            toml.push_str(&web("listen").replace("{}", "holder"));
            toml.push_str("[component.prober]\nafter = [\"holder\"]\n");
            toml.push_str(&python("prober", &prober));
            if prober_too {
                toml.push_str(&grant.replace("{}", "prober"));
                toml.push_str(&web("connect").replace("{}", "prober"));
            }
            toml.push_str("[[channel]]\nends = [\"prober.holder\", \"holder.prober\"]\n");
            let m = s.write(if prober_too { "control.toml" } else { "group.toml" }, &toml);
            brig(who, &["run", "-m", m.to_str().expect("utf-8")])
        };
        let o = group(false);
        let (out, err) = (stdout(&o), stderr(&o));
        assert_eq!(code(&o), 0, "{who:?}: {out}\n{err}");
        let held_line = "holder | holder read s3cr3t and reaches its own abstract socket";
        assert!(out.contains(held_line), "{who:?}: {out}\n{err}");
        for line in [
            "prober | secret refused",
            "prober | foreign pids 0",
            "prober | holder processes seen 0",
            "prober | abstract refused",
            "prober | tcp refused",
            "prober | holder says alive",
        ] {
            assert!(out.contains(line), "{who:?}: no {line:?} in\n{out}\n{err}");
        }
        assert!(!out.contains("REACHED"), "{who:?}: {out}");
        let o = group(true);
        let out = stdout(&o);
        assert!(out.contains("prober | secret REACHED"), "{who:?}: control\n{out}");
        let reached = format!("prober | web capability connected ('127.0.0.1', {port})");
        assert!(out.contains(&reached), "{who:?}: control\n{out}\n{}", stderr(&o));
    }
}

/// A component whose prison brig refuses stops the group, and what comes after it never starts.
/// Control: the same group with a's grant present; then b runs after a and leaves its mark, so
/// the mark can appear.
#[test]
fn a_component_after_a_refused_one_never_starts() {
    for who in everyone() {
        let s = Scratch::new(who);
        std::fs::create_dir(s.join("marks")).expect("mkdir");
        std::fs::create_dir(s.join("present")).expect("mkdir");
        s.own(who);
        let marks = s.sub("marks");
        let group = |grant: &str| {
            let toml = format!(
                "[component.a.fs]\n\"/x\" = {{ from = \"{}/{grant}\", rights = \"r\" }}\n\
                 [component.a.program]\npath = \"/bin/true\"\n\
                 [component.b]\nafter = [\"a\"]\n[component.b.fs]\n\"{marks}\" = \"rwc\"\n\
                 [component.b.program]\npath = \"/bin/sh\"\nargs = [\"-c\", \"touch {marks}/b-ran\"]\n",
                s.s()
            );
            let m = s.write("group.toml", &toml);
            brig(who, &["run", "-m", m.to_str().expect("utf-8")])
        };
        let marker = Path::new(&marks).join("b-ran");
        let o = group("missing");
        let err = stderr(&o);
        assert_eq!(code(&o), 125, "{who:?}: {err}");
        assert!(err.contains("a | brig: grant"), "{who:?}: {err}");
        assert!(err.contains("a could not start"), "{who:?}: {err}");
        assert!(!marker.exists(), "{who:?}: b started");
        let o = group("present");
        assert_eq!(code(&o), 0, "{who:?}: control: {}", stderr(&o));
        assert!(marker.exists(), "{who:?}: control: b did not run\n{}", stderr(&o));
    }
}

/// `restart = "on-failure"` restarts with backoff up to `restart_max`, then stops the group
/// with the failure's status; the other member is stopped too.
#[test]
fn restarts_then_gives_up() {
    for who in everyone() {
        let s = Scratch::new(who);
        let toml = "[component.flaky]\nrestart = \"on-failure\"\nrestart_max = 2\nrestart_backoff = \"20ms\"\n\
                    [component.flaky.program]\npath = \"/bin/sh\"\nargs = [\"-c\", \"echo try; exit 3\"]\n\
                    [component.other.program]\npath = \"/bin/sleep\"\nargs = [\"60\"]\n";
        let m = s.write("group.toml", toml);
        let t = Instant::now();
        let o = brig(who, &["run", "-m", m.to_str().expect("utf-8")]);
        let (out, err) = (stdout(&o), stderr(&o));
        assert_eq!(code(&o), 3, "{who:?}: {out}\n{err}");
        assert_eq!(out.matches("flaky | try").count(), 3, "{who:?}: {out}\n{err}");
        assert!(err.contains("restarting in 20ms"), "{who:?}: {err}");
        assert!(err.contains("restarting in 40ms"), "{who:?}: {err}");
        assert!(err.contains("giving up; stopping other"), "{who:?}: {err}");
        assert!(t.elapsed() < Duration::from_secs(20), "{who:?}: other was not stopped");
    }
}

/// No member outlives the group: SIGTERM stops them (exit 143), and SIGKILL of the supervisor
/// takes every member's brig and prison with it.
#[test]
fn the_group_is_torn_down_with_its_supervisor() {
    for who in everyone() {
        for sig in [libc::SIGTERM, libc::SIGKILL] {
            let s = Scratch::new(who);
            let tag = format!("{}{}", 4000 + sig, std::process::id() % 1000);
            let toml = format!(
                "[component.a.program]\npath = \"/bin/sleep\"\nargs = [\"{tag}\"]\n\
                 [component.b]\nafter = [\"a\"]\n[component.b.program]\npath = \"/bin/sleep\"\nargs = [\"{tag}\"]\n"
            );
            let m = s.write("group.toml", &toml);
            let mut child = command(who, &brig_bin(), &["run", "-m", m.to_str().expect("utf-8")])
                .spawn()
                .expect("start brig");
            let sleepers = || {
                let o = std::process::Command::new("pgrep")
                    .args(["-f", &format!("^/bin/sleep {tag}$")])
                    .output();
                o.map(|o| String::from_utf8_lossy(&o.stdout).lines().count()).unwrap_or(0)
            };
            let t = Instant::now();
            while sleepers() < 2 && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(20));
            }
            assert_eq!(sleepers(), 2, "{who:?}: the members did not start");
            let _ = std::process::Command::new("kill")
                .args([&format!("-{sig}"), &child.id().to_string()])
                .status();
            let status = child.wait().expect("wait");
            if sig == libc::SIGTERM {
                assert_eq!(status.code(), Some(143), "{who:?}");
            }
            let t = Instant::now();
            while sleepers() > 0 && t.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
            }
            assert_eq!(sleepers(), 0, "{who:?}: members outlived the group after signal {sig}");
        }
    }
}

#[test]
fn check_describes_the_group_and_its_channels() {
    let s = Scratch::new(Who::User(test_uid()));
    let toml = format!(
        "[group]\nmain = \"client\"\n{}\n[component.server]\nrestart = \"on-failure\"\n\
         [component.client]\nafter = [\"server\"]\n{}\n[[channel]]\nends = [\"client.up\", \"server.down\"]\n",
        python("server", SERVER),
        python("client", CLIENT)
    );
    let m = s.write("group.toml", &toml);
    let o = brig(Who::User(test_uid()), &["check", m.to_str().expect("utf-8")]);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}\n{}", stderr(&o));
    for want in [
        "Group of 2 components",
        "started in this order: server, client",
        "The group ends when client ends",
        "client.up <-> server.down (line",
        "client holds it as capability \"up\", server as \"down\"",
        "Component server (line",
        "restarted when it fails (at most 5 times in 60s",
        "Component client (line",
        "starts once server runs; never restarted",
        "Capability up (fd 3): one end of a channel",
    ] {
        assert!(out.contains(want), "no {want:?} in\n{out}");
    }
}

/// Mistakes in a group manifest are refused before anything runs, naming file:line and a fix.
#[test]
fn group_manifest_errors_name_the_line() {
    let who = Who::User(test_uid());
    let s = Scratch::new(who);
    let prog = "[component.a.program]\npath = \"/bin/true\"\n";
    let cases = [
        (
            format!("[component.a]\nafter = [\"b\"]\n{prog}[component.b]\nafter = [\"a\"]\n[component.b.program]\npath = \"/bin/true\"\n"),
            ":2:",
            "makes a cycle among a, b",
        ),
        (format!("[component.a]\nafter = [\"zz\"]\n{prog}"), ":2:", "names \"zz\", which is not a component"),
        (format!("[program]\npath = \"/bin/true\"\n{prog}"), ":1:", "at the top level of a group applies to no component"),
        (format!("{prog}[[channel]]\nends = [\"a.x\", \"a.x\"]\n"), ":4:", "already a channel end"),
        (format!("{prog}[[channel]]\nends = [\"a.x\"]\n"), ":4:", "exactly two ends"),
        (format!("{prog}[[channel]]\nends = [\"a\", \"a.y\"]\n"), ":4:", "is not a channel end"),
        ("restart = \"always\"\n[program]\npath = \"/bin/true\"\n".into(), ":1:", "belongs to a group"),
        (format!("[component.a]\nrestart_max = 3\n{prog}"), ":2:", "applies only to a component that is restarted"),
        (format!("[component.a]\nrestart = \"sometimes\"\n{prog}"), ":2:", "restart \"sometimes\" does not exist"),
        ("[component.a]\n[component.a.env]\nX = \"1\"\n".into(), ":1:", "has no program"),
        (format!("{prog}[group]\nmain = \"b\"\n"), ":4:", "not a component here"),
        (format!("[component.a]\nrestart = \"always\"\n{prog}[group]\nmain = \"a\"\n"), ":1:", "a is the group's main"),
    ];
    for (toml, at, what) in cases {
        let m = s.write("bad.toml", &toml);
        let o = brig(who, &["check", m.to_str().expect("utf-8")]);
        let err = stderr(&o);
        assert_eq!(code(&o), 125, "{toml}\n{err}");
        assert!(err.contains(&format!("bad.toml{at}")) && err.contains(what), "{toml}\n{err}");
    }
    // A whole group takes no policy flags, and one component needs its channel ends.
    let m = s.write("g.toml", &format!("{prog}[component.b.program]\npath = \"/bin/true\"\n[[channel]]\nends = [\"a.x\", \"b.y\"]\n"));
    let m = m.to_str().expect("utf-8");
    let o = brig(who, &["run", "-m", m, "--rw", "/tmp"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("is a group of components"), "{}", stderr(&o));
    let o = brig(who, &["run", "-m", m, "--component", "a"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("--channel x=FD"), "{}", stderr(&o));
    let o = brig(who, &["run", "-m", m, "--quiet"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("is a group of components"), "{}", stderr(&o));
    let o = brig(who, &["run", "-m", m, "--component", "c"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("has no component \"c\""), "{}", stderr(&o));
}
