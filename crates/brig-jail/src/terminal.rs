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
use brig_sys::process;
use brig_sys::tty::{self, Termios, Winsize};

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

/// The supervisor's end: the master, the user's saved terminal settings, input not yet written.
#[derive(Debug)]
pub struct Relay {
    master: OwnedFd,
    /// Where the program's terminal output goes (brig's first terminal among 1, 2, 0; stdout
    /// with `--pty always` and no terminal).
    out: usize,
    /// The user's terminal for window size.
    user: Option<usize>,
    /// The stdio fd relayed into the pty: stdin if the pty replaced it, else the user's
    /// terminal (what the program reads from /dev/tty in `seq 9 | brig run -- less`); none
    /// when brig is in the background of that terminal.
    input: Option<usize>,
    /// The input is a terminal: its end means a hang-up. (A pipe's end sends one end-of-file.)
    input_is_tty: bool,
    pending: Vec<u8>,
    /// The user's terminal (its stdio number) and its settings before raw mode, restored on
    /// drop.
    saved: Option<(usize, Termios)>,
    out_failed: bool,
    master_done: bool,
    /// Screen modes the program switched on and had not switched off when last seen (escape
    /// sequences are tracked within one read): brig switches them off when the prison ends, so
    /// a program killed in a full-screen view does not leave the user's terminal in it.
    modes: [bool; SCREEN_MODES.len()],
}

/// (switched on, switched off, what brig writes at the end if still on).
const SCREEN_MODES: &[(&[u8], &[u8], &[u8])] = &[
    (b"\x1b[?1049h", b"\x1b[?1049l", b"\x1b[?1049l"), // alternate screen
    (b"\x1b[?25l", b"\x1b[?25h", b"\x1b[?25h"),       // hidden cursor
    (b"\x1b[?1000h", b"\x1b[?1000l", b"\x1b[?1000l"), // mouse reports
    (b"\x1b[?2004h", b"\x1b[?2004l", b"\x1b[?2004l"), // bracketed paste
];

/// Updates `modes` from one chunk of output: the last of "on" and "off" seen wins.
fn track_modes(modes: &mut [bool], data: &[u8]) {
    if !data.contains(&0x1b) {
        return;
    }
    let last = |pat: &[u8]| data.windows(pat.len()).rposition(|w| w == pat);
    for (m, (on, off, _)) in modes.iter_mut().zip(SCREEN_MODES) {
        match (last(on), last(off)) {
            (Some(a), Some(b)) => *m = a > b,
            (Some(_), None) => *m = true,
            (None, Some(_)) => *m = false,
            (None, None) => {}
        }
    }
}

/// What happened on the relay's fds.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Nothing,
    /// The user's terminal hung up.
    HungUp,
}

impl Relay {
    /// Takes the master from pid 1 and puts the user's terminal in raw mode.
    pub fn new(master: OwnedFd, s: &Setup) -> Relay {
        let _ = brig_sys::fdpass::set_nonblocking(master.as_fd(), true);
        let ttys = s.ttys;
        let out = [1, 2, 0].into_iter().find(|&n| s.fds[n] && ttys[n]).unwrap_or(1);
        let user = ttys.iter().position(|&t| t);
        // Reading or changing a terminal from a background process group stops the process:
        // in the background brig relays output only.
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
            master,
            out,
            user,
            input,
            input_is_tty,
            pending: Vec::new(),
            saved,
            out_failed: false,
            master_done: false,
            modes: [false; SCREEN_MODES.len()],
        }
    }

    /// The events to poll for: on the master, and on the input (see [`Relay::input`]) if it
    /// is read now.
    pub fn interest(&self) -> (Option<i16>, Option<i16>) {
        let mut m = 0;
        if !self.master_done {
            m |= libc::POLLIN;
            if !self.pending.is_empty() {
                m |= libc::POLLOUT;
            }
        }
        let input =
            (self.input.is_some() && self.pending.len() < PENDING_MAX).then_some(libc::POLLIN);
        ((m != 0).then_some(m), input)
    }

    /// Which stdio fd the input comes from.
    pub fn input(&self) -> Option<usize> {
        self.input
    }

    pub fn master(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }

    /// Moves what is ready: program output to the user's terminal, input into the pty.
    pub fn ready(&mut self, master: i16, input: i16) -> Event {
        if master & libc::POLLOUT != 0 {
            self.flush_input();
        }
        if master & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            self.output();
        }
        if input != 0 {
            return self.read_input();
        }
        Event::Nothing
    }

    /// One read from the master, written whole to the user's side.
    fn output(&mut self) {
        let mut buf = [0u8; 64 << 10];
        match fs::read(self.master.as_fd(), &mut buf) {
            Ok(0) => self.master_done = true,
            Ok(n) => {
                track_modes(&mut self.modes, &buf[..n]);
                self.write_out(&buf[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // EIO: every holder of the slave is gone.
            Err(_) => self.master_done = true,
        }
    }

    fn write_out(&mut self, mut data: &[u8]) {
        // The user's terminal is written blocking: a slow terminal slows the program down, as
        // it would without brig. A failed write (a hung-up terminal) drops output from then on,
        // so the program is never blocked by a terminal that is gone.
        while !data.is_empty() && !self.out_failed {
            match with_stdio(self.out, |fd| fs::write(fd, data)) {
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => self.out_failed = true,
            }
        }
    }

    fn read_input(&mut self) -> Event {
        let Some(from) = self.input else { return Event::Nothing };
        let mut buf = [0u8; 4096];
        match with_stdio(from, |fd| fs::read(fd, &mut buf)) {
            Ok(0) if !self.input_is_tty => {
                // A pipe's end: one end-of-file character, as if typed (Ctrl-D).
                self.input = None;
                self.pending.push(4);
            }
            Ok(n) if n > 0 => self.pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Event::Nothing,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Event::Nothing,
            _ => {
                self.input = None;
                return Event::HungUp;
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

    /// After the prison ended: relays what the program wrote last. Every process of the prison
    /// is gone, so the master reads end-of-file (EIO) once the buffer is empty; a slave that
    /// escaped (passed out through a socket) is cut off after a short quiet time.
    pub fn finish(&mut self) {
        while !self.master_done {
            let quiet = Duration::from_millis(100);
            match process::poll(&[(self.master.as_fd(), libc::POLLIN)], Some(quiet)) {
                Ok(r) if r[0] != 0 => self.output(),
                _ => break,
            }
        }
        for (on, (_, _, reset)) in self.modes.into_iter().zip(SCREEN_MODES) {
            if on {
                self.write_out(reset);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screen_modes_follow_the_last_sequence_of_a_chunk() {
        let mut m = [false; SCREEN_MODES.len()];
        track_modes(&mut m, b"x\x1b[?1049h\x1b[?25l text");
        assert_eq!(m, [true, true, false, false]);
        track_modes(&mut m, b"\x1b[?25h\x1b[?25l\x1b[?25h plain");
        assert_eq!(m, [true, false, false, false]);
        track_modes(&mut m, b"no escapes");
        assert_eq!(m, [true, false, false, false]);
        track_modes(&mut m, b"\x1b[?1049l\x1b[?2004h");
        assert_eq!(m, [false, false, false, true]);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some((n, t)) = self.saved.take() {
            let _ = with_stdio(n, |fd| t.set(fd));
        }
    }
}
