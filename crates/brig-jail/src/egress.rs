//! Egress by host name (`--egress HOST:PORT`), the broker's half. Supervisor side, trusted;
//! the prison is not.
//!
//! The prison keeps its own network namespace. Its resolver (`/etc/resolv.conf` points at
//! 127.0.0.1:53, a UDP socket pid 1 bound there and handed over) is answered by [`crate::dns`]
//! with addresses of brig's own that stand for allowed names. `connect()` is brokered: to one of
//! those addresses, the broker resolves the name itself on the host, checks name and port
//! against the rules, connects from the host's network, and puts the connected socket in place
//! of the program's (`SECCOMP_ADDFD_FLAG_SETFD`) before answering 0. The address it connected
//! to is the one it checked (no DNS rebinding), and a name resolving to a loopback, private or
//! link-local address is allowed only by a rule naming it exactly. Any other address is left
//! to the kernel (`continue`): the prison's namespace has only loopback, and Landlock allows it
//! no TCP connection, so nothing is widened.
//!
//! Kept from the program's socket: non-blocking mode, close-on-exec, TCP_NODELAY and
//! SO_KEEPALIVE. Other options set before connect() are not carried over (the new socket has
//! the kernel's defaults). TCP only: a datagram socket to one of brig's addresses goes nowhere.

use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use brig_policy::egress::{allowing, Egress};
use brig_sys::notify::{self, Notif};

use crate::ask::Answer;
use crate::dns::{self, Names};
use crate::explain::{Access, Refusal};

/// Connections being made at once; more wait as EAGAIN.
const MAX_INFLIGHT: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the broker does with a `connect()`.
pub enum Verdict {
    /// Not one of brig's addresses: the kernel decides.
    Continue,
    /// Refused at once, with this errno.
    Refuse(i32, Refusal),
    /// Being connected on another thread, which answers the notification.
    Pending,
    /// Failed before anything was judged (the asker or its socket went away).
    Fail(i32),
}

/// The egress state of one prison.
#[derive(Debug)]
pub struct Resolver {
    rules: Vec<Egress>,
    names: Names,
    dns: UdpSocket,
    inflight: Arc<AtomicUsize>,
    /// Refusals found by the connecting threads, and the fd that wakes the supervisor.
    pub done: mpsc::Receiver<Refusal>,
    sender: mpsc::Sender<Refusal>,
    wake: Arc<OwnedFd>,
    pub wake_read: OwnedFd,
    any_name: bool,
}

impl Resolver {
    /// `any_name` (`--ask`): every name resolves, and a connection no rule allows is asked
    /// about instead of refused.
    pub fn new(rules: Vec<Egress>, dns: OwnedFd, any_name: bool) -> std::io::Result<Resolver> {
        let dns = UdpSocket::from(dns);
        dns.set_nonblocking(true)?;
        let (sender, done) = mpsc::channel();
        let (wake_read, wake) = brig_sys::fs::pipe()?;
        brig_sys::fdpass::set_nonblocking(wake_read.as_fd(), true)?;
        let inflight = Arc::new(AtomicUsize::new(0));
        let names = Names::default();
        let wake = Arc::new(wake);
        Ok(Resolver { rules, names, dns, inflight, done, sender, wake, wake_read, any_name })
    }

