//! Test probe: takes every capability it was given, optionally enters capability mode, then
//! tries each STEP with the raw syscall and prints `STEP => ok[ DETAIL]` or `STEP => errno N`.
//! The integration tests (crates/brig/tests/capabilities.rs) drive it inside real prisons.
//!
//! ```text
//! capprobe [--enter] STEP...
//!   openat:CAP:PATH:r|w   openat(CAP, PATH)          open:PATH:r|w   open(PATH)
//!   reopen:CAP            open("/proc/self/fd/N", O_WRONLY) for CAP's fd N
//!   read:CAP   write:CAP  socket   socketpair   spawn   kill:PID
//!   connect:CAP:IP:PORT   sendto:CAP:IP:PORT      talk:CAP (send "ping\n", read the reply)
//!   fastopen:CAP:IP:PORT  shutdown(CAP) then sendto(CAP, MSG_FASTOPEN) to IP:PORT
//!   dgrampair             socketpair(AF_UNIX, SOCK_DGRAM)
//!   chmod:CAP:PATH        fchmodat(CAP, PATH, 0600)
//!   listen:CAP            listen(CAP, 7); prints the local address
//!   relisten:CAP          connect(CAP, AF_UNSPEC), then listen(CAP, 7); prints the address
//!   innerlisten           a new TCP socket, listen (auto-bind in the prison's network)
//!   sockopt:CAP:LEVEL:NAME  setsockopt(CAP, LEVEL, NAME, 1) (int options)
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use brig_caps::Caps;
use rustix::fs::{Mode, OFlags, CWD};
use rustix::net::{AddressFamily, SocketType};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let enter = args.first().is_some_and(|a| a == "--enter");
    if enter {
        args.remove(0);
    }
    let mut caps = Caps::load().unwrap_or_else(|e| {
        println!("load => {e}");
        std::process::exit(1)
    });
    let list: Vec<_> = caps.description().caps.clone();
    let mut fds: BTreeMap<String, OwnedFd> = BTreeMap::new();
    for c in list.iter().filter(|c| c.fd >= 3) {
        fds.insert(c.name.clone(), caps.take(&c.name, c.kind).expect("take"));
    }
    if enter {
        match caps.enter_capability_mode() {
            Ok(()) => println!("enter => ok"),
            Err(e) => {
                println!("enter => {e}");
                std::process::exit(1)
            }
        }
    }
    for step in &args {
        let r = run(step, &fds);
        match r {
            Ok(detail) => println!("{step} => ok{detail}"),
            Err(e) => println!("{step} => errno {}", e.raw_os_error().unwrap_or(-1)),
        }
    }
}

fn flags(m: &str) -> OFlags {
    if m == "w" {
        OFlags::WRONLY
    } else {
        OFlags::RDONLY
    }
}

/// MSG_FASTOPEN (linux/socket.h).
const MSG_FASTOPEN: u32 = 0x2000_0000;

/// `sendto(fd, "x", flags, to)`.
fn send_to(
    fd: std::os::fd::BorrowedFd<'_>,
    flags: u32,
    to: &std::net::SocketAddr,
) -> std::io::Result<String> {
    let flags = rustix::net::SendFlags::from_bits_retain(flags);
    Ok(rustix::net::sendto(fd, b"x", flags, to).map(|n| format!(" {n}"))?)
}

/// `listen(fd, 7)`, then the address it listens on.
fn listen(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<String> {
    rustix::net::listen(fd, 7)?;
    let a = rustix::net::getsockname(fd)?;
    let a = std::net::SocketAddr::try_from(a).map_err(|_| std::io::Error::other("not inet"))?;
    Ok(format!(" {a}"))
}

/// `socketpair(AF_UNIX, kind)`.
fn pair(kind: SocketType) -> std::io::Result<String> {
    let flags = rustix::net::SocketFlags::empty();
    Ok(rustix::net::socketpair(AddressFamily::UNIX, kind, flags, None).map(ok)?)
}

fn addr(ip: &str, port: &str) -> std::net::SocketAddr {
    format!("{ip}:{port}").parse().expect("IP:PORT")
}

fn ok<T>(_: T) -> String {
    String::new()
}

fn run(step: &str, fds: &BTreeMap<String, OwnedFd>) -> std::io::Result<String> {
    let p: Vec<&str> = step.split(':').collect();
    let cap = |i: usize| fds.get(p[i]).expect("no such capability").as_fd();
    raw(&p, cap)
}

fn raw<'a>(
    p: &[&str],
    cap: impl Fn(usize) -> std::os::fd::BorrowedFd<'a>,
) -> std::io::Result<String> {
    match p[0] {
        "openat" => Ok(rustix::fs::openat(cap(1), p[2], flags(p[3]), Mode::empty()).map(ok)?),
        "open" => Ok(rustix::fs::openat(CWD, p[1], flags(p[2]), Mode::empty()).map(ok)?),
        "reopen" => {
            let path = format!("/proc/self/fd/{}", cap(1).as_raw_fd());
            Ok(rustix::fs::openat(CWD, path.as_str(), OFlags::WRONLY, Mode::empty()).map(ok)?)
        }
        "read" => {
            let mut b = [0u8; 64];
            let n = rustix::io::read(cap(1), &mut b).map_err(std::io::Error::from)?;
            Ok(format!(" {}", String::from_utf8_lossy(&b[..n]).trim()))
        }
        "write" => Ok(rustix::io::write(cap(1), b"x").map(|n| format!(" {n}"))?),
        "socket" => Ok(rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None).map(ok)?),
        "socketpair" => pair(SocketType::STREAM),
        "connect" => Ok(rustix::net::connect(cap(1), &addr(p[2], p[3])).map(ok)?),
        "sendto" => send_to(cap(1), 0, &addr(p[2], p[3])),
        "fastopen" => {
            let _ = rustix::net::shutdown(cap(1), rustix::net::Shutdown::Read);
            send_to(cap(1), MSG_FASTOPEN, &addr(p[2], p[3]))
        }
        "dgrampair" => pair(SocketType::DGRAM),
        "listen" => listen(cap(1)),
        "relisten" => {
            rustix::net::connect_unspec(cap(1))?;
            listen(cap(1))
        }
        "innerlisten" => {
            let s = rustix::net::socket(AddressFamily::INET, SocketType::STREAM, None)?;
            listen(s.as_fd())
        }
        "sockopt" => {
            let num = |s: &str| s.parse::<i32>().expect("number");
            brig_sys::net::setsockopt_int(cap(1), num(p[2]), num(p[3]), 1).map(ok)
        }
        "chmod" => Ok(rustix::fs::chmodat(
            cap(1),
            p[2],
            Mode::from_raw_mode(0o600),
            rustix::fs::AtFlags::empty(),
        )
        .map(ok)?),
        "talk" => {
            let mut s = std::net::TcpStream::from(cap(1).try_clone_to_owned()?);
            s.write_all(b"ping\n")?;
            let mut b = [0u8; 64];
            let n = s.read(&mut b)?;
            Ok(format!(" {}", String::from_utf8_lossy(&b[..n]).trim()))
        }
        "kill" => {
            let pid = rustix::process::Pid::from_raw(p[1].parse().expect("pid")).expect("pid");
            Ok(rustix::process::test_kill_process(pid).map(ok)?)
        }
        "spawn" => std::process::Command::new("/bin/true").status().map(|s| format!(" {s}")),
        other => panic!("unknown step {other}"),
    }
}
