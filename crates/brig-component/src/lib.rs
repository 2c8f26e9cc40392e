//! brig-component: the caller's side of the boundary between a program and the components it
//! starts. A component is a risky part of the program (a decompressor, a parser) run as its own
//! brig prison: this same binary re-executed with an entry point's name, with no filesystem, no
//! network, its own limits and an allow-list of syscalls, reached over a `brig-ipc` channel.
//! Whatever it answers is [`Untrusted`] until the caller verifies it.
//!
//! ```no_run
//! use std::time::Duration;
//! use brig_component::{Component, Entry, Spec};
//!
//! fn double(mut ch: brig_ipc::Channel) -> i32 {
//!     while let Ok(r) = ch.next_request::<u64>(Duration::from_secs(3600)) {
//!         let _ = ch.reply(r.id, Ok(r.msg.wrapping_mul(2)));
//!     }
//!     0
//! }
//! const DOUBLE: Entry = Entry {
//!     name: "double", protocol: "double/1", serve: double, syscalls: &[],
//!     limits: brig_ipc::Limits::DEFAULT,
//! };
//!
//! fn main() -> Result<(), brig_component::Error> {
//!     brig_component::dispatch(&[DOUBLE]);                 // a component's process stops here
//!     let mut c = Component::start(Spec::new(DOUBLE))?;
//!     let n = c.call::<u64, u64>(21, Duration::from_secs(1))?
//!         .verify(|n| if n % 2 == 0 { Ok(n) } else { Err("odd") }).unwrap();
//!     assert_eq!(n, 42);
//!     Ok(())
//! }
//! ```
//!
//! The supervisor of each component is `brig run` (found as [`brig_binary`] says), so a
//! component gets the same launch sequence, layers and report as any prison.
#![forbid(unsafe_code)]

use std::ffi::CString;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use brig_ipc::{Channel, Limits, Wire};

/// What every component needs, whatever it does: start a static Rust program (the runtime's
/// set-up), allocate, talk over its channel (receive with a timeout, check fds it is given:
/// fstat, seals), and exit. Reviewed data: a component's own `syscalls` come on top, and
/// `brig check` / `Spec::syscalls` print the whole list.
pub const BASE_SYSCALLS: &[&str] = &[
    // the runtime's start (glibc static start, Rust's std main)
    "arch_prctl",
    "set_tid_address",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "getrandom",
    "poll",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "sched_getaffinity",
    "gettid",
    "getpid",
    // memory
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "futex",
    // the channel and the fds it carries
    "recvmsg",
    "sendmsg",
    "setsockopt",
    "read",
    "write",
    "pread64",
    "lseek",
    "fstat",
    "newfstatat",
    "fcntl",
    "close",
    // the end
    "exit",
];

/// A component's entry point, the same in the caller (to start it) and in the component's
/// process (to serve).
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Its name, given to the re-executed binary.
    pub name: &'static str,
    /// The channel's protocol, `"name/version"`, checked by the hello.
    pub protocol: &'static str,
    /// Serves requests on the channel until it closes; returns the exit status.
    pub serve: fn(Channel) -> i32,
    /// Syscalls it needs beyond [`BASE_SYSCALLS`].
    pub syscalls: &'static [&'static str],
    /// What its channel carries, on both ends.
    pub limits: Limits,
}

/// The argument that tells a re-executed binary which entry point to run.
pub const ENTRY_FLAG: &str = "--brig-component";
/// The name of the channel capability a component receives.
pub const CHANNEL_CAP: &str = "channel";

/// Call first in `main`: when this process was started as a component, runs its entry point and
/// exits with its status; otherwise returns. A component whose channel is missing, or whose
/// hello fails, exits with 125.
pub fn dispatch(entries: &[Entry]) {
    let args: Vec<String> = std::env::args().skip(1).take(3).collect();
    let [flag, name] = &args[..] else { return };
    if flag != ENTRY_FLAG {
        return;
    }
    let code = match entries.iter().find(|e| e.name == name) {
        Some(e) => serve(e),
        None => 125,
    };
    std::process::exit(code)
}

