//! `--ask`: when the prison is refused an open, the supervisor asks the user on brig's own
//! terminal (`/dev/tty` of brig's session: never the prison's, whose terminal is a private pty)
//! `allow read of /x/y? [o]nce [a]lways [n]o`, and on yes opens the file itself and installs
//! the fd in the asking process (`SECCOMP_IOCTL_NOTIF_ADDFD` with `SEND`): the program goes on
//! without a restart. Supervisor side, trusted.
//!
//! What is opened is the path the user was shown (the broker's copy, never read again from the
//! program), through root's symlinks only (as grants are), as the existing file it names: the
//! broker creates nothing, and a lookup-only open (`O_PATH`) is never brokered (ADDFD cannot
//! install an `O_PATH` file) and gets the kernel's refusal. As root, the prison's uid must be
//! allowed by the file's mode too (brig's own root rights are not lent). No answer within the
//! timeout is a no.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use brig_sys::fs::{self, resolve};
use brig_sys::tty::Termios;

use crate::explain::{Access, Refusal};
use crate::grants::walk_root_links;

/// The user's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Once,
    Always,
    No,
}

/// Brig's terminal and what the user allowed for the whole run.
#[derive(Debug)]
pub struct Asker {
    tty: std::fs::File,
    timeout: Duration,
    /// The prison's uid, for the mode check of root runs (None: brig is not root).
    root_for: Option<u32>,
    /// Host paths and accesses answered "always".
    pub always: Vec<(PathBuf, Access)>,
}

impl Asker {
    /// Opens brig's controlling terminal; fails where there is none (`--ask` is refused then).
    pub fn open(timeout: Duration, prison_uid: u32) -> std::io::Result<Asker> {
        let tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty")?;
        let root_for = (brig_sys::process::ids().0 == 0).then_some(prison_uid);
        Ok(Asker { tty, timeout, root_for, always: Vec::new() })
    }

    /// Asks about refusal `r` of an open of host file `host` (or a connection), while
    /// `pending()` (the asker still waits: a question for a process that is gone ends as no).
    /// "always" answers are kept.
    pub fn ask(&mut self, r: &Refusal, host: &Path, pending: &dyn Fn() -> bool) -> Answer {
        if self.always.iter().any(|(p, a)| p == host && *a == r.access) {
            return Answer::Always;
        }
        let secs = self.timeout.as_secs();
        let q = format!(
            "\r\nbrig: allow {}? ({}) [o]nce [a]lways [n]o (no in {secs} s) ",
            r.what(),
            r.reason
        );
        let _ = self.tty.write_all(q.as_bytes());
        let answer = self.read_key(pending);
        let said = match answer {
            Answer::Once => "once",
            Answer::Always => "always",
            Answer::No => "no",
        };
        let _ = self.tty.write_all(format!("{said}\r\n").as_bytes());
        if answer == Answer::Always {
            self.always.push((host.to_path_buf(), r.access));
        }
        answer
    }

    /// One key from the terminal, without waiting for Enter, until the timeout.
    fn read_key(&mut self, pending: &dyn Fn() -> bool) -> Answer {
        let fd = self.tty.as_fd();
        let saved = Termios::get(fd).ok();
        if let Some(t) = &saved {
            let _ = t.raw().set(fd);
        }
        let deadline = Instant::now() + self.timeout;
        let mut answer = Answer::No;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !pending() {
                break;
            }
            let slice = left.min(Duration::from_millis(200));
            match brig_sys::process::poll(&[(fd, libc::POLLIN)], Some(slice)) {
                Ok(r) if r[0] & libc::POLLIN != 0 => {}
                Ok(_) => continue,
                Err(_) => break,
            }
            let mut b = [0u8; 1];
            if let Ok(1) = fs::read(fd, &mut b) {
                answer = match b[0].to_ascii_lowercase() {
                    b'o' | b'y' => Answer::Once,
                    b'a' => Answer::Always,
                    b'n' | b'\r' | b'\n' | 3 => Answer::No,
                    _ => continue,
                };
            }
            break;
        }
        if let Some(t) = saved {
            let _ = t.set(fd);
        }
        answer
    }

    /// Opens existing host file `host` as `open` was asked (`flags`), for the prison: through
    /// root's symlinks only, never creating; as root, only if the prison's uid may by the
    /// file's mode.
    pub fn open_for_prison(&self, host: &Path, flags: i32) -> Result<OwnedFd, i32> {
        let keep = libc::O_ACCMODE
            | libc::O_APPEND
            | libc::O_TRUNC
            | libc::O_DIRECTORY
            | libc::O_NONBLOCK
            | libc::O_NOFOLLOW
            | libc::O_CLOEXEC
            | libc::O_NOCTTY;
        let w = walk_root_links(host).map_err(|_| libc::EACCES)?;
        let how = resolve::NO_SYMLINKS | resolve::NO_MAGICLINKS | resolve::BENEATH;
        let fd = fs::openat2(Some(w.dir.as_fd()), Path::new(&w.name), flags & keep, 0, how)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EACCES))?;
        if let Some(uid) = self.root_for {
            let m = std::fs::metadata(format!("/proc/self/fd/{}", {
                use std::os::fd::AsRawFd;
                fd.as_raw_fd()
            }))
            .map_err(|_| libc::EACCES)?;
            let bits = if m.uid() == uid { m.mode() >> 6 } else { m.mode() };
            let need = match flags & libc::O_ACCMODE {
                libc::O_RDONLY => 4,
                libc::O_WRONLY => 2,
                _ => 6,
            };
            if bits & need != need {
                return Err(libc::EACCES);
            }
        }
        Ok(fd)
    }
}
