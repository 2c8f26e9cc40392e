//! The container lifecycle of the runtime spec, on the host side: `create` (pid 1 set up and
//! parked), `start`, `state`, `kill`, `delete`. Layout (docs/oci.md "Lifecycle"):
//!
//! ```text
//! brig-oci create C ─fork→ S: brig's supervisor (brig_jail::run with an OciPlan::gate)
//!     │                      └─ clone(CLONE_PARENT | CLONE_NEW*) → P: pid 1, C's child, parked
//!     └─ reads "P <pid>" from S, writes state.json and the pid file, exits (P is adopted)
//! ```

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::{AsFd, IntoRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use brig_policy::Gate;
use brig_sys::process;

use crate::hooks::{self, When};
use crate::log::Log;
use crate::state::{self, Container, State, Status};

/// `create`: the container's pid 1 is set up in its namespaces and waits for `start`; its pid
/// goes to `pid_file`.
pub fn create(
    root: &Path,
    bundle: &Path,
    id: &str,
    pid_file: Option<&Path>,
    console: Option<&Path>,
    log: &Log,
) -> anyhow::Result<()> {
    state::check_id(id)?;
    let bundle = std::path::absolute(bundle)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .with_context(|| format!("create the state directory {}", root.display()))?;
    let dir = state::dir_of(root, id);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("container {id:?} already exists ({})", dir.display())
        }
        Err(e) => return Err(e).with_context(|| format!("create {}", dir.display())),
    }
    let made = create_in(&dir, &bundle, id, pid_file, console, log);
    if made.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    made
}

fn create_in(
    dir: &Path,
    bundle: &Path,
    id: &str,
    pid_file: Option<&Path>,
    console: Option<&Path>,
    log: &Log,
) -> anyhow::Result<()> {
    // The config is read once, here: later changes to the bundle do not reach the container
    // (`exec` reads the copy kept in the state directory).
    let spec = crate::config::load(bundle)?;
    spec.save(dir.join("config.json")).context("keep a copy of config.json")?;
    let mut warnings = Vec::new();
    let mut plan = crate::config::plan(bundle, &spec, id, &mut warnings)?;
    for w in &warnings {
        log.warn(w);
    }
    crate::devices::add(&mut plan, &spec, &dir.join("dev"))?;
    let own_cgroup = plan.oci.cgroup.is_some();
    let terminal = spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    let console = match (terminal, console) {
        (true, Some(path)) => Some(
            std::os::unix::net::UnixStream::connect(path)
                .with_context(|| format!("--console-socket {}", path.display()))?,
        ),
        (true, None) => {
            bail!("process.terminal: give --console-socket, where the terminal's master is sent")
        }
        (false, Some(_)) => {
            log.warn("--console-socket is ignored: the config asks for no terminal");
            None
        }
        (false, None) => None,
    };
    let fifo_path = dir.join("exec.fifo");
    brig_sys::fs::mkfifo(&fifo_path, 0o600).context("create exec.fifo")?;
    // Opened read-write: the open does not wait for a writer, and pid 1 reads it.
    let fifo = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&fifo_path)
        .context("open exec.fifo")?;
    let (created_r, created_w) = brig_sys::fs::pipe().context("pipe")?;
    let supervisor_pid = match process::fork().context("fork brig's supervisor")? {
        None => {
            drop(created_r);
            // A copy for an error said before pid 1 parked; launch owns the other.
            let spare = created_w.try_clone().unwrap_or_else(|_| process::exit_now(125));
            plan.oci.gate =
                Some(Gate { fifo_fd: fifo.into_raw_fd(), created_fd: created_w.into_raw_fd() });
            plan.oci.console_fd = console.map(IntoRawFd::into_raw_fd);
            supervisor(&plan, spare, dir, &warnings, log)
        }
        Some(pid) => pid,
    };
    drop(fifo);
    drop(created_w);
    drop(console);
    let said = read_lines(std::fs::File::from(created_r), 2)?;
    let line = said.first().map_or("", String::as_str);
    let Some(pid) = line.strip_prefix("P ").and_then(|p| p.trim().parse::<i32>().ok()) else {
        bail!("{}", line.strip_prefix("E ").unwrap_or("brig's supervisor ended without a word"));
    };
    let layers = said.get(1).map_or_else(BTreeMap::new, |l| state::layers(l));
    let start_time = state::start_time(pid).context("the container's pid 1 ended at once")?;
    let annotations = spec.annotations().clone().unwrap_or_default().into_iter().collect();
    let c = Container {
        dir: dir.to_path_buf(),
        state: State {
            id: id.to_string(),
            pid,
            start_time,
            supervisor: supervisor_pid,
            bundle: bundle.to_path_buf(),
            created: crate::log::now(),
            annotations,
            hooks: spec.hooks().clone(),
            layers,
            own_cgroup,
        },
    };
    c.save()?;
    let created = hooks::of(c.state.hooks.as_ref(), When::CreateRuntime);
    if let Err(e) = hooks::run_all(&created, &c.oci_state()) {
        // The container never existed for the caller: stopped and removed, then the error.
        let _ = stop(&c);
        return Err(e.context("createRuntime"));
    }
    if let Some(f) = pid_file {
        // Decimal, no newline, through a rename: runc's form, which the engines parse.
        let f = std::path::absolute(f)?;
        state::write_atomic(&f, pid.to_string().as_bytes())?;
    }
    Ok(())
}