fn serve(e: &Entry) -> i32 {
    let fd = match brig_caps::Caps::load().and_then(|mut c| c.channel(CHANNEL_CAP)) {
        Ok(fd) => fd,
        Err(_) => return 125,
    };
    let mut ch = Channel::new(fd, e.limits);
    match hello(&mut ch, e.protocol, HELLO_WAIT) {
        Ok(()) => (e.serve)(ch),
        Err(_) => 125,
    }
}

/// How long either side waits for the other's hello (the component's start included).
pub const HELLO_WAIT: Duration = Duration::from_secs(10);

fn hello(ch: &mut Channel, protocol: &str, wait: Duration) -> Result<(), brig_ipc::Error> {
    let (name, version) = protocol.rsplit_once('/').unwrap_or((protocol, "0"));
    ch.hello(name, version.parse().unwrap_or(0), wait)
}

/// When a failed component is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Never: after a failure every call fails with [`Error::Stopped`].
    Never,
    /// On the next call after a failure, waiting `backoff` (doubled after each failure in a
    /// row, at most [`MAX_BACKOFF`]), at most `max` times within `within`.
    OnFailure { backoff: Duration, max: u32, within: Duration },
}

/// The longest wait before a restart (as a group's, `brig_policy::group::MAX_BACKOFF`).
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How to start one component.
#[derive(Debug, Clone)]
pub struct Spec {
    pub entry: Entry,
    pub restart: Restart,
    pub limits: Limits,
    /// brig run's limit flags: memory, CPU seconds, wall time (`None`: brig's defaults).
    pub memory: Option<String>,
    pub cpu: Option<String>,
    /// Extra `brig run` flags, before `--` (e.g. `--explain`).
    pub brig_flags: Vec<String>,
    /// The runtime's part of the allow-list: [`BASE_SYSCALLS`], or a shorter list of the
    /// caller's for a component that was measured to need less (brig-vmm's devices).
    pub base: &'static [&'static str],
}

impl Spec {
    /// A component with no filesystem, no network, 256 MiB of memory, and no restarts.
    pub fn new(entry: Entry) -> Spec {
        Spec {
            entry,
            restart: Restart::Never,
            limits: entry.limits,
            memory: Some("256M".into()),
            cpu: None,
            brig_flags: Vec::new(),
            base: BASE_SYSCALLS,
        }
    }

    /// Its allow-list: `base` and the entry's own (brig adds `execve`, `execveat` and
    /// `exit_group`, which its exec of the component needs).
    pub fn syscalls(&self) -> Vec<&'static str> {
        let mut v: Vec<&str> = self.base.iter().chain(self.entry.syscalls).copied().collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The `brig run` arguments that start it from `exe`, its channel at fd 3.
    pub fn brig_args(&self, exe: &str) -> Vec<String> {
        let mut a: Vec<String> = ["run", "--no-system", "--pty", "never"].map(String::from).into();
        a.extend(["--rx".into(), exe.into(), "--channel".into(), format!("{CHANNEL_CAP}=3")]);
        a.extend(["--only-syscalls".into(), self.syscalls().join(",")]);
        for (flag, v) in [("--mem", &self.memory), ("--cpu", &self.cpu)] {
            if let Some(v) = v {
                a.extend([flag.into(), v.clone()]);
            }
        }
        a.extend(self.brig_flags.iter().cloned());
        a.extend(["--".into(), exe.into(), ENTRY_FLAG.into(), self.entry.name.into()]);
        a
    }
}

