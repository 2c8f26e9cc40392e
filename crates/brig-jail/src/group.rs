//! The group supervisor, on the host side of every member's boundary: one `brig run` per
//! `[component.NAME]` (this same binary), started in dependency order with its channel ends at
//! fixed fds, restarted by its policy, its output prefixed with its name, and the whole group
//! stopped together. It holds no prison's authority: only the channels' socket pairs (so that a
//! restarted member gets its ends back), the manifest's text in a sealed memfd (so that a member
//! that can write the manifest's directory cannot change a later start), and pipes.
//!
//! If the supervisor itself is killed, every member's brig gets SIGKILL from the kernel
//! (`PR_SET_PDEATHSIG`, set by `--group-parent`), and each prison dies with its brig.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, Instant};

use brig_policy::group::{
    Group, Member, RestartWhen, CHANNEL_FD_BASE, MANIFEST_FD, MAX_BACKOFF, READY_FD, STOP_GRACE,
};
use brig_sys::fdpass;
use brig_sys::fs;
use brig_sys::process::{self, SigSet, Status};

use crate::error::JailError;

/// How long output is still read after the last member ended (a stray writer may hold a pipe).
const DRAIN: Duration = Duration::from_millis(500);
/// A line longer than this is written out in pieces.
const LINE_MAX: usize = 64 * 1024;
/// Signals that stop the group (the members' brigs get SIGTERM, then SIGKILL).
const STOPPING: [i32; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// Where one instance of a member is.
enum State {
    /// Not started yet: waits for what it comes `after`.
    Waiting,
    Running {
        pid: i32,
        pidfd: OwnedFd,
        /// Readable once its program is about to exec (or at its brig's exit).
        ready: Option<OwnedFd>,
        started: bool,
        since: Instant,
    },
    /// Restarts at this time.
    Backoff(Instant),
    /// For good: its status (exit code, or 128 + signal).
    Ended(i32),
}

struct Slot<'g> {
    member: &'g Member,
    state: State,
    starts: Vec<Instant>,
    failures: u32,
}

/// One member's stdout or stderr, written out line by line with its name in front.
struct Lines {
    fd: OwnedFd,
    prefix: String,
    to_stderr: bool,
    buf: Vec<u8>,
}

impl Lines {
    /// Reads what is there; false at end of file (then the rest is written out).
    fn read(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        let n = fs::read(self.fd.as_fd(), &mut chunk).unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        loop {
            let end = match self.buf.iter().position(|&b| b == b'\n') {
                Some(i) if i < LINE_MAX => i + 1,
                _ if self.buf.len() >= LINE_MAX => LINE_MAX,
                _ => break,
            };
            let line: Vec<u8> = self.buf.drain(..end).collect();
            self.write(&line);
        }
        if n == 0 {
            self.flush();
        }
        n > 0
    }

    /// Writes out a last line that had no newline.
    fn flush(&mut self) {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            self.write(&rest);
        }
    }

    fn write(&self, line: &[u8]) {
        use std::io::Write;
        let mut out = self.prefix.clone().into_bytes();
        out.extend_from_slice(line);
        if !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        // One write per line, so lines of different members never mix; a reader that went
        // away is not the group's failure.
        let _ = match self.to_stderr {
            true => std::io::stderr().lock().write_all(&out),
            false => std::io::stdout().lock().write_all(&out),
        };
    }
}

fn say(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(format!("brig: group: {line}\n").as_bytes());
}

/// How a process ended, as an exit status (128 + N for signal N).
fn code(st: Status) -> i32 {
    match st {
        Status::Exited(c) => c,
        Status::Signaled(s) => 128 + s,
    }
}

/// A failure's status: 1 where the process itself said 0.
fn failed(c: i32) -> i32 {
    if c == 0 {
        1
    } else {
        c
    }
}

fn words(c: i32) -> String {
    match c {
        c if c > 128 => format!("ended by signal {}", c - 128),
        c => format!("exited with {c}"),
    }
}