/// S: brig's supervisor for the container's whole life. Never returns.
fn supervisor(
    plan: &brig_policy::Plan,
    created: OwnedFd,
    dir: &Path,
    config_warnings: &[String],
    log: &Log,
) -> ! {
    // Out of the caller's session: a terminal hang-up or the caller's group signals are not ours.
    let _ = process::setsid();
    let mut report = brig_jail::run(plan);
    report.warnings.splice(0..0, config_warnings.iter().cloned());
    // Refused before pid 1 parked: `create` is still reading and says why. Otherwise nobody
    // reads (the write fails quietly) and the container's own status is its exit.
    let mut said = report.exit.message.clone();
    if said.is_empty() {
        said = "the container ended before it was created".into();
    }
    let _ = brig_sys::fs::write(created.as_fd(), format!("E {said}\n").as_bytes());
    for w in report.warnings.iter().skip(config_warnings.len()) {
        log.warn(w);
    }
    if let Ok(json) = serde_json::to_vec_pretty(&report) {
        let _ = state::write_atomic(&dir.join("report.json"), &json);
    }
    process::exit_now(0)
}

/// Reads up to the first newline (or the end).
fn read_lines(mut r: std::fs::File, lines: usize) -> anyhow::Result<Vec<String>> {
    let mut text = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        let n = r.read(&mut b).context("read from brig's supervisor")?;
        text.extend_from_slice(&b[..n]);
        if n == 0 || text.iter().filter(|&&c| c == b'\n').count() >= lines {
            break;
        }
    }
    let text = String::from_utf8_lossy(&text);
    Ok(text.split('\n').take(lines).map(String::from).collect())
}

/// How long `start` waits for the program's exec before the poststart hooks.
const EXEC_WAIT: Duration = Duration::from_secs(10);

