//! The brig command line: `run`, `check`, `doctor`. Thin: parse, build the Plan, hand it to
//! brig-jail, print what happened, exit with the contract's status.
//!
//! Every line brig writes goes through [`write_out`] or [`write_err`] (`outln!`, `errln!`): the
//! print macros panic when a write fails, which would abort brig and lose the program's exit
//! status. The runtime ignores SIGPIPE, so a reader that went away comes back as EPIPE, and brig
//! just stops writing there; a full disk or a closed stream is the same. No output error changes
//! the exit status.
#![forbid(unsafe_code)]
#![deny(clippy::print_stdout, clippy::print_stderr)]

use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use brig_policy::{Flags, GrantFlag, Host};
use brig_sys::fs;
use clap::{Args, Parser, Subcommand};

mod learn;

/// A prison for untrusted code: the program touches only what it was explicitly given.
#[derive(Parser, Debug)]
#[command(name = "brig", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run COMMAND in a new prison.
    ///
    /// Exit status: the program's own; 128+N if it died of signal N; 124 if the wall-time limit
    /// ended it; 125 if brig refused or failed before the program ran; 126 found but not
    /// executable; 127 not found.
    Run(Box<RunArgs>),
    /// Print in plain words the authority a manifest grants, with warnings for risky grants.
    Check {
        /// The manifest (TOML) to describe.
        manifest: PathBuf,
        /// Also list every syscall group seccomp refuses, with its reason.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Probe the kernel and say which protection layers brig can enforce here.
    Doctor,
    /// Run COMMAND with a read-only view of the host (the current directory a throwaway copy,
    /// no network), record what it touched, and write a draft manifest to review.
    ///
    /// Replay the draft with `brig run -m FILE -- COMMAND` from the same directory. Exit status:
    /// the program's, as for `brig run`.
    Learn {
        /// Where to write the draft (default: stdout).
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// The program and its arguments.
        #[arg(trailing_var_arg = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Policy from a TOML manifest (see docs/manifest.md); flags extend it.
    #[arg(short = 'm', long, value_name = "MANIFEST")]
    manifest: Option<PathBuf>,
    /// Grant PATH read-only (at DEST inside, default the same path).
    #[arg(long, value_name = "PATH[:DEST]")]
    ro: Vec<String>,
    /// Grant PATH read and execute.
    #[arg(long, value_name = "PATH[:DEST]")]
    rx: Vec<String>,
    /// Grant PATH read, write and create.
    #[arg(long, value_name = "PATH[:DEST]")]
    rw: Vec<String>,
    /// Grant PATH read, write, create and execute.
    #[arg(long, value_name = "PATH[:DEST]")]
    rwx: Vec<String>,
    /// A private, size-limited tmpfs at DEST (read, write, create; with `:x` also exec).
    #[arg(long, value_name = "DEST[:x]")]
    tmpfs: Vec<String>,
    /// The everyday case: the current directory read-write-exec (the program starts there), a
    /// private home, an exec-capable /tmp.
    #[arg(short = 'w', long)]
    workspace: bool,
    /// Do not mount the OS runtime (/usr, /lib*, /bin, /sbin, a few /etc files).
    #[arg(long)]
    no_system: bool,
    /// Working directory inside the prison (default /).
    #[arg(long, value_name = "DIR")]
    chdir: Option<String>,
    /// Pass NAME from the environment, or set NAME=VALUE.
    #[arg(long, value_name = "NAME[=VALUE]")]
    env: Vec<String>,
    /// Network: only `none` (a private namespace with loopback); reach the outside through
    /// --egress, or --listen and --connect capabilities.
    #[arg(long, value_name = "MODE")]
    net: Option<String>,
    /// Let the prison reach HOST:PORT by name, for any TCP client: its DNS lookups are answered
    /// by brig, and brig connects from the host's network, checking name and port. Repeatable;
    /// `*.example.org:443` patterns (never reaching local or private addresses).
    #[arg(long, value_name = "HOST:PORT")]
    egress: Vec<String>,
    /// Capability: a directory fd, with rights r (default), rw, rwc or rx beneath it.
    #[arg(long = "dir", value_name = "NAME=PATH[:RIGHTS]")]
    cap_dir: Vec<String>,
    /// Capability: a file fd; MODE is read (default), write, append or create.
    #[arg(long = "file", value_name = "NAME=PATH[:MODE]")]
    cap_file: Vec<String>,
    /// Capability: a socket bound and listening in the host's network (fds from 3, LISTEN_FDS).
    #[arg(long = "listen", value_name = "NAME=tcp://ADDR:PORT|unix:PATH")]
    cap_listen: Vec<String>,
    /// Capability: a socket connected by brig; the program has no other network.
    #[arg(long = "connect", value_name = "NAME=tcp://HOST:PORT|unix:PATH")]
    cap_connect: Vec<String>,
    /// Capability: a file's bytes in a sealed read-only memfd. NAME stdin, stdout or stderr
    /// puts a capability at fd 0, 1 or 2.
    #[arg(long = "data", value_name = "NAME=PATH")]
    cap_data: Vec<String>,
    /// Capability: one end of a channel, a unix seqpacket socket brig inherited at fd FD (3 or
    /// more) from its caller; how components are joined (docs/components.md).
    #[arg(long = "channel", value_name = "NAME=FD")]
    cap_channel: Vec<String>,
    /// Capability mode from exec on: the program acts only through the fds it holds (static
    /// binaries; others enter it themselves through brig-caps).
    #[arg(long)]
    capability_mode: bool,
    /// Wall-clock limit for the whole prison (e.g. 30s, 500ms, 2m); exit 124 when reached.
    #[arg(long, value_name = "DUR")]
    wall: Option<String>,
    /// CPU-time limit per process (rlimit).
    #[arg(long, value_name = "DUR")]
    cpu: Option<String>,
    /// Memory limit (e.g. 256MiB): a memory cgroup, which counts all the prison's memory
    /// (anonymous, tmpfs, memfd, pipes, page cache); refused where brig cannot make one, unless
    /// --best-effort (then RLIMIT_DATA: anonymous memory only).
    #[arg(long, value_name = "SIZE")]
    mem: Option<String>,
    /// Task limit: processes and threads together (Linux counts both). A pids cgroup where
    /// brig can make one, else RLIMIT_NPROC. Default 4096 (a JVM runs 1,000+ threads).
    #[arg(long, value_name = "N")]
    procs: Option<String>,
    /// Largest file the program may write.
    #[arg(long, value_name = "SIZE")]
    fsize: Option<String>,
    /// Open-file limit. Default 1024.
    #[arg(long, value_name = "N")]
    nofile: Option<String>,
    /// Size of the private /tmp. Default 256MiB.
    #[arg(long, value_name = "SIZE")]
    tmp_size: Option<String>,
    /// Remove a seccomp group or syscall from the deny-list (e.g. @debug). Warned about.
    #[arg(long, value_name = "@GROUP|NAME", value_delimiter = ',')]
    allow_syscalls: Vec<String>,
    /// Add a seccomp group or syscall to the deny-list.
    #[arg(long, value_name = "@GROUP|NAME", value_delimiter = ',')]
    deny_syscalls: Vec<String>,
    /// Allow-list: refuse every syscall but these (and the exec that starts the program), for
    /// programs whose needs are known, such as components.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    only_syscalls: Vec<String>,
    /// Run even if a protection layer is unavailable, and report it.
    #[arg(long)]
    best_effort: bool,
    /// Say each refusal as it happens, on brig's stderr: what was refused, which layer refused
    /// it, and the flag that would grant it; a summary at exit (also in --report).
    #[arg(long)]
    explain: bool,
    /// When an open is refused, ask on your terminal (never the program's) whether to allow it
    /// once, always (this run) or not; on yes brig opens the file and hands it over.
    #[arg(long)]
    ask: bool,
    /// How long --ask waits for an answer before it is no (default 30s).
    #[arg(long, value_name = "DUR")]
    ask_timeout: Option<String>,
    /// A pseudo-terminal of the prison's own: auto (when stdio is a terminal; default), always,
    /// or never (the program then holds your terminal).
    #[arg(long, value_name = "auto|always|never")]
    pty: Option<String>,
    /// Write a JSON report (layers, limits, exit cause, timings) to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Do not print the warnings about risky grants and capabilities (brig check shows them).
    /// Warnings about missing protection layers are always printed.
    #[arg(short, long)]
    quiet: bool,
    /// Run one component of a group manifest alone (its channel ends given with --channel);
    /// `brig run -m GROUP.toml` with no other flags runs the whole group (docs/components.md).
    #[arg(long, value_name = "NAME")]
    component: Option<String>,
    /// The group supervisor's plumbing: read the manifest's text from inherited fd N (-m
    /// names it).
    #[arg(long, value_name = "N", hide = true)]
    manifest_fd: Option<i32>,
    /// The group supervisor's plumbing: write a byte to inherited fd N when the program is
    /// about to be executed.
    #[arg(long, value_name = "N", hide = true)]
    ready_fd: Option<i32>,
    /// The group supervisor's plumbing: die (SIGKILL) when process PID, brig's parent, dies.
    #[arg(long, value_name = "PID", hide = true)]
    group_parent: Option<u32>,
    /// The program and its arguments.
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    command: Vec<String>,
}

const REFUSED: u8 = 125;

/// `println!` that cannot panic: see the module comment.
macro_rules! outln {
    ($($arg:tt)*) => { write_out(&format!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` that cannot panic: see the module comment.
macro_rules! errln {
    ($($arg:tt)*) => { write_err(&format!("{}\n", format_args!($($arg)*))) };
}

/// Writes `text` to stdout in one call; a failed write is dropped (see the module comment).
fn write_out(text: &str) {
    write_all(&mut std::io::stdout().lock(), text);
}

/// Writes `text` to stderr in one call; a failed write is dropped (see the module comment).
fn write_err(text: &str) {
    write_all(&mut std::io::stderr().lock(), text);
}

fn write_all(w: &mut impl std::io::Write, text: &str) {
    // Nowhere to report it: the stream that failed is where the report would go.
    let _ = w.write_all(text.as_bytes()).and_then(|()| w.flush());
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { REFUSED } else { 0 });
        }
    };
    let result = match cli.cmd {
        Cmd::Run(args) => run(*args),
        Cmd::Check { manifest, verbose } => check(&manifest, verbose),
        Cmd::Doctor => Ok(doctor()),
        Cmd::Learn { output, command } => learn(output.as_deref(), command),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            errln!("brig: {e:#}");
            ExitCode::from(REFUSED)
        }
    }
}

fn host() -> anyhow::Result<Host> {
    Ok(Host {
        cwd: std::env::current_dir().context("cannot read the current directory")?,
        env: std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
    })
}

fn read_manifest(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read manifest {}", path.display()))
}

/// The manifest's text: from the file, or from the fd the group supervisor passed (a sealed
/// copy, so that a member cannot change what a later start reads).
fn manifest_text(args: &RunArgs) -> anyhow::Result<Option<String>> {
    let (Some(path), Some(fd)) = (&args.manifest, args.manifest_fd) else {
        return args.manifest.as_deref().map(read_manifest).transpose();
    };
    use std::os::unix::fs::FileExt;
    let fd = brig_sys::fdpass::claim_inherited(fd).context("--manifest-fd")?;
    let file = std::fs::File::from(fd);
    // From offset 0: every member shares the one open file (and its offset).
    let read = || -> std::io::Result<String> {
        let mut bytes = vec![0u8; usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX)];
        file.read_exact_at(&mut bytes, 0)?;
        String::from_utf8(bytes).map_err(std::io::Error::other)
    };
    let text = read()
        .with_context(|| format!("cannot read manifest {} from --manifest-fd", path.display()))?;
    Ok(Some(text))
}

fn build_flags(args: &RunArgs) -> Flags {
    let mut grants = Vec::new();
    for (flag, list) in [
        (GrantFlag::Ro, &args.ro),
        (GrantFlag::Rx, &args.rx),
        (GrantFlag::Rw, &args.rw),
        (GrantFlag::Rwx, &args.rwx),
    ] {
        grants.extend(list.iter().map(|s| (flag, s.clone())));
    }
    Flags {
        grants,
        tmpfs: args.tmpfs.clone(),
        no_system: args.no_system,
        chdir: args.chdir.clone(),
        env: args.env.clone(),
        net: args.net.clone(),
        wall: args.wall.clone(),
        cpu: args.cpu.clone(),
        mem: args.mem.clone(),
        procs: args.procs.clone(),
        fsize: args.fsize.clone(),
        nofile: args.nofile.clone(),
        tmp_size: args.tmp_size.clone(),
        allow_syscalls: args.allow_syscalls.clone(),
        deny_syscalls: args.deny_syscalls.clone(),
        only_syscalls: args.only_syscalls.clone(),
        best_effort: args.best_effort,
        explain: args.explain,
        egress: args.egress.clone(),
        ask: args.ask,
        ask_timeout: args.ask_timeout.clone(),
        pty: args.pty.clone(),
        workspace: args.workspace,
        caps: [
            ("dir", &args.cap_dir),
            ("file", &args.cap_file),
            ("listen", &args.cap_listen),
            ("connect", &args.cap_connect),
            ("data", &args.cap_data),
            ("channel", &args.cap_channel),
        ]
        .into_iter()
        .flat_map(|(k, v)| v.iter().map(move |s| (k, s.clone())))
        .collect(),
        capability_mode: args.capability_mode,
        command: args.command.clone(),
        component: args.component.clone(),
    }
}

/// Opens the report file before the prison exists, by the grants' rule, so that a program that
/// can write a directory on the way cannot redirect brig's write (brig may be root): only root's
/// symlinks (the system's own, like /var/run -> /run) are followed, anywhere on the path, and any
/// other is refused, naming the real path (`brig_jail::grants::walk_root_links`). The file is
/// then opened from its directory's fd without following anything, so nothing swapped in
/// meanwhile is followed either. Only a regular file with one link is written: anything else is
/// looked at through an `O_PATH` fd and never opened (a FIFO would hang brig, opening a device
/// can act).
fn open_report(path: &Path) -> anyhow::Result<std::fs::File> {
    use brig_jail::grants::{walk_root_links, WalkError};
    let shown = path.display();
    let abs = std::env::current_dir().context("cannot read the current directory")?.join(path);
    let w = match walk_root_links(&abs) {
        Ok(w) => w,
        Err(WalkError::Foreign { at, uid, real }) => anyhow::bail!(
            "report {shown} goes through the symlink {} (owned by uid {uid}), which brig refuses \
             (only root's links are followed); give the real path ({})",
            at.display(),
            real.display()
        ),
        Err(WalkError::Io { at, source }) => {
            anyhow::bail!("cannot open report {shown}: {}: {source}", at.display())
        }
    };
    anyhow::ensure!(!w.name.is_empty(), "report {shown} is a directory; give a regular file");
    let name = Path::new(&w.name);
    match fs::openat2(Some(w.dir.as_fd()), name, O_PATH_NOFOLLOW, 0, NO_LINKS) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create_report(w.dir.as_fd(), name, &w.real, path)
        }
        Err(e) => anyhow::bail!("cannot open report {shown}: {}: {e}", w.real.display()),
        Ok(fd) => {
            let fd = std::fs::File::from(fd);
            let meta = fd.metadata().with_context(|| format!("report {shown}"))?;
            reopen_report(&fd, &meta, path)
        }
    }
}

/// `O_PATH | O_NOFOLLOW`: what a name is, without following or opening it.
const O_PATH_NOFOLLOW: i32 = libc::O_PATH | libc::O_NOFOLLOW;
/// One name beneath its directory, following no link of any kind.
const NO_LINKS: u64 = fs::resolve::NO_SYMLINKS | fs::resolve::NO_MAGICLINKS | fs::resolve::BENEATH;

/// The report file does not exist: made new in its directory, never an existing one.
fn create_report(
    dir: std::os::fd::BorrowedFd<'_>,
    name: &Path,
    here: &Path,
    shown: &Path,
) -> anyhow::Result<std::fs::File> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY;
    match fs::openat2(Some(dir), name, flags, 0o644, NO_LINKS) {
        Ok(fd) => Ok(fd.into()),
        Err(e) => Err(e).with_context(|| {
            format!("cannot create report {} ({})", shown.display(), here.display())
        }),
    }
}

/// The report file exists: written only if it is a regular file with one link, re-opened for
/// writing through the `O_PATH` fd that was checked (so it is the same file), then emptied.
fn reopen_report(
    fd: &std::fs::File,
    meta: &std::fs::Metadata,
    shown: &Path,
) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
    let shown = shown.display();
    let t = meta.file_type();
    let not_regular = if t.is_dir() {
        Some("is a directory")
    } else if t.is_fifo() {
        Some("is a FIFO")
    } else if t.is_socket() {
        Some("is a socket")
    } else if t.is_char_device() {
        Some("is a character device")
    } else if t.is_block_device() {
        Some("is a block device")
    } else if !t.is_file() {
        Some("is not a regular file")
    } else {
        None
    };
    if let Some(what) = not_regular {
        anyhow::bail!("report {shown} {what}; give a regular file");
    }
    anyhow::ensure!(
        meta.nlink() == 1,
        "report {shown} has {} hard links, and brig writes only a file with one; give a new file",
        meta.nlink()
    );
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .with_context(|| format!("cannot open report {shown}"))?;
    f.set_len(0).with_context(|| format!("cannot empty report {shown}"))?;
    Ok(f)
}

fn run(args: RunArgs) -> anyhow::Result<u8> {
    if let Some(parent) = args.group_parent {
        // A member of a group dies with its supervisor (and its prison with it).
        brig_sys::process::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as u64)
            .context("--group-parent: PR_SET_PDEATHSIG")?;
        anyhow::ensure!(
            std::os::unix::process::parent_id() == parent,
            "--group-parent: the group's supervisor (pid {parent}) is gone"
        );
    }
    let flags = build_flags(&args);
    let text = manifest_text(&args)?;
    let manifest = args.manifest.as_deref().zip(text.as_deref());
    if let Some((file, text)) = manifest.filter(|_| args.component.is_none()) {
        if let Some(group) = brig_policy::Manifest::parse(file, text)?.group {
            let bare = Flags { component: None, ..flags.clone() } == Flags::default();
            anyhow::ensure!(
                bare && args.report.is_none() && args.ready_fd.is_none() && !args.quiet,
                "{} is a group of components: its policy is all in the manifest; run it with \
                 `brig run -m {}` and no other flags (put them in a [component.NAME]), or run one \
                 component with --component NAME",
                file.display(),
                file.display()
            );
            return Ok(brig_jail::group::run(file, text, &group)?);
        }
    }
    let mut plan = brig_policy::plan(&flags, manifest, &host()?)?;
    plan.ready_fd = args.ready_fd;
    if !args.quiet {
        for w in brig_policy::check::risks(&plan, home().as_deref()) {
            errln!("brig: warning: {w}");
        }
    }
    let report_file = args.report.as_deref().map(open_report).transpose()?;
    let report = brig_jail::run(&plan);
    for w in &report.warnings {
        errln!("brig: warning: {w}");
    }
    if let (Some(mut f), Some(path)) = (report_file, &args.report) {
        use std::io::Write;
        // The program has run: a report that cannot be written is said, and the exit status
        // stays the program's.
        let written = serde_json::to_string_pretty(&report)
            .map_err(std::io::Error::other)
            .and_then(|json| f.write_all((json + "\n").as_bytes()));
        if let Err(e) = written {
            errln!("brig: warning: cannot write the report {}: {e}", path.display());
        }
    }
    if !report.exit.message.is_empty() {
        errln!("{}", report.exit.message);
    }
    if !report.allowed_always.is_empty() {
        errln!("brig: you allowed for this run only; to keep it, add to a manifest:");
        for l in &report.allowed_always {
            errln!("  {l}");
        }
    }
    // A limit brig already named (memory, wall time) needs no hint.
    let failed =
        ["exited", "signaled"].contains(&report.exit.cause.as_str()) && report.exit.status != 0;
    if let Some(s) = brig_jail::explain::summary(&report.refusals, plan.explain, failed) {
        errln!("{s}");
    }
    Ok(report.exit.status.clamp(0, 255) as u8)
}

/// `brig learn`: see `learn.rs`.
fn learn(output: Option<&Path>, command: Vec<String>) -> anyhow::Result<u8> {
    let host = host()?;
    let cwd = host.cwd.clone();
    if cwd == Path::new("/") {
        anyhow::bail!("brig learn copies the current directory for the run: run it from a project directory, not /");
    }
    // The report file is opened first, like --report: a bad path is refused before the run.
    let out_file = output.map(open_report).transpose()?;
    let scratch = Scratch(std::env::temp_dir().join(format!("brig-learn-{}", std::process::id())));
    learn::copy_tree(&cwd, &scratch.0)
        .with_context(|| format!("cannot copy {} for the learning run", cwd.display()))?;
    let mut grants: Vec<(GrantFlag, String)> = learn::host_view()
        .context("cannot list /")?
        .into_iter()
        .filter(|(_, dest)| *dest != cwd)
        .map(|(src, dest)| (GrantFlag::Rx, format!("{}:{}", src.display(), dest.display())))
        .collect();
    grants.push((GrantFlag::Rwx, format!("{}:{}", scratch.0.display(), cwd.display())));
    let flags = Flags {
        grants,
        tmpfs: vec!["/tmp:x".into()],
        no_system: true,
        chdir: Some(cwd.display().to_string()),
        // The home the replay has: brig's private one, not the host's (visible read-only here).
        env: vec![format!("HOME={}", brig_policy::flags::PRISON_HOME)],
        command: command.clone(),
        ..Flags::default()
    };
    let mut plan = brig_policy::plan(&flags, None, &host)?;
    plan.learn = true;
    errln!(
        "brig: learning: the host read-only, {} a throwaway copy, /tmp private, no network",
        cwd.display()
    );
    let report = brig_jail::run(&plan);
    drop(scratch);
    if !report.exit.message.is_empty() {
        errln!("{}", report.exit.message);
    }
    if report.exit.cause == "refused" {
        return Ok(REFUSED);
    }
    let text = learn::draft(&command, &cwd, &report.touched, &report.refusals, home().as_deref());
    // The draft must be a manifest brig reads; a draft that is not is brig's bug, said as such.
    let name = output.unwrap_or(Path::new("draft.toml"));
    brig_policy::plan_for_check(Some((name, &text)), &host).map_err(|e| {
        anyhow::anyhow!("the draft does not parse ({e}); this is a bug in brig learn:\n{text}")
    })?;
    let grants = text.lines().filter(|l| l.starts_with('"')).count();
    match out_file {
        Some(mut f) => {
            use std::io::Write;
            f.write_all(text.as_bytes())
                .with_context(|| format!("cannot write {}", name.display()))?;
            errln!(
                "brig: draft with {grants} grants written to {}; review it, then: brig run -m {} -- {}",
                name.display(),
                name.display(),
                command.join(" ")
            );
        }
        None => write_out(&text),
    }
    Ok(report.exit.status.clamp(0, 255) as u8)
}

/// A directory removed when dropped (the learning run's copy).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The caller's home directory, for the risk check.
fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn check(manifest: &Path, verbose: bool) -> anyhow::Result<u8> {
    let text = read_manifest(manifest)?;
    let Some(group) = brig_policy::Manifest::parse(manifest, &text)?.group else {
        let plan = brig_policy::plan_for_check(Some((manifest, text.as_str())), &host()?)?;
        write_out(&describe(&plan, verbose)?);
        return Ok(0);
    };
    let mut out = String::new();
    for l in group.describe(manifest) {
        out.push_str(&format!("{l}\n"));
    }
    for m in group.start_order() {
        // The plan each member's brig builds: its table, and its channel ends as the
        // supervisor passes them.
        let flags = group.member_flags(&m.name);
        let plan = brig_policy::plan(&flags, Some((manifest, text.as_str())), &host()?)?;
        out.push_str(&format!("\n{}\n", group.heading(m)));
        for l in describe(&plan, verbose)?.lines() {
            out.push_str(&format!("  {l}\n"));
        }
    }
    write_out(&out);
    Ok(0)
}

/// `brig check`'s text for one plan: its authority, then the kernel surface seccomp refuses.
fn describe(plan: &brig_policy::Plan, verbose: bool) -> anyhow::Result<String> {
    let summary = brig_policy::check::describe(plan, home().as_deref());
    let mut denied = brig_jail::seccomp::Policy::default_deny();
    for name in &plan.syscalls.allow {
        denied.allow(name).map_err(anyhow::Error::msg)?;
    }
    for name in &plan.syscalls.deny {
        denied.deny(name).map_err(anyhow::Error::msg)?;
    }
    let seccomp = if verbose {
        format!("{}{}", brig_policy::system::describe(), describe_seccomp(&denied))
    } else {
        format!(
            "Kernel surface refused by seccomp: {} syscalls in {} groups (brig check --verbose \
             lists them with their reasons)\n",
            denied.denied_names().len(),
            brig_jail::seccomp::groups().len()
        )
    };
    Ok(format!("{summary}{seccomp}"))
}

/// The deny-list by group, in plain words, marking the syscalls refused only for some arguments.
fn describe_seccomp(policy: &brig_jail::seccomp::Policy) -> String {
    use brig_jail::seccomp::{groups, RuleAction};
    let denied = policy.denied_names();
    let mut out = String::from("Kernel surface refused by seccomp:\n");
    for g in groups() {
        let names: Vec<String> = g
            .syscalls
            .iter()
            .filter(|r| denied.contains(&r.name))
            .map(|r| match r.action {
                RuleAction::Errno(_) => r.name.to_string(),
                RuleAction::CloneFlags => format!("{} (namespace flags only)", r.name),
                RuleAction::Ioctl => format!("{} (TIOCSTI and TIOCLINUX only)", r.name),
                RuleAction::SocketFamily => {
                    format!("{} (families other than unix, inet, inet6)", r.name)
                }
                RuleAction::Personality => format!("{} (anything but the default)", r.name),
                RuleAction::NoFastOpen(_) => format!("{} (with MSG_FASTOPEN only)", r.name),
                RuleAction::Broker => format!("{} (answered by the broker)", r.name),
                RuleAction::NoSetid(_) | RuleAction::NoSetidCreate { .. } => {
                    format!("{} (setuid/setgid bits only)", r.name)
                }
                RuleAction::MemfdNoExec => format!("{} (made non-executable)", r.name),
                RuleAction::NotPid1(_) | RuleAction::NotPid1Who { .. } => {
                    format!("{} (aimed at pid 1 only)", r.name)
                }
            })
            .collect();
        if !names.is_empty() {
            out.push_str(&format!("  {}: {}\n      {}\n", g.name, names.join(", "), g.why));
        }
    }
    out.push_str(
        "  and every architecture but x86_64, the x32 ABI, and syscalls newer than brig's table\n",
    );
    out.push_str("Answered by brig's broker instead of the kernel:\n");
    for r in brig_jail::seccomp::brokered().iter().filter(|r| denied.contains(&r.name)) {
        out.push_str(&format!("  {}: {}\n", r.name, r.why));
    }
    out
}

fn doctor() -> u8 {
    let findings = brig_jail::doctor::probe();
    let mut missing_required = false;
    outln!("Kernel features:");
    for f in &findings {
        let mark = if f.ok {
            "ok  "
        } else if f.required {
            "MISSING"
        } else {
            "no  "
        };
        outln!("  {mark:7} {:28} {}", f.feature, f.detail);
        missing_required |= f.required && !f.ok;
    }
    // The proof: a real prison with the default policy.
    let plan = match brig_policy::plan(
        &Flags { command: vec!["/bin/true".into()], ..Flags::default() },
        None,
        &Host { cwd: "/".into(), env: vec![] },
    ) {
        Ok(p) => p,
        Err(e) => {
            outln!("cannot build the default plan: {e}");
            return 1;
        }
    };
    let report = brig_jail::run(&plan);
    outln!("Layers of the default policy, from a real run of /bin/true:");
    for l in &report.layers {
        outln!("  {:12} {:22} {}", format!("{:?}", l.state).to_lowercase(), l.name, l.detail);
    }
    if report.exit.status != 0 {
        outln!("  the default policy cannot be enforced here: {}", report.exit.message);
        return 1;
    }
    if missing_required {
        outln!("some required feature is missing; brig run will refuse (or use --best-effort)");
        return 1;
    }
    outln!("brig can enforce its default policy on this machine.");
    0
}