/// Runs the group of `file` (its text `text`, already parsed into `group`) to its end and
/// returns brig's exit status: `[group] main`'s when it has one; otherwise the first failure
/// that stopped the group, or 0 when every member ended well.
pub fn run(file: &Path, text: &str, group: &Group) -> Result<u8, JailError> {
    let manifest = fdpass::sealed_memfd("brig-group-manifest", text.as_bytes())
        .map_err(JailError::setup("group: copy the manifest into a sealed memfd"))?;
    let mut ends: Vec<[Option<OwnedFd>; 2]> = Vec::new();
    for _ in &group.channels {
        let (a, b) = fdpass::seqpacket_pair().map_err(JailError::setup("group: make a channel"))?;
        ends.push([Some(a), Some(b)]);
    }
    let null = fs::open(Path::new("/dev/null"), libc::O_RDWR | libc::O_CLOEXEC)
        .map_err(JailError::setup("group: open /dev/null"))?;
    let signals = SigSet::of(&STOPPING);
    let old_mask = signals.block().map_err(JailError::setup("group: block signals"))?;
    let sigfd = signals.signalfd().map_err(JailError::setup("group: signalfd"));
    let out = sigfd.and_then(|sigfd| {
        let mut sup = Supervisor {
            file,
            group,
            slots: group.start_order().into_iter().map(Slot::new).collect(),
            ends,
            manifest,
            null,
            outputs: Vec::new(),
            width: group.members.iter().map(|m| m.name.len()).max().unwrap_or(0),
            stopping: None,
        };
        sup.run(sigfd)
    });
    let _ = old_mask.set_mask();
    out
}

impl<'g> Slot<'g> {
    fn new(member: &'g Member) -> Slot<'g> {
        Slot { member, state: State::Waiting, starts: Vec::new(), failures: 0 }
    }

    fn running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }
}

struct Supervisor<'g> {
    file: &'g Path,
    group: &'g Group,
    /// In start order.
    slots: Vec<Slot<'g>>,
    /// Both ends of every channel, while a member that holds one may still (re)start.
    ends: Vec<[Option<OwnedFd>; 2]>,
    manifest: OwnedFd,
    null: OwnedFd,
    outputs: Vec<Lines>,
    width: usize,
    /// The group is being stopped: with this status, and SIGKILL at this time (None once sent).
    stopping: Option<(i32, Option<Instant>)>,
}

