//! `--egress HOST:PORT`: any TCP client in the prison reaches an allowed name through brig's
//! resolver and broker (curl, Python urllib, requests and a raw non-blocking socket, node fetch, a Go
//! client, git over http, psql), against servers on the host's loopback; other names, ports
//! and addresses are refused and explained; a pattern never reaches a local address. Both uids.
//!
//! The test names (`brig-egress.test`, `a.brig-pattern.test`) resolve to 127.0.0.1 through a
//! hosts file bound over the host's /etc/hosts in a private mount namespace around brig, which
//! needs root (the suite runs as root and drops to the unprivileged uid inside).

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

const NAME: &str = "brig-egress.test";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("server on {port} did not start");
}

/// A static HTTP server on the host's loopback serving `dir`.
fn http_server(dir: &Path) -> (Server, u16) {
    let port = free_port();
    let child = Command::new("python3")
        .args(["-m", "http.server", &port.to_string(), "--bind", "127.0.0.1", "--directory"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("http.server");
    wait_for(port);
    (Server(child), port)
}

/// tests/probes/pg_server.py: logs each connection to `log`.
fn pg_server(log: &Path) -> (Server, u16) {
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probes/pg_server.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(log)
        .stdout(Stdio::piped())
        .spawn()
        .expect("pg_server");
    let mut line = String::new();
    let out = child.stdout.take().expect("stdout");
    BufReader::new(out).read_line(&mut line).expect("ready");
    (Server(child), port)
}

/// The hosts file the supervisor resolves the test names with. Written once per test binary:
/// the tests run in parallel, and rewriting it in place (truncate, then write) let one test bind
/// or read it while empty, so a test name failed to resolve now and then.
fn hosts() -> &'static Path {
    static HOSTS: OnceLock<PathBuf> = OnceLock::new();
    HOSTS.get_or_init(|| {
        let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join("egress-hosts");
        let text =
            format!("127.0.0.1 localhost\n127.0.0.1 {NAME}\n127.0.0.1 a.brig-pattern.test\n");
        let tmp = p.with_extension(std::process::id().to_string());
        std::fs::write(&tmp, text).expect("hosts");
        std::fs::rename(&tmp, &p).expect("hosts in place");
        p
    })
}

/// `brig run ARGS` as `who`, with the test names resolvable on the host.
fn egress_run(who: Who, args: &[&str]) -> Output {
    let brig = brig_bin();
    let mut a = vec![brig.to_str().expect("utf-8"), "run"];
    a.extend_from_slice(args);
    as_with_hosts(who, &a)
}

/// `cmd` as `who` in a private mount namespace where /etc/hosts has the test names.
fn as_with_hosts(who: Who, cmd: &[&str]) -> Output {
    let hosts = hosts();
    let mut script = format!("mount --bind {} /etc/hosts && exec ", hosts.display());
    if let Who::User(u) = who {
        script.push_str(&format!("setpriv --reuid={u} --regid={u} --clear-groups "));
    }
    script.push_str("\"$@\"");
    let mut a = vec!["-m", "--propagation", "private", "sh", "-c", &script, "sh"];
    a.extend_from_slice(cmd);
    Command::new("unshare")
        .args(&a)
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .expect("unshare")
}

/// Whether the test can bind its hosts file (root); says so when it cannot.
fn root() -> bool {
    let root = brig_sys::process::ids().0 == 0;
    if !root {
        eprintln!("skipped: binding a hosts file for the test names needs root");
    }
    root
}

/// One test's servers on the host's loopback: the web root over HTTP, and pg_server.py
/// counting connections.
struct Servers {
    _web: Scratch,
    _http: Server,
    hp: u16,
    log: Scratch,
    _pg: Server,
    pp: u16,
}

fn servers(who: Who) -> Servers {
    let web = web_root(who);
    let (http, hp) = http_server(&web.path);
    let log = Scratch::new(who);
    let (pg, pp) = pg_server(&log.join("log"));
    Servers { _web: web, _http: http, hp, log, _pg: pg, pp }
}

impl Servers {
    /// How many connections reached pg_server.py.
    fn connections(&self) -> usize {
        std::fs::read_to_string(self.log.join("log")).unwrap_or_default().lines().count()
    }
}

/// A Go HTTP client (pure Go resolver: it reads /etc/resolv.conf itself), built once.
fn go_client() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("egress-go");
    let bin = dir.join("get");
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::fs::create_dir_all(&dir).expect("mkdir");
        let src = "package main\nimport (\"fmt\"; \"io\"; \"net/http\"; \"os\")\n\
            func main() { r, err := http.Get(os.Args[1]); if err != nil { fmt.Println(err); os.Exit(1) }\n\
            b, _ := io.ReadAll(r.Body); fmt.Print(string(b)) }\n";
        std::fs::write(dir.join("get.go"), src).expect("write");
        let o = Command::new("go")
            .args(["build", "-o", "get", "get.go"])
            .current_dir(&dir)
            .env("CGO_ENABLED", "0")
            .env("GOCACHE", dir.join("cache"))
            .env("GOPATH", dir.join("gopath"))
            .env("HOME", &dir)
            .output()
            .expect("go build");
        assert!(o.status.success(), "go build: {}", String::from_utf8_lossy(&o.stderr));
        let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(&dir).status();
    });
    bin
}

