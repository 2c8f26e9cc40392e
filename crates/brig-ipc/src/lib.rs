//! brig-ipc: typed channels between a process and a less-trusted peer (a component, a device's
//! prison). The receiving side parses what the peer sends and trusts none of it: messages are
//! `SOCK_SEQPACKET` datagrams with fds beside them, capped in size and fd count before anything
//! is read, fds checked for their kind where they are taken, bulk data in sealed memfds.
//! No policy, no syscalls but its own (through brig-sys); never panics, never blocks past a
//! deadline.
//!
//! A channel starts with a hello each way (protocol name and version, both must match), then
//! carries frames: a kind (request, reply, error), an id and a message ([`Wire`]). `call` sends
//! a request and waits for the reply with its id until a deadline.
#![forbid(unsafe_code)]

pub mod wire;

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

pub use wire::{Dec, Enc, FdKind, Wire};

/// Why a channel operation failed. Each names what the peer did, so a caller can report it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the peer is gone")]
    PeerGone,
    #[error("no answer before the deadline")]
    Timeout,
    #[error("a message longer than {max} bytes")]
    TooBig { max: usize },
    #[error("a message with more than {max} fds")]
    TooManyFds { max: usize },
    #[error("an fd of kind {got:?} where {expected:?} was expected")]
    FdKind { expected: FdKind, got: FdKind },
    #[error("a malformed message: {0}")]
    Garbage(&'static str),
    #[error("a reply to request {got}, waiting for {expected}")]
    WrongId { expected: u64, got: u64 },
    #[error("the peer speaks {theirs}, not {ours}")]
    Protocol { ours: String, theirs: String },
    #[error("the peer failed: {0}")]
    Remote(String),
    #[error("{0}")]
    Io(std::io::Error),
}

/// What one channel accepts from its peer.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes in one message, header included.
    pub max_bytes: usize,
    /// Fds beside one message (at most `brig_sys::fdpass::MAX_MSG_FDS`).
    pub max_fds: usize,
}

impl Limits {
    /// 64 KiB and 4 fds per message.
    pub const DEFAULT: Limits = Limits { max_bytes: 64 << 10, max_fds: 4 };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

const MAGIC: &[u8; 8] = b"brig-ipc";
const REQUEST: u8 = 0;
const REPLY: u8 = 1;
const FAILED: u8 = 2;
/// kind (1) + id (8).
const HEADER: usize = 9;

/// One end of a channel.
#[derive(Debug)]
pub struct Channel {
    sock: OwnedFd,
    limits: Limits,
    next_id: u64,
    buf: Vec<u8>,
    /// The receive timeout set on the socket (`SO_RCVTIMEO`), set again only when it changes:
    /// a blocking receive costs one syscall where poll and receive cost two.
    timeout: Option<Duration>,
    /// The buffer frames are written into, kept between sends.
    out: Vec<u8>,
}

/// A request as received: its id (to reply to) and message.
#[derive(Debug)]
pub struct Request<M> {
    pub id: u64,
    pub msg: M,
}

impl Channel {
    /// Both ends of a new channel (a seqpacket socketpair).
    pub fn pair(limits: Limits) -> std::io::Result<(Channel, Channel)> {
        let (a, b) = brig_sys::fdpass::seqpacket_pair()?;
        Ok((Channel::new(a, limits), Channel::new(b, limits)))
    }

    /// A channel over `sock`, a `SOCK_SEQPACKET` unix socket (handed over as a capability).
    /// Messages above the socket's default size (about 200 KiB) need a larger send buffer,
    /// which is asked for here; the kernel caps it at `net.core.wmem_max`, and a send that
    /// still does not fit fails with `Io` (EMSGSIZE).
    pub fn new(sock: OwnedFd, limits: Limits) -> Channel {
        let max_fds = limits.max_fds.min(brig_sys::fdpass::MAX_MSG_FDS);
        let limits = Limits { max_fds, ..limits };
        if limits.max_bytes > Limits::DEFAULT.max_bytes {
            let want = i32::try_from(limits.max_bytes + 4096).unwrap_or(i32::MAX);
            let _ = brig_sys::net::setsockopt_int(
                sock.as_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUF,
                want,
            );
        }
        Channel {
            sock,
            limits,
            next_id: 1,
            buf: vec![0; limits.max_bytes],
            timeout: None,
            out: Vec::new(),
        }
    }

    /// The socket, for another process to hold (the channel's state is not carried over).
    pub fn into_fd(self) -> OwnedFd {
        self.sock
    }

    /// The socket, for polling.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }

    /// Says our protocol and checks the peer's: the same name and version, or `Protocol`.
    pub fn hello(&mut self, protocol: &str, version: u16, wait: Duration) -> Result<(), Error> {
        let ours = format!("{protocol}/{version}");
        let mut e = Enc::default();
        e.bytes.extend_from_slice(MAGIC);
        e.str(&ours);
        self.send_raw(&e)?;
        let (bytes, fds) = self.recv_raw(wait)?;
        let mut d = Dec::new(&self.buf[..bytes], fds);
        let magic = d.u64().map_err(|_| Error::Garbage("a hello"))?;
        let theirs = d.str(256)?.to_string();
        d.finish()?;
        if magic.to_le_bytes() != *MAGIC || theirs != ours {
            return Err(Error::Protocol { ours, theirs });
        }
        Ok(())
    }

