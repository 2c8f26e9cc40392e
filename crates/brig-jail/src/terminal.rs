//! The prison's own terminal. When brig's stdio is a terminal (or `--pty always`), pid 1 makes a
//! pseudo-terminal in the prison's private devpts instance, puts its slave where the caller's
//! terminal was and sends the master here; the supervisor relays between it and the user's
//! terminal, which it holds in raw mode and restores when the relay is dropped. The program never
//! holds the caller's terminal, so it cannot change its settings or push input into it.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use brig_policy::Pty;
use brig_sys::fs;
use brig_sys::process::{self, SigSet};
use brig_sys::tty::{self, Termios, Winsize};

use crate::screen::Screen;

/// What the runner found on its stdio, decided before clone and handed to pid 1.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// Which of fds 0, 1, 2 the slave replaces (those that are terminals; all three with
    /// `--pty always`).
    pub fds: [bool; 3],
    /// Which of them are terminals.
    pub ttys: [bool; 3],
    /// The user's terminal settings and size, copied to the slave before the program starts.
    pub termios: Option<Termios>,
    pub size: Option<Winsize>,
}

/// brig's stdio, borrowed for a call (never owned: brig does not close them).
pub(crate) fn with_stdio<R>(n: usize, f: impl FnOnce(BorrowedFd<'_>) -> R) -> R {
    match n {
        0 => f(io::stdin().as_fd()),
        1 => f(io::stdout().as_fd()),
        _ => f(io::stderr().as_fd()),
    }
}

/// Which of brig's stdio fds are terminals.
pub fn ttys() -> [bool; 3] {
    [0, 1, 2].map(|n| with_stdio(n, tty::is_tty))
}

/// Decides whether the program gets a terminal of its own, given which stdio fds are terminals.
pub fn setup(mode: Pty, ttys: [bool; 3]) -> Option<Setup> {
    let fds = match mode {
        Pty::Never => return None,
        Pty::Auto if !ttys.contains(&true) => return None,
        Pty::Auto => ttys,
        Pty::Always => [true; 3],
    };
    let user = ttys.iter().position(|&t| t);
    let termios = user.and_then(|n| with_stdio(n, |fd| Termios::get(fd).ok()));
    let size = user.and_then(|n| with_stdio(n, |fd| tty::winsize(fd).ok()));
    Some(Setup { fds, ttys, termios, size })
}

/// True if one of brig's stdio terminals (as found at start) has hung up.
pub fn hung_up(ttys: [bool; 3]) -> bool {
    (0..3).any(|n| ttys[n] && with_stdio(n, tty::hung_up))
}

/// Input waiting for room in the pty: at most this much is buffered, then stdin is not read.
const PENDING_MAX: usize = 64 << 10;
/// Output waiting for the user's side: at most this much, then the master is not read (the
/// program waits, as it would on a slow terminal).
const OUT_MAX: usize = 256 << 10;
/// The most written at once to a shared (blocking) description after it polls writable: a pipe
/// or socket that polls writable takes this much without blocking. Terminals and pipes are
/// written through a non-blocking description of brig's own instead (see [`own_description`]).
const OUT_CHUNK: usize = 4096;
/// After the prison ended, how long its last output may take to reach the user.
const FINISH: Duration = Duration::from_secs(1);

/// The supervisor's end: the master, the user's saved terminal settings, data in flight.
#[derive(Debug)]
pub struct Relay {
    master: OwnedFd,
    /// The user's terminal for window size.
    user: Option<usize>,
    /// What is relayed into the pty, through brig's own description of it (see
    /// [`own_description`]): stdin if the pty replaced it, else the user's terminal (what the
    /// program reads from /dev/tty in `seq 9 | brig run -- less`); none when brig is in the
    /// background of that terminal, and none once it ended.
    input: Option<OwnedFd>,
    /// The input is a terminal: its end means a hang-up. (A pipe's end sends one end-of-file.)
    input_is_tty: bool,
    /// brig's own description of the output side: (fd, non-blocking).
    out_fd: Option<(OwnedFd, bool)>,
    pending: Vec<u8>,
    /// Filtered output not yet written: brig never blocks on the user's side, so wall time,
    /// signals and the broker go on while a reader is slow or stopped.
    out_buf: Vec<u8>,
    /// How much of `out_buf` is already written.
    out_at: usize,
    screen: Screen,
    /// The user's terminal (its stdio number) and its settings before raw mode, restored on
    /// drop.
    saved: Option<(usize, Termios)>,
    /// The signal mask before SIGTTOU and SIGTTIN were blocked, restored on drop.
    old_mask: Option<SigSet>,
    out_failed: bool,
    master_done: bool,
}

/// What happened on the relay's fds.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Nothing,
    /// The user's terminal hung up.
    HungUp,
}

