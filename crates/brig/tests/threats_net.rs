//! Network and IPC (THREATS.md): host loopback services (TCP, UDP, MPTCP), abstract and pathname
//! unix sockets, SysV IPC, raw sockets. Controls switch the layers off by simulating a kernel
//! without them (the `knockout` helper makes clone(CLONE_NEWNET/NEWIPC) and Landlock fail, and
//! brig runs with --best-effort).

mod common;
use common::*;
use std::time::Duration;

const NO_NETNS: &str = "272&0x40000000=22";
const NO_IPCNS: &str = "56&0x08000000=22";
const NO_LANDLOCK: &str = "444=38";

const CONNECT: &str = r#"
import socket, sys
kind, port = sys.argv[1], int(sys.argv[2])
try:
    if kind == "tcp":
        socket.create_connection(("127.0.0.1", port), timeout=2).sendall(b"x"); print("ESCAPED tcp")
    elif kind == "mptcp":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262); s.settimeout(2)
        s.connect(("127.0.0.1", port)); s.sendall(b"x"); print("ESCAPED mptcp")
    elif kind == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"ping", ("127.0.0.1", port))
        s.settimeout(2); s.recv(10); print("ESCAPED udp")
    elif kind == "abstract":
        s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect("\0" + sys.argv[3]); s.sendall(b"x"); print("ESCAPED abstract")
    elif kind == "path":
        s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[3]); s.sendall(b"x"); print("ESCAPED path")
except OSError as e:
    print("blocked", e)
"#;

/// A host server on loopback that answers once; returns its port and a handle to join.
fn serve(kind: &'static str, name: String) -> (u16, std::thread::JoinHandle<bool>) {
    use std::io::Read;
    match kind {
        "udp" => {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
            let port = s.local_addr().expect("addr").port();
            s.set_read_timeout(Some(Duration::from_secs(8))).expect("timeout");
            (
                port,
                std::thread::spawn(move || {
                    let mut b = [0u8; 16];
                    match s.recv_from(&mut b) {
                        Ok((_, from)) => s.send_to(b"pong", from).is_ok(),
                        Err(_) => false,
                    }
                }),
            )
        }
        "abstract" | "path" => {
            use std::os::linux::net::SocketAddrExt;
            let l = if kind == "abstract" {
                let a = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                    .expect("abstract");
                std::os::unix::net::UnixListener::bind_addr(&a).expect("bind")
            } else {
                let l = std::os::unix::net::UnixListener::bind(&name).expect("bind");
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&name, std::fs::Permissions::from_mode(0o777))
                    .expect("chmod");
                l
            };
            l.set_nonblocking(true).expect("nb");
            (
                0,
                std::thread::spawn(move || {
                    for _ in 0..80 {
                        if let Ok((mut c, _)) = l.accept() {
                            let mut b = [0u8; 1];
                            return c.read(&mut b).is_ok();
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    false
                }),
            )
        }
        _ => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp");
            let port = l.local_addr().expect("addr").port();
            l.set_nonblocking(true).expect("nb");
            (
                port,
                std::thread::spawn(move || {
                    for _ in 0..80 {
                        if l.accept().is_ok() {
                            return true;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    false
                }),
            )
        }
    }
}

fn attempt(
    who: Who,
    kind: &'static str,
    knock: Option<&[&str]>,
    grants: &[&str],
    name: &str,
) -> (std::process::Output, bool) {
    let (port, h) = serve(kind, name.to_string());
    let port = port.to_string();
    let mut args: Vec<&str> = grants.to_vec();
    args.extend(["--", "python3", "-c", CONNECT, kind, &port, name]);
    let o = match knock {
        Some(rules) => run_knocked_out(who, rules, &args),
        None => run(who, &args),
    };
    // unblock the server thread if nothing came
    if kind == "tcp" || kind == "mptcp" {
        let _ = std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap_or(0)));
    }
    let hit = h.join().unwrap_or(false);
    (o, hit)
}