    pub fn dns_fd(&self) -> BorrowedFd<'_> {
        self.dns.as_fd()
    }

    /// Answers the queries waiting on the resolver's socket; a lookup of a name no rule
    /// allows is returned as a refusal.
    pub fn serve(&mut self, note: &mut dyn FnMut(Refusal)) {
        let mut buf = [0u8; 512];
        for _ in 0..64 {
            let Ok((n, from)) = self.dns.recv_from(&mut buf) else { return };
            let answered = dns::answer(&buf[..n], &self.rules, self.any_name, &mut self.names);
            let Some((reply, asked)) = answered else { continue };
            let _ = self.dns.send_to(&reply, from);
            if !asked.allowed && !self.any_name {
                note(Refusal {
                    syscall: "dns",
                    access: Access::Lookup,
                    target: asked.name.clone(),
                    layer: "network",
                    reason: "not an --egress name (the prison's resolver says it does not exist)"
                        .into(),
                    fix: format!("allow it with --egress {}:PORT", asked.name),
                    count: 1,
                });
            }
        }
    }

    /// Judges `connect(fd, addr)` of notification `n`; `notif` answers it from a thread. A
    /// name and port no rule allows are put to `ask` (`--ask`): yes allows them as an exact
    /// name, "always" for the rest of the run.
    pub fn connect(
        &mut self,
        n: &Notif,
        addr: SocketAddr,
        notif: &Arc<OwnedFd>,
        ask: &mut dyn FnMut(&Refusal) -> Answer,
    ) -> Verdict {
        let Some(name) = self.names.name_of(addr.ip()).map(str::to_string) else {
            return Verdict::Continue;
        };
        let port = addr.port();
        let target = format!("{name}:{port}");
        let refusal = |reason: String, fix: String| refused(&target, reason, fix);
        // The program's socket itself (the open file description, not a number it can swap).
        let sock = match notify::pidfd_open(n.pid)
            .and_then(|p| notify::pidfd_getfd(p.as_fd(), n.args[0] as u32 as i32))
        {
            Ok(s) => s,
            // The asker is gone, or its fd is: nothing was refused.
            Err(e) => return Verdict::Fail(e.raw_os_error().unwrap_or(libc::EBADF)),
        };
        // TCP only. A datagram socket is the kernel's: no route leads out of the prison (libc
        // connects one to each address of a name to sort them, sending nothing).
        let ty = brig_sys::net::getsockopt_int(sock.as_fd(), libc::SOL_SOCKET, libc::SO_TYPE);
        if ty.ok() != Some(libc::SOCK_STREAM) {
            return Verdict::Continue;
        }
        let rule = match allowing(&self.rules, &name, port).cloned() {
            Some(rule) => rule,
            None => {
                let fix = format!("allow it with --egress {name}:{port}");
                let r = refusal("not an --egress name and port".into(), fix);
                let exact = Egress { host: name.clone(), port };
                match ask(&r) {
                    Answer::No => return Verdict::Refuse(libc::EACCES, r),
                    Answer::Once => exact,
                    Answer::Always => {
                        self.rules.push(exact.clone());
                        exact
                    }
                }
            }
        };
        if self.inflight.fetch_add(1, Ordering::SeqCst) >= MAX_INFLIGHT {
            self.inflight.fetch_sub(1, Ordering::SeqCst);
            return Verdict::Refuse(
                libc::EAGAIN,
                refusal("too many connections at once".into(), String::new()),
            );
        }
        let (notif, inflight, sender, wake) =
            (notif.clone(), self.inflight.clone(), self.sender.clone(), self.wake.clone());
        let target = target.clone();
        let n = *n;
        let spawned = std::thread::Builder::new().name("brig-egress".into()).spawn(move || {
            let answer = reach(&n, &name, port, &rule, &sock, &notif);
            let err = match answer {
                Ok(()) => 0,
                Err((errno, why)) => {
                    let _ = sender.send(refused(&target, why, String::new()));
                    let _ = brig_sys::fs::write(wake.as_fd(), b"!");
                    errno
                }
            };
            if err != 0 {
                let _ = notify::respond(notif.as_fd(), n.id, -1, err);
            }
            inflight.fetch_sub(1, Ordering::SeqCst);
        });
        match spawned {
            Ok(_) => Verdict::Pending,
            Err(_) => {
                self.inflight.fetch_sub(1, Ordering::SeqCst);
                Verdict::Refuse(libc::EAGAIN, refusal("no thread to connect".into(), String::new()))
            }
        }
    }
}

/// A refused or failed connection to `target` (`name:port`).
fn refused(target: &str, reason: String, fix: String) -> Refusal {
    Refusal {
        syscall: "connect",
        access: Access::Connect,
        target: target.to_string(),
        layer: "network",
        reason,
        fix,
        count: 1,
    }
}