/// A web root with index.html and a bare git repository served over dumb http.
fn web_root(who: Who) -> Scratch {
    let s = Scratch::new(who);
    s.write("index.html", "hello-egress\n");
    let git = "git init -q src && cd src && echo a > a && git add a && \
               git -c user.email=t@e -c user.name=t commit -qm one && cd .. && \
               git clone -q --bare src repo.git && git -C repo.git update-server-info";
    let o = Command::new("sh").args(["-c", git]).current_dir(&s.path).output().expect("git");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    s.own(who);
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(&s.path).status();
    s
}

#[test]
fn every_client_reaches_an_allowed_name() {
    if !root() {
        return;
    }
    let go = go_client();
    for who in everyone() {
        let sv = servers(who);
        let (hp, pp) = (sv.hp, sv.pp);
        let url = format!("http://{NAME}:{hp}/index.html");
        let (e1, e2) = (format!("{NAME}:{hp}"), format!("{NAME}:{pp}"));
        let gobin = go.parent().expect("dir").to_str().expect("utf-8");
        let base = ["--egress", &e1, "--egress", &e2, "--rx", gobin, "--"];
        let raw = format!(
            "import socket, select\n\
             s = socket.socket(); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)\n\
             s.setblocking(False)\n\
             r = s.connect_ex(('{NAME}', {pp}))\n\
             select.select([], [s], [], 10)\n\
             s.setblocking(True); s.sendall(b'hi')\n\
             print(r in (0, 115), s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0, \
             s.recv(100).decode().strip())\n"
        );
        let clone = format!(
            "git clone -q http://{NAME}:{hp}/repo.git /tmp/c && git -C /tmp/c log --format=%s"
        );
        let clients: Vec<(&str, Vec<&str>, &str)> = vec![
            ("curl", vec!["curl", "-sS", &url], "hello-egress\n"),
            (
                "python urllib",
                vec![
                    "python3",
                    "-c",
                    "import sys, urllib.request; \
                     sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())",
                    &url,
                ],
                "hello-egress\n",
            ),
            (
                "python requests",
                vec![
                    "/usr/bin/python3",
                    "-c",
                    "import sys, requests; sys.stdout.write(requests.get(sys.argv[1]).text)",
                    &url,
                ],
                "hello-egress\n",
            ),
            (
                "node fetch",
                vec![
                    "node",
                    "-e",
                    "fetch(process.argv[1]).then(r => r.text()).then(t => process.stdout.write(t))",
                    &url,
                ],
                "hello-egress\n",
            ),
            ("go net/http", vec![go.to_str().expect("utf-8"), &url], "hello-egress\n"),
            ("git over http", vec!["sh", "-c", &clone], "one\n"),
            (
                "raw non-blocking socket",
                vec!["python3", "-c", &raw],
                "True True hello from the host\n",
            ),
        ];
        for (what, cmd, want) in clients {
            let args: Vec<&str> = base.iter().copied().chain(cmd.iter().copied()).collect();
            let o = egress_run(who, &args);
            assert_eq!(stdout(&o), want, "{who:?} {what}: {}", stderr(&o));
            assert_eq!(code(&o), 0, "{who:?} {what}: {}", stderr(&o));
        }
        let conn =
            format!("host={NAME} port={pp} user=u dbname=d sslmode=disable connect_timeout=5");
        let args: Vec<&str> =
            base.iter().copied().chain(["psql", &conn, "-c", "select 1"]).collect();
        let o = egress_run(who, &args);
        assert!(
            stderr(&o).contains("brig egress reached the server"),
            "{who:?} psql: {}",
            stderr(&o)
        );
        assert_eq!(sv.connections(), 2, "raw socket and psql reached the server");
    }
}