/// The relay's fds and the events to poll for on each.
#[derive(Debug, Default)]
pub struct Interest<'a> {
    pub master: Option<i16>,
    pub input: Option<(BorrowedFd<'a>, i16)>,
    pub out: Option<(BorrowedFd<'a>, i16)>,
}

/// A file description of brig's own for stdio `n`, non-blocking, when it is a terminal or a
/// pipe (which have no offset to share): a full or stopped user side then never blocks the
/// supervisor, and the shared description stays as the caller's shell has it. Anything else
/// (a file, which never blocks; a socket, which cannot be reopened) gets a duplicate of the
/// shared one, written in chunks after it polls writable. (fd, non-blocking)
fn own_description(n: usize, write: bool) -> Option<(OwnedFd, bool)> {
    use std::os::unix::fs::FileTypeExt;
    let link = format!("/proc/self/fd/{n}");
    let t = std::fs::metadata(&link).ok()?.file_type();
    if (t.is_char_device() && with_stdio(n, tty::is_tty)) || t.is_fifo() {
        let access = if write { libc::O_WRONLY } else { libc::O_RDONLY };
        let flags = access | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
        if let Ok(fd) = fs::open(std::path::Path::new(&link), flags) {
            return Some((fd, true));
        }
    }
    with_stdio(n, |fd| brig_sys::fdpass::dup_at_least(fd, 3)).ok().map(|fd| (fd, false))
}

impl Relay {
    /// Takes the master from pid 1 and puts the user's terminal in raw mode.
    pub fn new(master: OwnedFd, s: &Setup) -> Relay {
        let _ = brig_sys::fdpass::set_nonblocking(master.as_fd(), true);
        // A background brig that writes to, or sets, its terminal is not stopped (TOSTOP); one
        // that reads it gets EIO, not a stop.
        let old_mask = SigSet::of(&[libc::SIGTTOU, libc::SIGTTIN]).block().ok();
        let ttys = s.ttys;
        // The program's terminal output goes to brig's first terminal among 1, 2, 0 (stdout with
        // `--pty always` and no terminal).
        let out = [1, 2, 0].into_iter().find(|&n| s.fds[n] && ttys[n]).unwrap_or(1);
        let user = ttys.iter().position(|&t| t);
        // Reading a terminal of which brig is not in the foreground would fail: in the
        // background brig relays output only.
        let input = if s.fds[0] { Some(0) } else { user.filter(|&n| with_stdio(n, fs::readable)) };
        let input = input.filter(|&n| !ttys[n] || with_stdio(n, tty::in_foreground));
        let input_is_tty = input.is_some_and(|n| ttys[n]);
        let mut saved = None;
        if let Some(n) = input.filter(|_| input_is_tty) {
            with_stdio(n, |fd| {
                if let Ok(t) = Termios::get(fd) {
                    if t.raw().set(fd).is_ok() {
                        saved = Some((n, t));
                    }
                }
            });
        }
        Relay {
            input: input.and_then(|n| own_description(n, false)).map(|(fd, _)| fd),
            out_fd: own_description(out, true),
            master,
            user,
            input_is_tty,
            pending: Vec::new(),
            out_buf: Vec::new(),
            out_at: 0,
            screen: Screen::default(),
            saved,
            old_mask,
            out_failed: false,
            master_done: false,
        }
    }

    /// What to poll for now.
    pub fn interest(&self) -> Interest<'_> {
        let mut m = 0;
        if !self.master_done && self.out_buf.len() - self.out_at < OUT_MAX {
            m |= libc::POLLIN;
        }
        if !self.master_done && !self.pending.is_empty() {
            m |= libc::POLLOUT;
        }
        let input = self.input.as_ref().filter(|_| self.pending.len() < PENDING_MAX);
        let out = self.out_fd.as_ref().filter(|_| self.out_at < self.out_buf.len());
        Interest {
            master: (m != 0).then_some(m),
            input: input.map(|fd| (fd.as_fd(), libc::POLLIN)),
            out: out.map(|(fd, _)| (fd.as_fd(), libc::POLLOUT)),
        }
    }

    pub fn master(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }

    /// Moves what is ready: program output toward the user's side, input into the pty.
    pub fn ready(&mut self, master: i16, input: i16, out: i16) -> Event {
        if master & libc::POLLOUT != 0 {
            self.flush_input();
        }
        if master & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            self.output();
        }
        if out != 0 {
            self.write_out(true);
        }
        if input != 0 {
            return self.read_input();
        }
        Event::Nothing
    }

    /// One read from the master, filtered into the output buffer.
    fn output(&mut self) {
        let mut buf = [0u8; 64 << 10];
        match fs::read(self.master.as_fd(), &mut buf) {
            Ok(0) => self.master_done = true,
            Ok(_) if self.out_failed => {}
            Ok(n) => {
                self.screen.filter(&buf[..n], &mut self.out_buf);
                self.write_out(false);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // EIO: every holder of the slave is gone.
            Err(_) => self.master_done = true,
        }
    }

    /// Writes what is buffered until the user's side takes no more: through a non-blocking
    /// description, until EAGAIN; through a shared one, in chunks of [`OUT_CHUNK`] bytes, each
    /// after it polls writable (`polled`: it just did, for the first). A failed write (a hung-up
    /// terminal, a closed pipe) drops output from then on, so the program is never held by a
    /// reader that is gone.
    fn write_out(&mut self, mut polled: bool) {
        let Some((fd, nonblocking)) = &self.out_fd else {
            self.out_buf.clear();
            self.out_at = 0;
            return;
        };
        let (fd, nonblocking) = (fd.as_fd(), *nonblocking);
        while self.out_at < self.out_buf.len() {
            // A non-blocking description takes what fits and says EAGAIN; a shared one is
            // written only after it polls writable, a chunk at a time.
            let writable = nonblocking
                || polled
                || process::poll(&[(fd, libc::POLLOUT)], Some(Duration::ZERO))
                    .is_ok_and(|r| r[0] & libc::POLLOUT != 0);
            if !writable {
                break;
            }
            polled = false;
            let chunk = if nonblocking { OUT_MAX } else { OUT_CHUNK };
            let end = self.out_buf.len().min(self.out_at + chunk);
            match fs::write(fd, &self.out_buf[self.out_at..end]) {
                Ok(n) => self.out_at += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.out_failed = true;
                    self.out_at = self.out_buf.len();
                }
            }
        }
        if self.out_at == self.out_buf.len() {
            self.out_buf.clear();
            self.out_at = 0;
        } else if self.out_at > OUT_MAX {
            self.out_buf.drain(..self.out_at);
            self.out_at = 0;
        }
    }

    fn read_input(&mut self) -> Event {
        let Some(from) = &self.input else { return Event::Nothing };
        let mut buf = [0u8; 4096];
        match fs::read(from.as_fd(), &mut buf) {
            Ok(0) if !self.input_is_tty => {
                // A pipe's end: one end-of-file character, as if typed (Ctrl-D).
                self.input = None;
                self.pending.push(4);
            }
            Ok(n) if n > 0 => self.pending.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock) =>
            {
                return Event::Nothing
            }
            _ => {
                // A terminal that hung up, or one brig was moved to the background of (EIO).
                let hung_up = self.input.take().is_some_and(|fd| tty::hung_up(fd.as_fd()));
                return if hung_up { Event::HungUp } else { Event::Nothing };
            }
        }
        self.flush_input();
        Event::Nothing
    }

    fn flush_input(&mut self) {
        while !self.pending.is_empty() {
            match fs::write(self.master.as_fd(), &self.pending) {
                Ok(n) => drop(self.pending.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.pending.clear();
                    return;
                }
            }
        }
    }

    /// The user's terminal changed size: the pty follows (its foreground group gets SIGWINCH).
    pub fn resize(&self) {
        if let Some(n) = self.user {
            if let Ok(size) = with_stdio(n, tty::winsize) {
                let _ = tty::set_winsize(self.master.as_fd(), size);
            }
        }
    }

    /// After the prison ended: relays what the program wrote last, then what switches off the
    /// screen modes it left on. Every process of the prison is gone, so the master reads end of
    /// file (EIO) once its buffer is empty; all of this gets [`FINISH`] at most, so neither a
    /// pty slave passed out of the prison nor a stopped reader keeps brig.
    pub fn finish(&mut self) {
        let end = std::time::Instant::now() + FINISH;
        let mut reset = false;
        loop {
            if self.master_done && !reset {
                let r = self.screen.reset();
                self.out_buf.extend_from_slice(&r);
                reset = true;
            }
            let i = self.interest();
            if i.master.is_none() && i.out.is_none() {
                return;
            }
            let Some(left) = end.checked_duration_since(std::time::Instant::now()) else { return };
            let mut fds = Vec::new();
            if let Some(ev) = i.master.map(|e| e & libc::POLLIN) {
                fds.push((self.master.as_fd(), ev));
            }
            if let Some(out) = i.out {
                fds.push(out);
            }
            let Ok(r) = process::poll(&fds, Some(left)) else { return };
            let m = if i.master.is_some() { r[0] } else { 0 };
            let o = if i.out.is_some() { r[r.len() - 1] } else { 0 };
            if m == 0 && o == 0 {
                return;
            }
            self.ready(m, 0, o);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some((n, t)) = self.saved.take() {
            let _ = with_stdio(n, |fd| t.set(fd));
        }
        if let Some(m) = self.old_mask.take() {
            let _ = m.set_mask();
        }
    }
}