/// `start`: runs the prestart hooks, releases a created container's pid 1, which starts the
/// program, then, once the program has executed, runs the poststart hooks. A failed prestart
/// hook stops and deletes the container (poststop hooks included) and is `start`'s error; a
/// failed poststart hook is a warning.
pub fn start(root: &Path, id: &str, log: &Log) -> anyhow::Result<()> {
    let c = Container::load(root, id)?;
    match c.status() {
        Status::Created => {}
        s => bail!("container {id:?} is {}: only a created container can be started", s.name()),
    }
    let pre = hooks::of(c.state.hooks.as_ref(), When::Prestart);
    if let Err(e) = hooks::run_all(&pre, &c.oci_state()) {
        destroy(&c, log)?;
        return Err(e.context("prestart; the container was stopped and deleted"));
    }
    let fifo = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(c.fifo())
        .with_context(|| format!("open {}", c.fifo().display()))?;
    brig_sys::fs::write(fifo.as_fd(), b"s").context("release the container's pid 1")?;
    std::fs::remove_file(c.fifo()).context("remove exec.fifo")?;
    // pid 1 holds the fifo's only reader until the program has executed: the poststart hooks
    // run after that (the spec's order), once our writer sees no reader left (POLLERR).
    let post = hooks::of(c.state.hooks.as_ref(), When::Poststart);
    if !post.is_empty() {
        let gone = process::poll(&[(fifo.as_fd(), 0)], Some(EXEC_WAIT));
        if !gone.is_ok_and(|r| r[0] & libc::POLLERR != 0) {
            log.warn("poststart: the program had not executed after 10 s; the hooks run now");
        }
    }
    hooks::run_each(&post, &c.oci_state(), &|w| log.warn(&format!("poststart: {w}")));
    Ok(())
}

/// `state`: the runtime spec's state, as JSON on stdout.
pub fn show(root: &Path, id: &str) -> anyhow::Result<()> {
    let c = Container::load(root, id)?;
    // brig's layers join the config's annotations here (not in what the hooks get).
    let mut state = c.oci_state();
    let all = c.state.annotations.iter().chain(&c.state.layers);
    state["annotations"] = serde_json::json!(all.collect::<BTreeMap<_, _>>());
    println!("{}", serde_json::to_string_pretty(&state)?);
    Ok(())
}

/// `kill`: sends `signal` to the container's pid 1, which forwards it to the program.
pub fn kill(root: &Path, id: &str, signal: &str) -> anyhow::Result<()> {
    let c = Container::load(root, id)?;
    let sig = signal_number(signal)?;
    if c.status() == Status::Stopped {
        bail!("container {id:?} is not running");
    }
    signal_pid1(&c, sig)
}

fn signal_pid1(c: &Container, sig: i32) -> anyhow::Result<()> {
    let pidfd = process::pidfd_open(c.state.pid).context("container not running")?;
    // The pidfd is of that process for good: check it is still pid 1 of this container.
    if state::start_time(c.state.pid) != Some(c.state.start_time) {
        bail!("container {:?} is not running", c.state.id);
    }
    process::pidfd_kill(pidfd.as_fd(), sig).context("signal the container's pid 1")
}

