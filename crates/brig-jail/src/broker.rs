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
//!
//! Every refusal of the seccomp policy comes here too (except ENOSYS, which is how libc learns
//! to fall back): the broker judges the call with the policy's own program, notes which group
//! refused it, and answers with the same errno. A few syscalls are observed (`observe.rs`):
//! their path or address explains a refusal, then the kernel runs them as asked.
//!
//! Adding a brokered syscall: a rule in `seccomp::table::BROKERED` and a line in [`ACTS`].

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use brig_sys::fs::{self, Ident};
use brig_sys::notify::{self, Notif};
use brig_sys::seccomp::SockFilter;

use crate::ask::{Answer, Asker};
use crate::egress::{Resolver, Verdict};
use crate::explain::{self, Access, Refusal, Touched, View};
use crate::observe;
use crate::report::BrokerReport;
use crate::seccomp::{self, Policy, RET_ALLOW, RET_ERRNO, RET_USER_NOTIF};

/// A listen capability as the runner bound it: the socket's identity and its local address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub ident: Ident,
    pub addr: Vec<u8>,
}

/// What the broker judges with, made by the runner before clone.
#[derive(Debug)]
pub struct Judge {
    /// The seccomp policy and its plain program (`Policy::compile`): the kernel's program sends
    /// refusals here, and this one says which errno each gets.
    pub policy: Policy,
    pub program: Vec<SockFilter>,
    pub view: View,
    /// `--explain`: say each refusal as it happens.
    pub explain: bool,
    /// Root run with id-mapped grants (some groups may not be allowed).
    pub id_mapped: bool,
    /// `brig learn`: keep every path an observed call named.
    pub learn: bool,
    /// `--egress`: the names the broker connects the prison to.
    pub egress: Vec<brig_policy::egress::Egress>,
    /// `--ask`: brig's terminal, to ask about refused opens.
    pub asker: Option<Asker>,
}

/// How a handler answered: the call's return value, already answered (with an fd, or from a
/// thread), or left to the kernel because acting would grant nothing the kernel would not.
enum Acted {
    Value(i64),
    Answered,
    Continue,
}

type Handler = fn(&mut Broker, &Notif, &dyn Fn(&str)) -> Result<Acted, i32>;

/// The syscalls the broker acts on, never letting the kernel run them as asked because of what
/// it read. `connect` is brokered only with `--egress`.
static ACTS: &[(i64, Handler)] = &[
    (libc::SYS_listen, Broker::listen),
    (libc::SYS_memfd_create, Broker::memfd),
    (libc::SYS_connect, Broker::connect),
];

/// At most this many different paths are kept for `brig learn`.
const MAX_TOUCHED: usize = 200_000;

/// At most this many different refusals are kept (a flood of distinct paths is counted, not
/// stored).
const MAX_REFUSALS: usize = 1000;

/// The supervisor's broker for one prison.
#[derive(Debug)]
pub struct Broker {
    /// Shared with the egress threads, which answer the connects they make.
    notif: Arc<OwnedFd>,
    /// The prison's network namespace (from pid 1); sockets in it may listen freely.
    netns: Ident,
    listeners: Vec<Listener>,
    judge: Judge,
    /// What the broker did, for the report.
    pub counts: BrokerReport,
    /// Each different refusal once, with how often it happened.
    pub refusals: Vec<Refusal>,
    /// `brig learn`: what the run asked of each path.
    pub touched: BTreeMap<PathBuf, Touched>,
    /// `--egress`: the prison's resolver and the connections made for it.
    egress: Option<Resolver>,
}

impl Broker {
    /// `fds` are what pid 1 sent before the program existed: the filter's listener, an fd of
    /// the prison's network namespace and, with `--egress`, the resolver's socket. pid 1 is
    /// still trusted then.
    pub fn new(fds: Vec<OwnedFd>, listeners: Vec<Listener>, judge: Judge) -> Option<Broker> {
        let mut fds = fds.into_iter();
        let (notif, netns) = (fds.next()?, fds.next()?);
        let netns = fs::ident(netns.as_fd()).ok()?;
        // With --ask, any name resolves: a connection to it is asked about.
        let egress = match fds.next() {
            None => None,
            Some(dns) => {
                let any = judge.asker.is_some();
                Some(Resolver::new(judge.egress.clone(), dns, any).ok()?)
            }
        };
        let counts = BrokerReport::default();
        let (refusals, touched) = (Vec::new(), BTreeMap::new());
        let notif = Arc::new(notif);
        Some(Broker { notif, netns, listeners, judge, counts, refusals, touched, egress })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.notif.as_fd()
    }