/// Why a component could not be started or called.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot find the brig binary: {0}")]
    NoBrig(String),
    #[error("cannot start component {name}: {source}")]
    Start { name: &'static str, source: std::io::Error },
    /// The component broke the channel's rules, died or hung; it has been stopped.
    #[error("component {name} failed: {source}")]
    Failed { name: &'static str, source: brig_ipc::Error },
    /// The component answered the request with a failure of its own (it is still running).
    #[error("component {name} refused the request: {reason}")]
    Refused { name: &'static str, reason: String },
    #[error("component {name} is stopped ({why})")]
    Stopped { name: &'static str, why: String },
}

/// What a component said: usable only through [`Untrusted::verify`] (RLBox's `tainted<T>`).
#[derive(Debug)]
#[must_use = "an answer is of no use until verified"]
pub struct Untrusted<T>(T);

impl<T> Untrusted<T> {
    /// Checks the raw value and turns it into a trusted one, or refuses it.
    pub fn verify<U, E>(self, check: impl FnOnce(T) -> Result<U, E>) -> Result<U, E> {
        check(self.0)
    }
}

/// A running component: its supervising brig process and the caller's end of the channel.
#[derive(Debug)]
pub struct Component {
    spec: Spec,
    brig: PathBuf,
    running: Option<(Channel, i32)>,
    /// Why it last failed, and when it was (re)started, for the restart policy.
    failed: Option<String>,
    /// The pid of its brig once its channel was handed over (it is still ours to reap).
    handed_over: Option<i32>,
    starts: Vec<Instant>,
    failures_in_a_row: u32,
}

/// Where the brig binary is: `$BRIG` if set, else `brig` beside this executable or one
/// directory up (cargo's `examples/` and `deps/`), else the first `brig` on `$PATH`.
pub fn brig_binary() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os("BRIG") {
        return Ok(p.into());
    }
    let exe = std::env::current_exe().map_err(|e| Error::NoBrig(e.to_string()))?;
    let beside = exe.ancestors().skip(1).take(2).map(|d| d.join("brig"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path: Vec<PathBuf> = std::env::split_paths(&path).map(|d| d.join("brig")).collect();
    beside
        .chain(on_path)
        .find(|p| p.is_file())
        .ok_or_else(|| Error::NoBrig("set BRIG=/path/to/brig, or put brig on PATH".into()))
}

impl Component {
    /// Starts the component and exchanges hellos.
    pub fn start(spec: Spec) -> Result<Component, Error> {
        let mut c = Component {
            spec,
            brig: brig_binary()?,
            running: None,
            failed: None,
            handed_over: None,
            starts: Vec::new(),
            failures_in_a_row: 0,
        };
        c.launch()?;
        Ok(c)
    }

    fn name(&self) -> &'static str {
        self.spec.entry.name
    }

    fn launch(&mut self) -> Result<(), Error> {
        let name = self.name();
        let io = |source| Error::Start { name, source };
        let exe = std::env::current_exe().map_err(io)?;
        let exe = exe.to_str().ok_or_else(|| io(std::io::Error::other("a non-UTF-8 path")))?;
        let (ours, theirs) = brig_sys::fdpass::seqpacket_pair().map_err(io)?;
        let cstr = |s: &str| CString::new(s).map_err(|e| io(std::io::Error::other(e)));
        let brig = cstr(&self.brig.to_string_lossy())?;
        let mut argv = vec![brig.clone()];
        for a in self.spec.brig_args(exe) {
            argv.push(cstr(&a)?);
        }
        let envp: Vec<CString> = std::env::vars()
            .filter(|(k, _)| ["PATH", "HOME", "LANG", "TERM"].contains(&k.as_str()))
            .filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok())
            .collect();
        let pid =
            brig_sys::process::spawn(&brig, &argv, &envp, &[(theirs.as_fd(), 3)]).map_err(io)?;
        drop(theirs);
        self.starts.push(Instant::now());
        let mut ch = Channel::new(ours, self.spec.limits);
        match hello(&mut ch, self.spec.entry.protocol, HELLO_WAIT) {
            Ok(()) => {
                self.running = Some((ch, pid));
                Ok(())
            }
            Err(e) => {
                // brig may be saying why it refused to start it: let it finish.
                drop(ch);
                end(pid, Duration::from_secs(2));
                self.failed = Some(e.to_string());
                Err(Error::Failed { name, source: e })
            }
        }
    }

    /// Sends `q` and waits at most `wait` for the answer. A component that dies, hangs or
    /// breaks the protocol is stopped, and the error says what it did; the next call restarts
    /// it if the policy allows.
    pub fn call<Q: Wire, R: Wire>(&mut self, q: Q, wait: Duration) -> Result<Untrusted<R>, Error> {
        let id = self.request(q)?;
        self.answer(id, wait)
    }

    /// Sends `q` without waiting: several requests may be in flight, answered in order.
    pub fn request<Q: Wire>(&mut self, q: Q) -> Result<u64, Error> {
        self.ensure_running()?;
        let name = self.name();
        let Some((ch, _)) = self.running.as_mut() else {
            return Err(Error::Stopped { name, why: "not running".into() });
        };
        let sent = ch.request(q);
        sent.map_err(|e| self.failed_with(e))
    }

    /// Waits at most `wait` for the answer to request `id` (the oldest one in flight).
    pub fn answer<R: Wire>(&mut self, id: u64, wait: Duration) -> Result<Untrusted<R>, Error> {
        let name = self.name();
        let Some((ch, _)) = self.running.as_mut() else {
            return Err(Error::Stopped { name, why: "not running".into() });
        };
        match ch.answer::<R>(id, wait) {
            Ok(r) => {
                self.failures_in_a_row = 0;
                Ok(Untrusted(r))
            }
            Err(brig_ipc::Error::Remote(reason)) => Err(Error::Refused { name, reason }),
            Err(e) => Err(self.failed_with(e)),
        }
    }

    /// Stops the component after it broke the channel's rules.
    fn failed_with(&mut self, e: brig_ipc::Error) -> Error {
        self.kill(e.to_string());
        Error::Failed { name: self.name(), source: e }
    }

    /// Stops the component (it is restarted by the next call if the policy allows).
    pub fn kill(&mut self, why: String) {
        if let Some((_, pid)) = self.running.take() {
            stop(pid);
        }
        self.failed = Some(why);
        self.failures_in_a_row += 1;
    }

    /// Hands the channel's socket to another process (brig-vmm's VMM prison talks to the
    /// devices it did not start): the component stays the caller's to end and reap, but only
    /// the new holder talks to it, and it ends when the new holder closes the channel.
    pub fn hand_over(&mut self) -> Result<std::os::fd::OwnedFd, Error> {
        let name = self.name();
        let Some((ch, pid)) = self.running.take() else {
            return Err(Error::Stopped { name, why: "not running".into() });
        };
        self.handed_over = Some(pid);
        self.failed = Some("handed over".into());
        Ok(ch.into_fd())
    }

    /// How many times it was started.
    pub fn starts(&self) -> usize {
        self.starts.len()
    }

    fn ensure_running(&mut self) -> Result<(), Error> {
        if self.running.is_some() {
            return Ok(());
        }
        let name = self.name();
        let why = self.failed.clone().unwrap_or_default();
        let restart = if self.handed_over.is_some() { Restart::Never } else { self.spec.restart };
        let Restart::OnFailure { backoff, max, within } = restart else {
            return Err(Error::Stopped { name, why });
        };
        let recent = self.starts.iter().filter(|t| t.elapsed() < within).count();
        if recent > max as usize {
            return Err(Error::Stopped { name, why: format!("{why}; restarted {max} times") });
        }
        let n = self.failures_in_a_row.saturating_sub(1).min(16);
        std::thread::sleep(backoff.saturating_mul(1 << n).min(MAX_BACKOFF));
        self.launch()
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        if let Some((ch, pid)) = self.running.take() {
            // Closing the channel ends a well-behaved component; brig then exits.
            drop(ch);
            end(pid, Duration::from_millis(500));
        }
        if let Some(pid) = self.handed_over.take() {
            end(pid, Duration::from_millis(500));
        }
    }
}

/// Waits up to `grace` for a component's brig to exit, then ends it.
fn end(pid: i32, grace: Duration) {
    let t = Instant::now();
    while t.elapsed() < grace {
        if let Ok(Some(_)) = brig_sys::process::wait(pid, true) {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    stop(pid);
}

/// Ends a component's brig (which tears its prison down) and reaps it.
fn stop(pid: i32) {
    let _ = brig_sys::process::kill(pid, libc::SIGKILL);
    let _ = brig_sys::process::wait(pid, false);
}