#[test]
fn other_names_ports_and_addresses_are_refused_and_explained() {
    if !root() {
        return;
    }
    for who in everyone() {
        let sv = servers(who);
        let (hp, pp) = (sv.hp, sv.pp);
        let allowed = format!("{NAME}:{hp}");
        let talk = "import socket, sys\n\
             s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)\n\
             s.sendall(b'hi'); print(s.recv(100).decode().strip())\n";
        let pps = pp.to_string();
        // Another port of an allowed name: refused, with the flag that allows it.
        let o = egress_run(
            who,
            &["--explain", "--egress", &allowed, "--", "python3", "-c", talk, NAME, &pps],
        );
        assert_ne!(code(&o), 0);
        let want = format!(
            "brig: refused connect to {NAME}:{pp}: not an --egress name and port; \
             allow it with --egress {NAME}:{pp}"
        );
        assert!(stderr(&o).contains(&want), "{who:?}: {}", stderr(&o));
        // ... and following it works.
        let more = format!("{NAME}:{pp}");
        let args =
            ["--egress", &allowed, "--egress", &more, "--", "python3", "-c", talk, NAME, &pps];
        let o = egress_run(who, &args);
        assert_eq!(stdout(&o), "hello from the host\n", "{who:?}: {}", stderr(&o));
        // A name no rule allows does not resolve.
        let o = egress_run(
            who,
            &["--explain", "--egress", &allowed, "--", "curl", "-sS", "http://other.test/"],
        );
        assert_eq!(code(&o), 6, "{}", stderr(&o));
        assert!(stderr(&o).contains("brig: refused lookup of other.test: not an --egress name"));
        // The host's address itself is the prison's own loopback, where nothing listens and
        // Landlock allows no TCP connection.
        let o = egress_run(
            who,
            &["--egress", &allowed, "--", "python3", "-c", talk, "127.0.0.1", &pps],
        );
        assert_ne!(code(&o), 0, "{}", stdout(&o));
        assert_eq!(sv.connections(), 1, "only the allowed connection arrived");
    }
}

#[test]
fn a_pattern_never_reaches_a_local_address() {
    if !root() {
        return;
    }
    for who in everyone() {
        let sv = servers(who);
        let hp = sv.hp;
        let url = format!("http://a.brig-pattern.test:{hp}/index.html");
        let pattern = format!("*.brig-pattern.test:{hp}");
        let o = egress_run(who, &["--explain", "--egress", &pattern, "--", "curl", "-sS", &url]);
        assert_eq!(code(&o), 7, "{who:?}: {}{}", stdout(&o), stderr(&o));
        assert!(
            stderr(&o).contains("resolves only to local or private addresses"),
            "{who:?}: {}",
            stderr(&o)
        );
        let exact = format!("a.brig-pattern.test:{hp}");
        let o = egress_run(who, &["--egress", &exact, "--", "curl", "-sS", &url]);
        assert_eq!(stdout(&o), "hello-egress\n", "{who:?}: {}", stderr(&o));
    }
}

#[test]
fn bad_egress_rules_are_refused_before_the_run() {
    for who in everyone() {
        for (bad, says) in [
            ("example.org", "has no port"),
            ("1.2.3.4:80", "is an address"),
            ("*.org:443", "two labels"),
            ("localhost:80", "the prison's own loopback"),
        ] {
            let o = run(who, &["--egress", bad, "--", "true"]);
            assert_eq!(code(&o), 125, "{bad}");
            assert!(stderr(&o).contains("--egress") && stderr(&o).contains(says), "{}", stderr(&o));
        }
    }
}

#[test]
fn ask_allows_a_connection_by_name_when_asked() {
    if !root() {
        return;
    }
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probes/ask_driver.py");
    for who in everyone() {
        let sv = servers(who);
        let url = format!("http://{NAME}:{}/index.html", sv.hp);
        let brig = brig_bin();
        for (key, ok) in [("o", true), ("n+", false)] {
            let cmd = [
                "/usr/bin/python3",
                driver.to_str().expect("utf-8"),
                key,
                brig.to_str().expect("utf-8"),
                "run",
                "--ask",
                "--",
                "curl",
                "-sS",
                &url,
            ];
            let out = stdout(&as_with_hosts(who, &cmd));
            let question = format!("allow connect to {NAME}:{}?", sv.hp);
            assert!(out.contains(&question), "{who:?}: {out}");
            assert_eq!(out.contains("hello-egress"), ok, "{who:?} {key}: {out}");
        }
    }
}