    /// More fds to poll: the resolver's socket and the egress threads' wake-up pipe.
    pub fn more_fds(&self) -> Vec<BorrowedFd<'_>> {
        self.egress.iter().flat_map(|e| [e.dns_fd(), e.wake_read.as_fd()]).collect()
    }

    /// Serves what `more_fds` has ready: DNS queries, and the egress threads' refusals.
    pub fn serve(&mut self, say: &dyn Fn(&str)) {
        let Some(mut e) = self.egress.take() else { return };
        let mut found = Vec::new();
        e.serve(&mut |r| found.push(r));
        let mut buf = [0u8; 64];
        while brig_sys::fs::read(e.wake_read.as_fd(), &mut buf).is_ok_and(|n| n > 0) {}
        found.extend(e.done.try_iter());
        self.egress = Some(e);
        for r in found {
            self.note(r, say);
        }
    }

    /// Counts `r`; a new one is said at once with `--explain`, before the call goes on.
    fn note(&mut self, r: Refusal, say: &dyn Fn(&str)) {
        self.counts.refused += 1;
        let full = self.refusals.len() >= MAX_REFUSALS;
        match self.refusals.iter_mut().find(|e| e.same(&r)) {
            Some(e) => e.count = e.count.saturating_add(1),
            None if !full => {
                if self.judge.explain {
                    say(&r.line());
                }
                self.refusals.push(r)
            }
            None => {}
        }
    }

    /// Answers one pending notification; `say` writes a line on brig's stderr. Returns false
    /// when the listener is finished (every process under the filter is gone): stop polling it.
    pub fn answer(&mut self, say: &dyn Fn(&str)) -> bool {
        let n = match notify::recv(self.notif.as_fd()) {
            Ok(n) => n,
            // The asker died between poll and receive, or a signal interrupted us.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINTR)) => return true,
            Err(_) => return false,
        };
        // The policy's own program says what the call is: registers only, as the kernel saw.
        let verdict = seccomp::evaluate(&self.judge.program, n.arch, n.nr as u32, n.args, 0);
        let answer = match verdict {
            Ok(RET_USER_NOTIF) => match ACTS.iter().find(|(nr, _)| *nr == n.nr as i64) {
                Some((_, act)) => act(self, &n, say),
                None => Err(libc::ENOSYS), // the filter and this table disagree
            },
            Ok(v) if v & 0xffff_0000 == RET_ERRNO => {
                let j = &self.judge;
                self.note(explain::seccomp(&j.policy, n.nr as u32, n.args, j.id_mapped), say);
                Err((v & 0xffff) as i32)
            }
            Ok(RET_ALLOW) => Ok(Acted::Continue),
            _ => Err(libc::EPERM),
        };
        let (val, err) = match answer {
            Ok(Acted::Continue) => {
                // Observed: explain, then the kernel decides. What was read decides nothing,
                // unless the user, asked, allowed it: then the broker opened the file itself.
                if self.observe(&n, say) {
                    return true;
                }
                // ENOENT: the asker is gone.
                let _ = notify::continue_call(self.notif.as_fd(), n.id);
                return true;
            }
            Ok(Acted::Answered) => return true,
            Ok(Acted::Value(v)) => (v, 0),
            Err(e) => (-1, e),
        };
        // ENOENT: the asker is gone or was killed meanwhile; nothing to answer.
        let _ = notify::respond(self.notif.as_fd(), n.id, val, err);
        true
    }

    /// Notes what an observed call names (`brig learn`) and the refusal the view predicts;
    /// with `--ask`, asks about a refused open. True when the call was answered here.
    fn observe(&mut self, n: &Notif, say: &dyn Fn(&str)) -> bool {
        let Some(o) = observe::find(n.nr) else { return false };
        let j = &self.judge;
        if !(o.always || j.explain || j.learn || j.asker.is_some()) {
            return false;
        }
        self.counts.observed += 1;
        let (learn, touched) = (self.judge.learn, &mut self.touched);
        let mut seen = |p: &Path, a: Access| {
            if learn && (touched.len() < MAX_TOUCHED || touched.contains_key(p)) {
                touched.entry(p.to_path_buf()).or_default().add(a);
            }
        };
        let refusals = observe::judge(o, n, &self.judge.view, &mut seen);
        let answered = self.ask(n, &refusals);
        if answered != Some(true) {
            for r in refusals {
                self.note(r, say);
            }
        }
        answered.is_some()
    }

    /// `--ask`: the answers "always", as the manifest lines that would grant them.
    pub fn asked_always(&self) -> Vec<String> {
        let Some(a) = &self.judge.asker else { return Vec::new() };
        a.always
            .iter()
            .map(|(p, acc)| {
                let p = p.display();
                match acc {
                    Access::Connect => format!("[net] egress = [\"{p}\"]"),
                    Access::Write => format!("[fs] \"{p}\" = \"rw\""),
                    _ => format!("[fs] \"{p}\" = \"r\""),
                }
            })
            .collect()
    }

    /// `--ask` for a refused open of an existing file: `Some(allowed)` when answered here.
    fn ask(&mut self, n: &Notif, refusals: &[Refusal]) -> Option<bool> {
        let flags = match n.nr as i64 {
            libc::SYS_openat => n.args[2] as i32,
            libc::SYS_open => n.args[1] as i32,
            _ => return None,
        };
        let r = refusals.iter().find(|r| {
            matches!(r.access, Access::Read | Access::Write)
                && matches!(r.layer, "view" | "landlock")
        })?;
        if flags & (libc::O_PATH | libc::O_CREAT) != 0 {
            return None; // never brokered: the kernel's refusal stands
        }
        let host = self.judge.view.host_of(Path::new(&r.target))?;
        let asker = self.judge.asker.as_mut()?;
        let notif = &self.notif;
        let pending = || notify::id_valid(notif.as_fd(), n.id);
        if asker.ask(r, &host, &pending) == Answer::No {
            self.counts.asked_refused += 1;
            return None;
        }
        // Allowed: the file the user was shown, opened here and installed; or, if it cannot be
        // opened for the prison, its errno. ENOENT from either: the asker is gone meanwhile.
        self.counts.asked_allowed += 1;
        let cloexec = flags & libc::O_CLOEXEC != 0;
        let _ = match asker.open_for_prison(&host, flags) {
            Ok(fd) => {
                notify::answer_with_fd(self.notif.as_fd(), n.id, fd.as_fd(), cloexec).map(drop)
            }
            Err(e) => notify::respond(self.notif.as_fd(), n.id, -1, e),
        };
        Some(true)
    }

    /// `connect(fd, addr, len)` with `--egress`: to one of the resolver's addresses, made by
    /// the broker from the host's network (egress.rs); any other address, the kernel's call.
    fn connect(&mut self, n: &Notif, say: &dyn Fn(&str)) -> Result<Acted, i32> {
        let (Some(e), Some(addr)) = (&mut self.egress, observe::inet_addr(n)) else {
            return Ok(Acted::Continue);
        };
        let asker = &mut self.judge.asker;
        let notif = self.notif.clone();
        let pending = || notify::id_valid(notif.as_fd(), n.id);
        let mut ask = |r: &Refusal| match asker.as_mut() {
            Some(a) => a.ask(r, Path::new(&r.target), &pending),
            None => Answer::No,
        };
        match e.connect(n, addr, &self.notif, &mut ask) {
            Verdict::Continue => Ok(Acted::Continue),
            Verdict::Pending => {
                self.counts.egress += 1;
                Ok(Acted::Answered)
            }
            Verdict::Fail(errno) => Err(errno),
            Verdict::Refuse(errno, r) => {
                self.note(r, say);
                Err(errno)
            }
        }
    }

    /// `listen(fd, backlog)` for the asker: allowed on a socket of the prison's own network,
    /// and on a listen capability still listening where the runner bound it; refused (EPERM)
    /// on every other socket of the host's network.
    fn listen(&mut self, n: &Notif, _: &dyn Fn(&str)) -> Result<Acted, i32> {
        let done = self.try_listen(n);
        match done {
            Ok(()) => self.counts.listen_allowed += 1,
            Err(_) => self.counts.listen_refused += 1,
        }
        done.map(|()| Acted::Value(0))
    }

    fn try_listen(&self, n: &Notif) -> Result<(), i32> {
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
    fn memfd(&mut self, n: &Notif, _: &dyn Fn(&str)) -> Result<Acted, i32> {
        let flags = n.args[1] as u32;
        let cloexec = flags & libc::MFD_CLOEXEC != 0;
        let keep = flags & !(libc::MFD_CLOEXEC | brig_sys::fdpass::MFD_EXEC);
        let fd = brig_sys::fdpass::memfd("brig-memfd", keep | brig_sys::fdpass::MFD_NOEXEC_SEAL)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::ENOMEM))?;
        self.counts.memfd_made += 1;
        notify::answer_with_fd(self.notif.as_fd(), n.id, fd.as_fd(), cloexec)
            .map(|_| Acted::Answered)
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