    /// Sends request `msg`, returns its id.
    pub fn request<M: Wire>(&mut self, msg: M) -> Result<u64, Error> {
        let id = self.next_id;
        self.next_id += 1;
        self.frame(REQUEST, id, msg)?;
        Ok(id)
    }

    /// Replies to request `id`: `Ok` with a message, `Err` with a reason.
    pub fn reply<M: Wire>(&mut self, id: u64, answer: Result<M, String>) -> Result<(), Error> {
        match answer {
            Ok(m) => self.frame(REPLY, id, m),
            Err(why) => self.frame(FAILED, id, why),
        }
    }

    /// Sends a request and waits for its reply until `wait` has passed.
    pub fn call<Q: Wire, R: Wire>(&mut self, q: Q, wait: Duration) -> Result<R, Error> {
        let id = self.request(q)?;
        self.answer(id, wait)
    }

    /// Waits until `wait` has passed for the reply to request `id`, which must be the next
    /// message (replies come in the order of the requests: several may be in flight).
    pub fn answer<R: Wire>(&mut self, id: u64, wait: Duration) -> Result<R, Error> {
        let (bytes, fds) = self.recv_raw(wait)?;
        let mut d = Dec::new(&self.buf[..bytes], fds);
        let (kind, got) = (d.u8()?, d.u64()?);
        if got != id {
            return Err(Error::WrongId { expected: id, got });
        }
        match kind {
            REPLY => {
                let r = R::decode(&mut d)?;
                d.finish()?;
                Ok(r)
            }
            FAILED => Err(Error::Remote(String::decode(&mut d)?)),
            _ => Err(Error::Garbage("a reply of unknown kind")),
        }
    }

    /// Receives the next request, waiting until `wait` has passed.
    pub fn next_request<M: Wire>(&mut self, wait: Duration) -> Result<Request<M>, Error> {
        let (bytes, fds) = self.recv_raw(wait)?;
        let mut d = Dec::new(&self.buf[..bytes], fds);
        if d.u8()? != REQUEST {
            return Err(Error::Garbage("not a request"));
        }
        let id = d.u64()?;
        let msg = M::decode(&mut d)?;
        d.finish()?;
        Ok(Request { id, msg })
    }

    fn frame<M: Wire>(&mut self, kind: u8, id: u64, msg: M) -> Result<(), Error> {
        let mut e = Enc { bytes: std::mem::take(&mut self.out), fds: Vec::new() };
        e.bytes.clear();
        e.u8(kind);
        e.u64(id);
        msg.encode(&mut e);
        let sent = self.send_raw(&e);
        self.out = e.bytes;
        sent
    }

    fn send_raw(&self, e: &Enc) -> Result<(), Error> {
        if e.bytes.len() > self.limits.max_bytes {
            return Err(Error::TooBig { max: self.limits.max_bytes });
        }
        if e.fds.len() > self.limits.max_fds {
            return Err(Error::TooManyFds { max: self.limits.max_fds });
        }
        let fds: Vec<_> = e.fds.iter().map(|f| f.as_fd()).collect();
        brig_sys::fdpass::send_msg(self.sock.as_fd(), &e.bytes, &fds).map_err(|err| {
            match err.raw_os_error() {
                Some(libc::EPIPE | libc::ECONNRESET) => Error::PeerGone,
                _ => Error::Io(err),
            }
        })
    }

    /// One message into `self.buf`, waiting at most `wait`: its length and fds, checked
    /// against the limits.
    fn recv_raw(&mut self, wait: Duration) -> Result<(usize, Vec<OwnedFd>), Error> {
        let deadline = Instant::now() + wait;
        let mut first = true;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Timeout);
            }
            // The same wait as last time (the common case) needs no new timeout; a retry
            // after EINTR waits only for what is left.
            if !first || self.timeout != Some(wait) {
                let set = if first { wait } else { left };
                brig_sys::net::set_recv_timeout(self.sock.as_fd(), set).map_err(Error::Io)?;
                self.timeout = first.then_some(wait);
            }
            first = false;
            let r = match brig_sys::fdpass::recv_msg(self.sock.as_fd(), &mut self.buf, false) {
                Ok(r) => r,
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Err(Error::Timeout),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => {
                    return Err(Error::PeerGone)
                }
                Err(e) => return Err(Error::Io(e)),
            };
            if r.cut {
                return Err(Error::TooBig { max: self.limits.max_bytes });
            }
            if r.fds_cut || r.fds.len() > self.limits.max_fds {
                return Err(Error::TooManyFds { max: self.limits.max_fds });
            }
            if r.len == 0 && r.fds.is_empty() {
                return Err(Error::PeerGone);
            }
            if r.len < HEADER.min(MAGIC.len()) {
                return Err(Error::Garbage("a message shorter than its header"));
            }
            return Ok((r.len, r.fds));
        }
    }
}
