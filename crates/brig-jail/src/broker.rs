//! The broker: the supervisor's answers to the syscalls the filter sends to it (seccomp user
//! notification; the list is `seccomp::brokered()`). Trusted side; the asking process is not.
//!
//! `memfd_create` is brokered so that no memfd is ever executable: the broker makes it with
//! MFD_NOEXEC_SEAL and installs it in the asker (`SECCOMP_IOCTL_NOTIF_ADDFD`).
//!
//! `listen` is brokered because a socket of the host's network (a `listen` or
//! `connect` capability, or a connection accepted from one) must never become a listener
//! somewhere the plan did not name. After `connect(AF_UNSPEC)` or `shutdown` such a socket
//! loses its address, and `listen` would auto-bind it on every host interface, a step neither
//! Landlock nor the network namespace sees. The broker takes the socket itself (`pidfd_getfd`:
//! the same open file description, not a number the program could swap), judges it, and
//! performs `listen` on it: the call is never continued to the kernel after a check.

use std::os::fd::{AsFd, OwnedFd};

use brig_sys::fs::{self, Ident};
use brig_sys::notify::{self, Notif};

use crate::report::BrokerReport;

/// A listen capability as the runner bound it: the socket's identity and its local address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub ident: Ident,
    pub addr: Vec<u8>,
}

/// The supervisor's broker for one prison.
#[derive(Debug)]
pub struct Broker {
    notif: OwnedFd,
    /// The prison's network namespace (from pid 1); sockets in it may listen freely.
    netns: Ident,
    listeners: Vec<Listener>,
    /// What the broker did, for the report.
    pub counts: BrokerReport,
}

impl Broker {
    /// `fds` are what pid 1 sent before the program existed: the filter's listener and an fd of
    /// the prison's network namespace. pid 1 is still trusted then.
    pub fn new(fds: Vec<OwnedFd>, listeners: Vec<Listener>) -> Option<Broker> {
        let [notif, netns]: [OwnedFd; 2] = fds.try_into().ok()?;
        let netns = fs::ident(netns.as_fd()).ok()?;
        Some(Broker { notif, netns, listeners, counts: BrokerReport::default() })
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.notif.as_fd()
    }

    /// Answers one pending notification. Returns false when the listener is finished (every
    /// process under the filter is gone): stop polling it.
    pub fn answer(&mut self) -> bool {
        // Safe against a hostile asker: everything below works on kernel objects the broker
        // took itself (a pidfd, then a duplicate of the socket), never on memory the program
        // could change, and every failure is a refusal.
        let n = match notify::recv(self.notif.as_fd()) {
            Ok(n) => n,
            // The asker died between poll and receive, or a signal interrupted us.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINTR)) => return true,
            Err(_) => return false,
        };
        let answer = match n.nr as libc::c_long {
            libc::SYS_listen => {
                let a = self.listen(&n);
                match a {
                    Ok(()) => self.counts.listen_allowed += 1,
                    Err(_) => self.counts.listen_refused += 1,
                }
                a
            }
            libc::SYS_memfd_create => match self.memfd(&n) {
                // Answered with the new fd already.
                Ok(()) => return true,
                Err(e) => Err(e),
            },
            _ => Err(libc::ENOSYS), // not a brokered call: the filter and this table disagree
        };
        let (val, err) = match answer {
            Ok(()) => (0, 0),
            Err(e) => (-1, e),
        };
        // ENOENT: the asker is gone or was killed meanwhile; nothing to answer.
        let _ = notify::respond(self.notif.as_fd(), n.id, val, err);
        true
    }

    /// `listen(fd, backlog)` for the asker: allowed on a socket of the prison's own network,
    /// and on a listen capability still listening where the runner bound it; refused (EPERM)
    /// on every other socket of the host's network.
    fn listen(&self, n: &Notif) -> Result<(), i32> {
        let errno = |e: std::io::Error| e.raw_os_error().unwrap_or(libc::EPERM);
        let pidfd = notify::pidfd_open(n.pid).map_err(errno)?;
        // The pidfd pins the process only if the notification is still pending now.
        if !notify::id_valid(self.notif.as_fd(), n.id) {
            return Err(libc::ESRCH);
        }
        let sock = notify::pidfd_getfd(pidfd.as_fd(), n.args[0] as u32 as i32).map_err(errno)?;
        let backlog = n.args[1] as u32 as i32;
        if !self.may_listen(&sock)? {
            return Err(libc::EPERM);
        }
        if !notify::id_valid(self.notif.as_fd(), n.id) {
            return Err(libc::ESRCH);
        }
        brig_sys::net::listen(sock.as_fd(), backlog).map_err(errno)
    }

    /// `memfd_create(name, flags)` for the asker, made with MFD_NOEXEC_SEAL (the filter
    /// refuses MFD_EXEC and lets MFD_NOEXEC_SEAL through itself). The name stays in the
    /// program's memory, unread: every brokered memfd is called `brig-memfd`. The flags are
    /// register values, not memory the program could change meanwhile.
    fn memfd(&mut self, n: &Notif) -> Result<(), i32> {
        let flags = n.args[1] as u32;
        let cloexec = flags & libc::MFD_CLOEXEC != 0;
        let keep = flags & !(libc::MFD_CLOEXEC | brig_sys::fdpass::MFD_EXEC);
        let fd = brig_sys::fdpass::memfd("brig-memfd", keep | brig_sys::fdpass::MFD_NOEXEC_SEAL)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::ENOMEM))?;
        self.counts.memfd_made += 1;
        notify::answer_with_fd(self.notif.as_fd(), n.id, fd.as_fd(), cloexec)
            .map(drop)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EBADF))
    }

    fn may_listen(&self, sock: &OwnedFd) -> Result<bool, i32> {
        let ident = fs::ident(sock.as_fd()).map_err(|_| libc::EBADF)?;
        if let Some(l) = self.listeners.iter().find(|l| l.ident == ident) {
            // A listen capability may only change its backlog: still listening, where it was
            // bound. Once reset (connect(AF_UNSPEC), shutdown) it has given up its port, and
            // listen would bind a new one (a `:0` capability moves) on the host's network.
            let listening = brig_sys::net::is_listening(sock.as_fd()).unwrap_or(false);
            let addr = brig_sys::net::local_addr(sock.as_fd());
            return Ok(listening && addr.is_ok_and(|a| a == l.addr));
        }
        match brig_sys::net::socket_netns(sock.as_fd()) {
            Ok(ns) => Ok(fs::ident(ns.as_fd()).is_ok_and(|ns| ns == self.netns)),
            Err(e) if e.raw_os_error() == Some(libc::ENOTTY) => Err(libc::ENOTSOCK),
            Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => Err(libc::ENOTSOCK),
            // EPERM: the supervisor does not own the socket's namespace, so it is not the
            // prison's. Any other error is a refusal too.
            Err(_) => Ok(false),
        }
    }
}