/// `delete`: removes a stopped container; a created one is killed first (runc's behaviour,
/// which containerd relies on); a running one only with `--force`.
pub fn delete(root: &Path, id: &str, force: bool, log: &Log) -> anyhow::Result<()> {
    let c = match Container::load(root, id) {
        Ok(c) => c,
        Err(_) if force && state::check_id(id).is_ok() => {
            let _ = std::fs::remove_dir_all(state::dir_of(root, id));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    match c.status() {
        Status::Stopped => {}
        s @ (Status::Running | Status::Paused) if !force => {
            bail!("container {id:?} is {}: stop it first (kill), or delete --force", s.name())
        }
        Status::Created | Status::Running | Status::Paused => {}
    }
    destroy(&c, log)
}

/// Kills pid 1 (the whole pid namespace with it) and waits until it is gone.
fn stop(c: &Container) -> anyhow::Result<()> {
    // A frozen process takes no signal: thaw it first.
    if let Some(f) = c.freezer() {
        let _ = std::fs::write(f.join("freezer.state"), "THAWED");
    }
    let _ = signal_pid1(c, libc::SIGKILL);
    let until = Instant::now() + Duration::from_secs(10);
    while c.status() != Status::Stopped {
        if Instant::now() > until {
            bail!("container {:?}: pid {} did not die after SIGKILL", c.state.id, c.state.pid);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // brig's supervisor writes the report into the directory as the container ends: let it.
    if let Ok(s) = process::pidfd_open(c.state.supervisor) {
        let _ = process::poll_readable(&[s.as_fd()], Some(Duration::from_secs(5)));
    }
    let _ = std::fs::remove_dir_all(&c.dir);
    Ok(())
}

/// Stops the container if it still runs, removes its state, then runs the poststop hooks
/// (their failures are warnings).
fn destroy(c: &Container, log: &Log) -> anyhow::Result<()> {
    let state = c.oci_state();
    stop(c)?;
    if c.dir.exists() {
        std::fs::remove_dir_all(&c.dir).with_context(|| format!("remove {}", c.dir.display()))?;
    }
    let post = hooks::of(c.state.hooks.as_ref(), When::Poststop);
    hooks::run_each(&post, &state, &|w| log.warn(&format!("poststop: {w}")));
    Ok(())
}

/// A signal by name (`KILL`, `SIGKILL`) or number.
pub fn signal_number(s: &str) -> anyhow::Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        anyhow::ensure!((1..=64).contains(&n), "signal {n} is out of range (1-64)");
        return Ok(n);
    }
    let name = s.strip_prefix("SIG").unwrap_or(s).to_ascii_uppercase();
    let n = match name.as_str() {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => bail!("unknown signal {s:?}: give a name (TERM, KILL, SIGUSR1...) or a number"),
    };
    Ok(n)
}

/// `exec`: runs `process` (the container's own, changed as asked) inside a running container,
/// under the same layers; see brig_jail::exec. Returns its exit status, or 0 with `detach`.
pub fn exec(
    root: &Path,
    id: &str,
    process: oci_spec::runtime::Process,
    detach: bool,
    pid_file: Option<&Path>,
    console: Option<&Path>,
) -> anyhow::Result<i32> {
    let c = Container::load(root, id)?;
    if c.status() != Status::Running {
        bail!("container {id:?} is {}: exec needs a running container", c.status().name());
    }
    let pidfd = process::pidfd_open(c.state.pid).context("container not running")?;
    if state::start_time(c.state.pid) != Some(c.state.start_time) {
        bail!("container {id:?} is not running");
    }
    let mut spec = crate::config::load_file(&c.dir.join("config.json"))?;
    let terminal = process.terminal() == Some(true);
    spec.set_process(Some(process));
    let mut warnings = Vec::new();
    let plan = crate::config::plan(&c.state.bundle, &spec, id, &mut warnings)?;
    let console = match (terminal, console) {
        (true, Some(p)) => Some(OwnedFd::from(
            std::os::unix::net::UnixStream::connect(p)
                .with_context(|| format!("--console-socket {}", p.display()))?,
        )),
        (true, None) => bail!("--tty: give --console-socket, where the terminal's master is sent"),
        (false, _) => None,
    };
    let pid_file = pid_file.map(std::path::absolute).transpose()?;
    let mut started = |pid: i32| -> std::io::Result<()> {
        match &pid_file {
            Some(f) => {
                state::write_atomic(f, pid.to_string().as_bytes()).map_err(std::io::Error::other)
            }
            None => Ok(()),
        }
    };
    brig_jail::exec::exec(&plan, c.state.pid, pidfd, detach, console, &mut started)
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The container's own process (from the config kept at create), with `exec`'s options.
pub fn process_with(
    root: &Path,
    id: &str,
    args: Vec<String>,
    tty: bool,
    cwd: Option<std::path::PathBuf>,
    env: Vec<String>,
    user: Option<&str>,
) -> anyhow::Result<oci_spec::runtime::Process> {
    let c = Container::load(root, id)?;
    let spec = crate::config::load_file(&c.dir.join("config.json"))?;
    let mut p = spec.process().clone().context("the container's config has no process")?;
    anyhow::ensure!(!args.is_empty(), "exec: give the command to run (or --process FILE)");
    p.set_args(Some(args));
    p.set_terminal(Some(tty));
    if let Some(cwd) = cwd {
        p.set_cwd(cwd);
    }
    let mut all = p.env().clone().unwrap_or_default();
    for kv in env {
        anyhow::ensure!(kv.contains('='), "--env {kv:?}: give KEY=VALUE");
        let key = kv.split('=').next().unwrap_or_default().to_string();
        all.retain(|e| e.split('=').next() != Some(key.as_str()));
        all.push(kv);
    }
    p.set_env(Some(all));
    if let Some(u) = user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        let num = |s: &str| {
            s.parse::<u32>().map_err(|_| anyhow::anyhow!("--user {u:?}: give UID[:GID] as numbers"))
        };
        let mut user = p.user().clone();
        user.set_uid(num(uid)?);
        user.set_gid(num(gid)?);
        p.set_user(user);
    }
    Ok(p)
}

/// `pause` and `resume`: freezes or thaws the container's freezer cgroup (cgroup v1), and
/// waits until the kernel says it is done.
pub fn freeze(root: &Path, id: &str, freeze: bool) -> anyhow::Result<()> {
    let c = Container::load(root, id)?;
    let want = if freeze { Status::Running } else { Status::Paused };
    let now = c.status();
    if now != want {
        bail!(
            "container {id:?} is {}: {} needs a {} container",
            now.name(),
            if freeze { "pause" } else { "resume" },
            want.name()
        );
    }
    let Some(dir) = c.freezer() else {
        bail!("container {id:?} has no freezer cgroup of its own (brig-oci makes one as root, for a config with linux.resources or cgroupsPath)");
    };
    let (state, done) = if freeze { ("FROZEN", "FROZEN") } else { ("THAWED", "THAWED") };
    std::fs::write(dir.join("freezer.state"), state)
        .with_context(|| format!("write {}", dir.display()))?;
    let until = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(dir.join("freezer.state")).unwrap_or_default().trim() != done {
        anyhow::ensure!(
            Instant::now() < until,
            "container {id:?}: the freezer did not reach {done}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// `update --resources FILE`: new `linux.resources` (JSON, `-` for stdin, as containerd's shim
/// sends them) written into a live container's own cgroups, as `create` writes them (device
/// rules excepted: they are fixed at create).
pub fn update(root: &Path, id: &str, resources: &Path) -> anyhow::Result<()> {
    let c = Container::load(root, id)?;
    anyhow::ensure!(c.status() != Status::Stopped, "container {id:?} is stopped");
    let text = match resources.as_os_str() == "-" {
        true => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("read the resources from stdin")?;
            s
        }
        false => std::fs::read_to_string(resources)
            .with_context(|| format!("read {}", resources.display()))?,
    };
    let r: oci_spec::runtime::LinuxResources = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a linux.resources object", resources.display()))?;
    anyhow::ensure!(
        r.devices().as_ref().is_none_or(|d| d.is_empty()),
        "update: device rules are fixed at create (as runc's update); remove linux.resources.devices"
    );
    anyhow::ensure!(
        c.state.own_cgroup,
        "container {id:?} has no cgroup of its own (brig-oci makes one as root, for a config with linux.resources or cgroupsPath); nothing of its creator's is changed"
    );
    let (writes, _) = crate::translate::resource_writes(&r)?;
    brig_jail::oci_cgroup::update(&|ctrl| c.cgroup_dir(ctrl), &writes)?;
    Ok(())
}

/// `ps`: the container's processes, as JSON (`--format json`: an array of host pids, runc's
/// form) or one pid per line under a PID header.
pub fn ps(root: &Path, id: &str, json: bool) -> anyhow::Result<()> {
    let c = Container::load(root, id)?;
    let pids = if c.status() == Status::Stopped { Vec::new() } else { c.pids() };
    if json {
        println!("{}", serde_json::to_string(&pids)?);
    } else {
        println!("PID");
        for p in pids {
            println!("{p}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(signal_number("KILL").unwrap(), 9);
        assert_eq!(signal_number("SIGTERM").unwrap(), 15);
        assert_eq!(signal_number("usr1").unwrap(), libc::SIGUSR1);
        assert_eq!(signal_number("2").unwrap(), 2);
        assert!(signal_number("0").is_err());
        assert!(signal_number("NOPE").is_err());
    }
}