#[test]
fn host_loopback_tcp_udp_mptcp_unreachable() {
    for who in everyone() {
        for kind in ["tcp", "udp", "mptcp"] {
            let (o, _) = attempt(who, kind, None, &[], "");
            assert_blocked(&o, kind);
            // MPTCP is also refused by the seccomp socket rule: loosen it too for the control.
            let loosen: &[&str] =
                if kind == "mptcp" { &["--allow-syscalls", "@socket-families"] } else { &[] };
            let (o, _) = attempt(who, kind, Some(&[NO_NETNS, NO_LANDLOCK]), loosen, "");
            assert_escaped(&o, &format!("control {kind}: no network namespace, no landlock"));
        }
    }
}

#[test]
fn host_abstract_unix_sockets_unreachable() {
    for who in everyone() {
        let name = format!("brig-test-{}-{who:?}", std::process::id());
        let (o, hit) = attempt(who, "abstract", None, &[], &name);
        assert_blocked(&o, "abstract socket");
        assert!(!hit);
        let (o, _) = attempt(who, "abstract", Some(&[NO_NETNS, NO_LANDLOCK]), &[], &name);
        assert_escaped(&o, "control: abstract socket without netns and landlock scope");
    }
}

#[test]
fn pathname_unix_sockets_outside_the_view_unreachable() {
    for who in everyone() {
        let s = Scratch::new(who);
        let sock = s.sub("daemon.sock");
        let (o, hit) = attempt(who, "path", None, &[], &sock);
        assert_blocked(&o, "pathname socket");
        assert!(!hit);
        let _ = std::fs::remove_file(&sock);
        // Control: a granted directory with a socket in it grants the socket (`brig check` warns).
        let (o, _) = attempt(who, "path", None, &["--ro", s.s()], &sock);
        assert_escaped(&o, "control: socket's directory granted");
    }
}

const SYSV: &str = r#"
import ctypes, sys
l = ctypes.CDLL(None, use_errno=True)
key = int(sys.argv[1])
if l.shmget(key, 0, 0) >= 0: print("ESCAPED shm")
if l.msgget(key, 0) >= 0: print("ESCAPED msg")
if l.semget(key, 0, 0) >= 0: print("ESCAPED sem")
"#;

#[test]
fn host_sysv_ipc_unreachable() {
    for who in everyone() {
        let key = (0x6272_0000 + std::process::id() % 0xffff).to_string();
        let make = format!(
            "import ctypes;l=ctypes.CDLL(None);k={key};print(l.shmget(k,4096,0o1666),l.msgget(k,0o1666),l.semget(k,1,0o1666))"
        );
        let ids = std::process::Command::new("/usr/bin/python3")
            .args(["-c", &make])
            .output()
            .expect("make ipc");
        let ids = stdout(&ids);
        let o = run(who, &["--", "python3", "-c", SYSV, &key]);
        assert_blocked(&o, "sysv ipc");
        let o = run_knocked_out(who, &[NO_IPCNS], &["--", "python3", "-c", SYSV, &key]);
        assert_escaped(&o, "control: no ipc namespace");
        let v: Vec<&str> = ids.split_whitespace().collect();
        if v.len() == 3 {
            let _ = std::process::Command::new("ipcrm")
                .args(["-m", v[0], "-q", v[1], "-s", v[2]])
                .status();
        }
    }
}

#[test]
fn raw_and_packet_sockets_refused() {
    let probe = "import socket\nfor a in ((socket.AF_INET, socket.SOCK_RAW, 1), (socket.AF_PACKET, socket.SOCK_RAW, 0)):\n  try:\n    socket.socket(*a); print('ESCAPED', a)\n  except OSError: pass\n";
    for who in everyone() {
        assert_blocked(&run(who, &["--", "python3", "-c", probe]), "raw sockets");
    }
    // Control: bare root opens both.
    if brig_sys::process::ids().0 == 0 {
        let o = std::process::Command::new("/usr/bin/python3")
            .args(["-c", probe])
            .output()
            .expect("bare");
        assert_escaped(&o, "control: bare root");
    }
}

#[test]
fn only_loopback_exists_inside() {
    let probe = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '";
    for who in everyone() {
        let o = run(who, &["--", "/bin/sh", "-c", probe]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(stdout(&o).trim(), "lo", "{who:?}");
    }
}