impl Supervisor<'_> {
    /// Supervises to the group's end; on an error of its own, kills and reaps every member
    /// first. The members' last output is written out either way.
    fn run(&mut self, sigfd: OwnedFd) -> Result<u8, JailError> {
        let r = self.supervise(sigfd);
        if r.is_err() {
            self.abort();
        }
        self.drain();
        r
    }

    fn supervise(&mut self, sigfd: OwnedFd) -> Result<u8, JailError> {
        loop {
            if self.stopping.is_none() {
                if let Err(e) = self.start_due() {
                    self.stop(125, &e.to_string());
                }
            }
            if self.slots.iter().all(|s| matches!(s.state, State::Ended(_))) {
                break;
            }
            let now = Instant::now();
            let next = self
                .slots
                .iter()
                .filter_map(|s| match s.state {
                    State::Backoff(t) if self.stopping.is_none() => Some(t),
                    _ => None,
                })
                .chain(self.stopping.and_then(|(_, t)| t))
                .min();
            let timeout = next.map(|t| t.saturating_duration_since(now));
            let mut fds: Vec<(BorrowedFd<'_>, i16)> = vec![(sigfd.as_fd(), libc::POLLIN)];
            let mut what: Vec<(usize, u8)> = vec![(0, b's')];
            for (i, s) in self.slots.iter().enumerate() {
                if let State::Running { pidfd, ready, .. } = &s.state {
                    fds.push((pidfd.as_fd(), libc::POLLIN));
                    what.push((i, b'p'));
                    if let Some(r) = ready {
                        fds.push((r.as_fd(), libc::POLLIN));
                        what.push((i, b'r'));
                    }
                }
            }
            for (i, o) in self.outputs.iter().enumerate() {
                fds.push((o.fd.as_fd(), libc::POLLIN));
                what.push((i, b'o'));
            }
            let ready = process::poll(&fds, timeout).map_err(JailError::setup("group: poll"))?;
            drop(fds);
            let mut closed = Vec::new();
            let mut exited = Vec::new();
            for (k, &(i, kind)) in what.iter().enumerate() {
                if ready[k] == 0 {
                    continue;
                }
                match kind {
                    b's' => {
                        while let Ok(Some(sig)) = process::read_signalfd(sigfd.as_fd()) {
                            self.stop(128 + sig, &format!("got signal {sig}"));
                        }
                    }
                    b'r' => self.ready(i),
                    b'p' => exited.push(i),
                    _ => {
                        if !self.outputs[i].read() {
                            closed.push(i);
                        }
                    }
                }
            }
            for i in closed.into_iter().rev() {
                self.outputs.remove(i);
            }
            for i in exited {
                self.exited(i)?;
            }
            if let Some((status, Some(kill_at))) = self.stopping {
                if Instant::now() >= kill_at {
                    self.kill_all();
                    self.stopping = Some((status, None));
                }
            }
        }
        Ok(self.stopping.map_or(0, |(status, _)| status).clamp(0, 255) as u8)
    }

    /// SIGKILL to every running member's brig.
    fn kill_all(&self) {
        for s in &self.slots {
            if let State::Running { pidfd, .. } = &s.state {
                let _ = process::pidfd_kill(pidfd.as_fd(), libc::SIGKILL);
            }
        }
    }

    /// After an error of the supervisor's own: every member's brig is killed and reaped, so
    /// nothing of the group outlives it.
    fn abort(&mut self) {
        self.kill_all();
        for s in &mut self.slots {
            if let State::Running { pid, .. } = s.state {
                let _ = process::wait(pid, false);
                s.state = State::Ended(137);
            }
        }
    }

    /// Starts every member that waits and whose `after` members run, and every restart due.
    fn start_due(&mut self) -> Result<(), JailError> {
        for i in 0..self.slots.len() {
            let due = match self.slots[i].state {
                State::Waiting => self.slots[i].member.after.iter().all(|(a, _)| {
                    self.slots.iter().any(|s| {
                        s.member.name == *a
                            && matches!(
                                s.state,
                                State::Running { started: true, .. } | State::Ended(0)
                            )
                    })
                }),
                State::Backoff(t) => Instant::now() >= t,
                _ => false,
            };
            if due {
                self.spawn(i)?;
            }
        }
        Ok(())
    }

    /// Starts member `i`'s brig: `brig run -m FILE --component NAME` with the manifest's text,
    /// the ready pipe and the channel ends at fixed fds.
    fn spawn(&mut self, i: usize) -> Result<(), JailError> {
        let name = self.slots[i].member.name.clone();
        let step = |what: &'static str| JailError::setup(what);
        let (out_r, out_w) = fs::pipe().map_err(step("group: stdout pipe"))?;
        let (err_r, err_w) = fs::pipe().map_err(step("group: stderr pipe"))?;
        let (ready_r, ready_w) = fs::pipe().map_err(step("group: ready pipe"))?;
        // Read when poll says so, or at the brig's exit: never waited on.
        fdpass::set_nonblocking(ready_r.as_fd(), true).map_err(step("group: ready pipe"))?;
        let mut fds: Vec<(BorrowedFd<'_>, i32)> = vec![
            (self.null.as_fd(), 0),
            (out_w.as_fd(), 1),
            (err_w.as_fd(), 2),
            (self.manifest.as_fd(), MANIFEST_FD),
            (ready_w.as_fd(), READY_FD),
        ];
        for (k, (_, c, side)) in self.group.ends_of(&name).into_iter().enumerate() {
            // Held until the member ends for good (checked in `exited`).
            let Some(end) = self.ends[c][side].as_ref() else {
                return Err(JailError::Setup {
                    step: "group: a channel end was closed",
                    source: std::io::Error::other(name.clone()),
                });
            };
            fds.push((end.as_fd(), CHANNEL_FD_BASE + k as i32));
        }
        let mut args: Vec<Vec<u8>> = vec![b"brig".into(), b"run".into(), b"-m".into()];
        args.push(self.file.as_os_str().as_bytes().into());
        for (flag, fd) in [("--manifest-fd", MANIFEST_FD), ("--ready-fd", READY_FD)] {
            args.extend([flag.into(), fd.to_string().into_bytes()]);
        }
        args.extend([b"--group-parent".into(), std::process::id().to_string().into_bytes()]);
        args.extend(self.group.member_args(&name).into_iter().map(String::into_bytes));
        let cstr = |s: Vec<u8>| CString::new(s).map_err(|e| std::io::Error::other(e.to_string()));
        let argv = args.into_iter().map(cstr).collect::<Result<Vec<_>, _>>();
        let envp: Vec<CString> = std::env::vars_os()
            .filter_map(|(k, v)| CString::new([k.as_bytes(), b"=", v.as_bytes()].concat()).ok())
            .collect();
        let exe = c"/proc/self/exe";
        let pid = argv
            .and_then(|argv| process::spawn(exe, &argv, &envp, &fds))
            .map_err(step("group: start a member's brig (posix_spawn /proc/self/exe)"))?;
        drop(fds);
        let pidfd = process::pidfd_open(pid).map_err(step("group: pidfd_open a member"))?;
        let prefix = format!("{name:<w$} | ", w = self.width);
        for (fd, to_stderr) in [(out_r, false), (err_r, true)] {
            self.outputs.push(Lines { fd, prefix: prefix.clone(), to_stderr, buf: Vec::new() });
        }
        let s = &mut self.slots[i];
        s.starts.push(Instant::now());
        s.state = State::Running {
            pid,
            pidfd,
            ready: Some(ready_r),
            started: false,
            since: Instant::now(),
        };
        Ok(())
    }

    /// Member `i`'s ready pipe is readable: its program is about to exec, or its brig ended.
    fn ready(&mut self, i: usize) {
        if let State::Running { ready, started, .. } = &mut self.slots[i].state {
            let mut b = [0u8; 1];
            if let Some(r) = ready.take() {
                *started = fs::read(r.as_fd(), &mut b).unwrap_or(0) == 1;
            }
        }
    }

    /// Member `i`'s brig ended: restart it, or end it and maybe the group.
    fn exited(&mut self, i: usize) -> Result<(), JailError> {
        let State::Running { pid, since, .. } = self.slots[i].state else {
            return Ok(());
        };
        // A ready byte may have come with the exit in one poll.
        self.ready(i);
        let started = matches!(self.slots[i].state, State::Running { started: true, .. });
        let st = process::wait(pid, false).map_err(JailError::setup("group: wait for a member"))?;
        let c = st.map_or(1, |(_, raw)| code(Status::from_raw(raw)));
        let s = &mut self.slots[i];
        let name = s.member.name.clone();
        if self.stopping.is_some() {
            s.state = State::Ended(c);
            return Ok(());
        }
        let main = self.group.main.as_ref().map(|(m, _)| m.as_str());
        if main == Some(name.as_str()) {
            s.state = State::Ended(c);
            self.stop(c, &format!("{name}, the group's main component, {}", words(c)));
            return Ok(());
        }
        let r = s.member.restart;
        let wants = match r.when {
            RestartWhen::Never => false,
            RestartWhen::OnFailure => c != 0,
            RestartWhen::Always => true,
        };
        if !started {
            s.state = State::Ended(c);
            let why = if c == 125 { "brig refused it (above)" } else { "" };
            self.stop(failed(c), &format!("{name} could not start ({}) {why}", words(c)));
            return Ok(());
        }
        if wants {
            // A member that ran a while is not failing in a row.
            s.failures = if since.elapsed() > MAX_BACKOFF { 1 } else { s.failures + 1 };
            let recent = s.starts.iter().filter(|t| t.elapsed() < r.within).count();
            if recent > r.max as usize {
                s.state = State::Ended(c);
                let msg = format!(
                    "{name} {}, and was restarted {} times in {:?}: giving up",
                    words(c),
                    r.max,
                    r.within
                );
                self.stop(failed(c), &msg);
                return Ok(());
            }
            let wait = r.wait(s.failures);
            say(&format!(
                "{name} {}; restarting in {wait:?} (restart {} of at most {} in {:?})",
                words(c),
                recent,
                r.max,
                r.within
            ));
            s.state = State::Backoff(Instant::now() + wait);
            return Ok(());
        }
        s.state = State::Ended(c);
        if c != 0 {
            self.stop(c, &format!("{name} {}", words(c)));
        } else {
            // Its peers see the hang-up once its own copies are gone too.
            for (_, ch, side) in self.group.ends_of(&name) {
                self.ends[ch][side] = None;
            }
        }
        Ok(())
    }

    /// Stops the group with `status`: SIGTERM to every running member's brig (which passes it
    /// to its program), SIGKILL after [`STOP_GRACE`].
    fn stop(&mut self, status: i32, why: &str) {
        if self.stopping.is_some() {
            return;
        }
        let running: Vec<&str> =
            self.slots.iter().filter(|s| s.running()).map(|s| s.member.name.as_str()).collect();
        match running.is_empty() {
            true => say(&format!("{why}; the group ends")),
            false => say(&format!("{why}; stopping {}", running.join(", "))),
        }
        self.stopping = Some((status, Some(Instant::now() + STOP_GRACE)));
        for s in &mut self.slots {
            match &s.state {
                State::Running { pidfd, .. } => {
                    let _ = process::pidfd_kill(pidfd.as_fd(), libc::SIGTERM);
                }
                State::Waiting | State::Backoff(_) => s.state = State::Ended(0),
                State::Ended(_) => {}
            }
        }
    }

    /// The members' last output, until every pipe is closed (or [`DRAIN`] has passed).
    fn drain(&mut self) {
        let until = Instant::now() + DRAIN;
        while !self.outputs.is_empty() && Instant::now() < until {
            let fds: Vec<BorrowedFd<'_>> = self.outputs.iter().map(|o| o.fd.as_fd()).collect();
            let ready = match process::poll_readable(&fds, Some(until - Instant::now())) {
                Ok(r) => r,
                Err(_) => break,
            };
            drop(fds);
            let mut closed = Vec::new();
            for (k, r) in ready.into_iter().enumerate() {
                if r && !self.outputs[k].read() {
                    closed.push(k);
                }
            }
            for k in closed.into_iter().rev() {
                self.outputs.remove(k);
            }
        }
        for o in &mut self.outputs {
            o.flush();
        }
    }
}
