//! Terminals: attributes and window size, a pseudo-terminal pair from a devpts instance, the
//! controlling terminal and its foreground process group.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::check_int;

/// A terminal's attributes (`struct termios`), kept as plain data so the runner can prepare the
/// prison's terminal before clone.
#[derive(Clone, Copy)]
pub struct Termios(libc::termios);

impl fmt::Debug for Termios {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Termios {{ lflag: {:#x} }}", self.0.c_lflag)
    }
}

impl Termios {
    /// The attributes of the terminal `fd`; fails with ENOTTY if it is not one.
    pub fn get(fd: BorrowedFd<'_>) -> io::Result<Termios> {
        // SAFETY: termios is plain data; all-zero is a valid value that tcgetattr overwrites.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `t` is a valid, writable termios; `fd` is open.
        check_int(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) })?;
        Ok(Termios(t))
    }

    /// Sets them on `fd` at once (TCSANOW: waiting for output to drain could wait forever on a
    /// stopped line).
    pub fn set(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        // SAFETY: `self.0` is a valid termios read from the kernel; `fd` is open.
        check_int(unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &self.0) }).map(drop)
    }

    /// The same attributes in raw mode: no echo, no line editing, no signal characters, no
    /// output processing (what a terminal relay needs on the user's side).
    pub fn raw(&self) -> Termios {
        let mut t = self.0;
        // SAFETY: `t` is a valid termios; cfmakeraw only changes its flag fields.
        unsafe { libc::cfmakeraw(&mut t) };
        Termios(t)
    }
}

/// True if `fd` is a terminal.
pub fn is_tty(fd: BorrowedFd<'_>) -> bool {
    Termios::get(fd).is_ok()
}

/// A terminal's window size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Winsize {
    pub rows: u16,
    pub cols: u16,
}

/// The window size of terminal `fd`.
pub fn winsize(fd: BorrowedFd<'_>) -> io::Result<Winsize> {
    let mut w = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` to the valid pointer `&mut w`.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut w) })?;
    Ok(Winsize { rows: w.ws_row, cols: w.ws_col })
}

/// Sets the window size of terminal `fd` (on a pty master: of its slave, whose foreground
/// process group then gets SIGWINCH).
pub fn set_winsize(fd: BorrowedFd<'_>, size: Winsize) -> io::Result<()> {
    let w = libc::winsize { ws_row: size.rows, ws_col: size.cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one `struct winsize` from the valid pointer `&w`.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &w) }).map(drop)
}

/// A new pseudo-terminal of the devpts instance mounted at `devpts`: (master, slave), both
/// close-on-exec and neither becoming anyone's controlling terminal. The slave is opened
/// through the master (TIOCGPTPEER), so no path lookup can substitute another file.
pub fn open_pty(devpts: BorrowedFd<'_>) -> io::Result<(OwnedFd, OwnedFd)> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    let master = crate::fs::openat2(
        Some(devpts),
        Path::new("ptmx"),
        flags,
        0,
        crate::fs::resolve::BENEATH | crate::fs::resolve::NO_SYMLINKS,
    )?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from the valid pointer `&unlock`.
    check_int(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })?;
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd that nothing owns yet.
    let slave = check_int(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) })?;
    // SAFETY: `slave` was just returned by the kernel and is owned by no one else.
    Ok((master, unsafe { OwnedFd::from_raw_fd(slave) }))
}

/// Makes terminal `fd` the controlling terminal of the calling session leader.
pub fn set_controlling(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an int by value (0: do not steal it from another session).
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) }).map(drop)
}

/// The foreground process group of the terminal behind `fd` (a pty master answers for its
/// slave), as a pid of the caller's pid namespace.
pub fn foreground_group(fd: BorrowedFd<'_>) -> io::Result<i32> {
    let mut pgrp: libc::pid_t = 0;
    // SAFETY: TIOCGPGRP writes one pid_t to the valid pointer `&mut pgrp`.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGPGRP, &mut pgrp) })?;
    Ok(pgrp)
}

/// True if terminal `fd` has hung up (its other side closed; every later read fails).
pub fn hung_up(fd: BorrowedFd<'_>) -> bool {
    crate::process::poll(&[(fd, 0)], Some(std::time::Duration::ZERO))
        .is_ok_and(|r| r[0] & libc::POLLHUP != 0)
}

/// True if the calling process is in the foreground process group of terminal `fd` (else
/// reading it or changing its attributes would stop the process with SIGTTIN/SIGTTOU).
pub fn in_foreground(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: getpgrp cannot fail.
    foreground_group(fd).is_ok_and(|g| g == unsafe { libc::getpgrp() })
}