/// On a connecting thread: resolves `name` on the host, connects to the first address the rule
/// allows, and puts the connection in place of the program's socket, answering 0.
fn reach(
    n: &Notif,
    name: &str,
    port: u16,
    rule: &Egress,
    theirs: &OwnedFd,
    notif: &OwnedFd,
) -> Result<(), (i32, String)> {
    let addrs: Vec<SocketAddr> = (name, port)
        .to_socket_addrs()
        .map_err(|e| (libc::EHOSTUNREACH, format!("the host cannot resolve {name}: {e}")))?
        .collect();
    // A pattern never reaches a local or private address; an exact name may.
    let usable: Vec<SocketAddr> = addrs
        .iter()
        .copied()
        .filter(|a| !a.ip().is_unspecified() && (!rule.is_pattern() || public(a.ip())))
        .collect();
    if usable.is_empty() {
        let why = format!(
            "{name} resolves only to local or private addresses, which a pattern never reaches \
             (name it exactly: --egress {name}:{port})"
        );
        return Err((libc::EACCES, why));
    }
    let mut last = None;
    let stream = usable.iter().find_map(|a| match TcpStream::connect_timeout(a, CONNECT_TIMEOUT) {
        Ok(s) => Some(s),
        Err(e) => {
            last = Some(e);
            None
        }
    });
    let Some(stream) = stream else {
        let e = last.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::ECONNREFUSED));
        let why = format!("the host could not connect to {name}:{port}: {e}");
        return Err((e.raw_os_error().unwrap_or(libc::ECONNREFUSED), why));
    };
    // What the program set on its socket, kept on ours.
    let flags = brig_sys::fdpass::status_flags(theirs.as_fd()).unwrap_or(0);
    let _ = stream.set_nonblocking(flags & libc::O_NONBLOCK != 0);
    for (level, opt) in
        [(libc::IPPROTO_TCP, libc::TCP_NODELAY), (libc::SOL_SOCKET, libc::SO_KEEPALIVE)]
    {
        if let Ok(v) = brig_sys::net::getsockopt_int(theirs.as_fd(), level, opt) {
            let _ = brig_sys::net::setsockopt_int(stream.as_fd(), level, opt, v);
        }
    }
    let target = n.args[0] as u32 as i32;
    let cloexec = fd_cloexec(n.pid, target);
    if !notify::id_valid(notif.as_fd(), n.id) {
        return Ok(()); // the program is gone or was interrupted: nothing to answer
    }
    notify::replace_fd(notif.as_fd(), n.id, stream.as_fd(), target, cloexec)
        .map_err(|e| (e.raw_os_error().unwrap_or(libc::EBADF), format!("cannot hand over: {e}")))?;
    let _ = notify::respond(notif.as_fd(), n.id, 0, 0);
    Ok(())
}

/// Whether fd `fd` of process `pid` is close-on-exec (its fdinfo's flags, octal).
fn fd_cloexec(pid: u32, fd: i32) -> bool {
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| i32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|f| f & libc::O_CLOEXEC != 0)
}

/// An address of the public internet: not loopback, private, link-local, shared (CGNAT),
/// unique-local, multicast, documentation or unspecified.
pub fn public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_documentation()
                || a.is_unspecified()
                || (o[0] == 100 && o[1] & 0xc0 == 64)
                || (o[0] == 198 && o[1] & 0xfe == 18)
                || o[0] == 0)
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            if let Some(v4) = a.to_ipv4_mapped() {
                return public(IpAddr::V4(v4));
            }
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || s[0] & 0xfe00 == 0xfc00
                || s[0] & 0xffc0 == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "198.18.0.5",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
            "2001:db8::1",
        ] {
            assert!(!public(private.parse().expect("ip")), "{private}");
        }
        for p in ["1.1.1.1", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(public(p.parse().expect("ip")), "{p}");
        }
    }
}
