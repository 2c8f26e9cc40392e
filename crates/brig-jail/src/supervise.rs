//! The supervisor: waits for pid 1, enforces wall time, forwards signals, and turns what the
//! prison reported into brig's exit status and message.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use brig_policy::units::show_size as size;
use brig_policy::Plan;
use brig_sys::fs;
use brig_sys::process::{self, SigSet, Status};

use crate::broker::Broker;
use crate::degrade;
use crate::error::JailError;
use crate::limits::Cgroup;
use crate::msg::{self, Msg};
use crate::report::{Exit, Hits, LayerState, Report};
use crate::terminal::{self, Event, Relay};

/// The prison as the supervisor holds it: pid 1, its pidfd, the report pipe's read end, and
/// when it was cloned (monotonic ns).
#[derive(Debug)]
pub struct Running {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub pipe: OwnedFd,
    /// Where pid 1 sends the seccomp listener for the broker and the terminal's master.
    pub broker: OwnedFd,
    pub listeners: Vec<crate::broker::Listener>,
    /// What the broker judges refusals with.
    pub judge: crate::broker::Judge,
    pub cloned_ns: u64,
    /// The program's own terminal, if it gets one.
    pub tty: Option<terminal::Setup>,
    /// Which of brig's stdio fds are terminals (a hang-up of one ends the prison).
    pub ttys: [bool; 3],
    /// Written to once when the program is about to be executed (`Plan::ready_fd`).
    pub ready: Option<OwnedFd>,
    /// OCI create: written to once, `P <pid>\n` and the report's layers as a JSON line, when
    /// pid 1 is parked (`OciPlan::gate`).
    pub created: Option<OwnedFd>,
    /// OCI: where the terminal's master goes instead of the relay (`Plan::console_fd`).
    pub console: Option<OwnedFd>,
}

/// How long the prison has after brig's terminal hangs up (and the prison got SIGHUP) before it
/// is killed.
pub const HANGUP_GRACE: Duration = Duration::from_secs(2);

/// How often the pids cgroup's count of refusals is read until the first one.
const TASKS_TICK: Duration = Duration::from_secs(1);

/// Why the supervisor killed the prison, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Killed {
    Wall,
    HangUp,
}

/// Says `line` on brig's stderr while the program runs; `raw`: the user's terminal is in raw
/// mode (the relay), so lines end with CR LF.
fn say(line: &str, raw: bool) {
    let text = format!("{line}{}", if raw { "\r\n" } else { "\n" });
    let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
}

/// Waits for the prison to end and fills `report.exit` and the inside timings.
pub fn supervise(
    plan: &Plan,
    prison: Running,
    cgroup: Option<&Cgroup>,
    report: &mut Report,
    operands: &[String],
) -> Result<(), JailError> {
    let Running {
        pid,
        pidfd,
        pipe,
        broker: handover,
        listeners,
        judge,
        cloned_ns,
        tty,
        ttys,
        ready,
        mut created,
        mut console,
    } = prison;
    let mut started = ready;
    let clone_ns = cloned_ns;
    let mut handover = Some(handover);
    let mut for_broker = Some((listeners, judge));
    let mut broker: Option<Broker> = None;
    let mut relay: Option<Relay> = None;
    let sigfd = SigSet::of(&crate::launch::FORWARDED[1..])
        .signalfd()
        .map_err(JailError::setup("signalfd"))?;
    let wall = plan.limits.wall.map(|w| Instant::now() + w);
    let mut hangup: Option<Instant> = None;
    let mut killed = None;
    let mut finished_broker = None;
    let mut msgs = Vec::new();
    let mut buf = Vec::new();
    let mut pipe_open = true;
    // Without a notification from the pids controller (v1 has none), its count is read once a
    // second until the first refusal, which is said at once: a program whose thread could not
    // start often hangs instead of failing.
    let mut tasks_check = cgroup.filter(|c| c.counts_tasks()).map(|_| Instant::now() + TASKS_TICK);
    loop {
        let next = match killed {
            Some(_) => None,
            None => wall.into_iter().chain(hangup).chain(tasks_check).min(),
        };
        let timeout = next.map(|d| d.saturating_duration_since(Instant::now()));
        let mut fds = vec![(pidfd.as_fd(), libc::POLLIN), (sigfd.as_fd(), libc::POLLIN)];
        let pipe_at = slot(&mut fds, pipe_open.then(|| pipe.as_fd()), libc::POLLIN);
        let handover_at = slot(&mut fds, handover.as_ref().map(|h| h.as_fd()), libc::POLLIN);
        let broker_at = slot(&mut fds, broker.as_ref().map(|b| b.fd()), libc::POLLIN);
        let more = broker.as_ref().map(Broker::more_fds).unwrap_or_default();
        let more_at: Vec<Option<usize>> =
            more.into_iter().map(|fd| slot(&mut fds, Some(fd), libc::POLLIN)).collect();
        let want = relay.as_ref().map(Relay::interest).unwrap_or_default();
        let master_at = match (&relay, want.master) {
            (Some(r), Some(ev)) => slot(&mut fds, Some(r.master()), ev),
            _ => None,
        };
        let input_at = match want.input {
            Some((fd, ev)) => slot(&mut fds, Some(fd), ev),
            None => None,
        };
        let out_at = match want.out {
            Some((fd, ev)) => slot(&mut fds, Some(fd), ev),
            None => None,
        };
        let ready = process::poll(&fds, timeout).map_err(JailError::setup("poll"))?;
        let rev = |at: Option<usize>| at.map_or(0, |i| ready[i]);
        if rev(pipe_at) != 0 {
            pipe_open = read_msgs(&pipe, &mut buf, &mut msgs);
            if msgs.iter().any(|m| m.kind == msg::PREEXEC) {
                // The reader may be gone; then nobody waits for it.
                if let Some(r) = started.take() {
                    let _ = fs::write(r.as_fd(), b"r");
                }
            }
            if msgs.iter().any(|m| m.kind == msg::PARKED) {
                if let Some(c) = created.take() {
                    // Then the layers as they stand (final: pid 1 is locked down), one JSON line.
                    let layers = serde_json::to_string(&report.layers).unwrap_or_default();
                    let _ = fs::write(c.as_fd(), format!("P {pid}\n{layers}\n").as_bytes());
                }
            }
        }
        if rev(handover_at) != 0 {
            // pid 1 sends at most two messages before the program exists, then closes its end.
            match handover.as_ref().map(|h| brig_sys::fdpass::recv_fds(h.as_fd())) {
                Some(Ok((b'b', fds))) => {
                    broker = for_broker.take().and_then(|(l, j)| Broker::new(fds, l, j));
                }
                // OCI: the engine's console socket takes the master (one fd, as runc sends
                // it); brig relays nothing.
                Some(Ok((b't', fds))) if console.is_some() => {
                    let to = console.take();
                    let sent = to
                        .zip(fds.first())
                        .map(|(c, m)| brig_sys::fdpass::send_fds(c.as_fd(), b'c', &[m.as_fd()]));
                    if !matches!(sent, Some(Ok(()))) {
                        // Nobody holds the terminal: the container would block on it.
                        let _ = process::pidfd_kill(pidfd.as_fd(), libc::SIGKILL);
                    }
                }
                Some(Ok((b't', fds))) if relay.is_none() => {
                    let master = fds.into_iter().next();
                    relay = tty.as_ref().zip(master).map(|(t, m)| Relay::new(m, t));
                    // The window may have changed since it was measured before clone.
                    if let Some(r) = &relay {
                        r.resize();
                    }
                }
                _ => handover = None,
            }
        }
        let b = rev(broker_at);
        // A hang-up with nothing to read: every process under the filter is gone (receiving
        // would fail at once, again and again, while the prison exits).
        let finished = b & libc::POLLIN == 0 && b & (libc::POLLHUP | libc::POLLERR) != 0;
        let raw = relay.is_some();
        if more_at.iter().any(|&at| rev(at) != 0) {
            if let Some(b) = broker.as_mut() {
                b.serve(&|l| say(l, raw));
            }
        }
        if finished || (b != 0 && broker.as_mut().is_some_and(|b| !b.answer(&|l| say(l, raw)))) {
            finished_broker = broker.take();
        }
        if let Some(r) = relay.as_mut() {
            let event = r.ready(rev(master_at), rev(input_at), rev(out_at));
            if event == Event::HungUp && hangup.is_none() {
                let _ = process::pidfd_kill(pidfd.as_fd(), libc::SIGHUP);
                hangup = Some(Instant::now() + HANGUP_GRACE);
            }
        }
        if ready[1] != 0 {
            while let Ok(Some(sig)) = process::read_signalfd(sigfd.as_fd()) {
                match (sig, &relay) {
                    // The pty follows the user's window; its foreground group gets SIGWINCH.
                    (libc::SIGWINCH, Some(r)) => r.resize(),
                    // Already sent when the relay saw the hang-up.
                    (libc::SIGHUP, _) if hangup.is_some() => {}
                    _ => {
                        let _ = process::pidfd_kill(pidfd.as_fd(), sig);
                        if sig == libc::SIGHUP && terminal::hung_up(ttys) {
                            hangup = Some(Instant::now() + HANGUP_GRACE);
                        }
                    }
                }
            }
        }
        // The program's status is in and nothing else of the prison runs (pid 1 killed and
        // reaped the rest first): pid 1's own exit (~0.3 ms here to unmount the view) need not
        // hold up the caller, unless its cgroup must be removed after it.
        let reported = cgroup.is_none() && msgs.last().is_some_and(|m| m.kind == msg::EXIT);
        if ready[0] != 0 || reported {
            break;
        }
        let now = Instant::now();
        let due = |d: Option<Instant>| d.is_some_and(|d| now >= d);
        if due(tasks_check) {
            tasks_check = Some(now + TASKS_TICK);
            if cgroup.is_some_and(|c| c.tasks_refused() > 0) {
                tasks_check = None;
                say(&format!("brig: {}", tasks_refused(plan)), relay.is_some());
            }
        }
        if killed.is_none() && (due(wall) || due(hangup)) {
            // SIGKILL to pid 1 ends the whole pid namespace, grandchildren too.
            let _ = process::pidfd_kill(pidfd.as_fd(), libc::SIGKILL);
            killed = Some(if due(wall) { Killed::Wall } else { Killed::HangUp });
        }
    }
    // Reaped if already gone; else the kernel finishes its exit after ours (it holds nothing:
    // its status is reported, and the pid namespace dies with it).
    let reported = cgroup.is_none() && msgs.last().is_some_and(|m| m.kind == msg::EXIT);
    // OCI create: pid 1 is not our child (CLONE_PARENT); its status came in the report.
    let pid1 = match process::wait(pid, reported) {
        Err(e) if plan.oci.gate.is_some() && e.raw_os_error() == Some(libc::ECHILD) => None,
        r => r.map_err(JailError::setup("wait for pid 1"))?,
    };
    if let Some(mut r) = relay {
        // The program's last output, then the user's terminal settings come back (drop).
        r.finish();
    }
    if let Some(b) = finished_broker.or(broker) {
        report.allowed_always = b.asked_always();
        report.broker = b.counts;
        report.refusals = b.refusals;
        report.touched = b.touched.into_iter().collect();
    }
    while pipe_open {
        pipe_open = read_msgs(&pipe, &mut buf, &mut msgs);
    }
    report.exit = decide(plan, &msgs, pid1.map(|(_, st)| st), killed, cgroup, report, operands);
    let hits = cgroup.map(|c| Hits { oom_kills: c.oom_kills(), tasks_refused: c.tasks_refused() });
    report.hits = hits.clone();
    let hits = hits.unwrap_or_default();
    if hits.tasks_refused > 0 {
        // The limit's refusals, with the others (said during the run already).
        report.refusals.push(crate::explain::Refusal {
            syscall: "clone",
            access: crate::explain::Access::Call,
            target: "clone (a new process or thread)".into(),
            layer: "limit",
            reason: format!("--procs {} reached", plan.limits.procs),
            fix: format!("raise it with --procs {}", plan.limits.procs.saturating_mul(2)),
            count: hits.tasks_refused.min(u32::MAX as u64) as u32,
        });
    }
    let mem = size(plan.limits.mem.unwrap_or_default());
    match hits.oom_kills {
        0 => {}
        n if report.exit.cause == "memory" && n == 1 => {}
        n => report.warnings.push(format!(
            "the memory limit ({mem}) was reached: the kernel killed {n} process{} in the \
             prison (out of memory); raise it with --mem",
            if n == 1 { "" } else { "es" }
        )),
    }
    if hits.tasks_refused > 0 {
        let n = hits.tasks_refused;
        let s = if n == 1 { "" } else { "s" };
        report.warnings.push(format!("{} ({n} refusal{s} in all)", tasks_refused(plan)));
    }
    for m in &msgs {
        match m.kind {
            msg::READY => report.timings.inside_setup_us = m.value.saturating_sub(clone_ns) / 1000,
            msg::PREEXEC => {
                report.timings.exec_us = m.value.saturating_sub(clone_ns) / 1000;
                report.timings.run_us = process::monotonic_ns().saturating_sub(m.value) / 1000;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Adds `fd` to the poll set with `events`, if there is one, and returns its index.
fn slot<'a>(
    fds: &mut Vec<(BorrowedFd<'a>, i16)>,
    fd: Option<BorrowedFd<'a>>,
    events: i16,
) -> Option<usize> {
    fds.push((fd?, events));
    Some(fds.len() - 1)
}

/// Reads what is available; false at end of file. Records are fixed-size; junk is ignored.
fn read_msgs(pipe: &OwnedFd, buf: &mut Vec<u8>, out: &mut Vec<Msg>) -> bool {
    let mut chunk = [0u8; 512];
    let n = match fs::read(pipe.as_fd(), &mut chunk) {
        Ok(0) | Err(_) => return false,
        Ok(n) => n,
    };
    buf.extend_from_slice(&chunk[..n]);
    // The prison writes at most a handful of records; a flood is cut off, not buffered.
    if out.len() > 64 {
        buf.clear();
        return true;
    }
    while buf.len() >= msg::SIZE {
        let mut rec = [0u8; msg::SIZE];
        rec.copy_from_slice(&buf[..msg::SIZE]);
        buf.drain(..msg::SIZE);
        out.push(Msg::decode(&rec));
    }
    true
}

fn decide(
    plan: &Plan,
    msgs: &[Msg],
    pid1: Option<i32>,
    killed: Option<Killed>,
    cgroup: Option<&Cgroup>,
    report: &mut Report,
    operands: &[String],
) -> Exit {
    let errno_text = |e: i32| std::io::Error::from_raw_os_error(e).to_string();
    for m in msgs.iter().filter(|m| m.kind == msg::DEGRADED) {
        let name = msg::layer_of(m.step).unwrap_or("unknown layer");
        report.layer(name, LayerState::Unavailable, errno_text(m.errno));
        report.warnings.push(degrade::warning(name, &errno_text(m.errno)));
    }
    let cmd = plan.command.first().cloned().unwrap_or_default();
    if killed == Some(Killed::Wall) {
        let w = plan.limits.wall.unwrap_or_default();
        return exit(
            "wall",
            124,
            format!("brig: wall-time limit ({}) reached; the prison was killed", secs(w)),
        );
    }
    if killed == Some(Killed::HangUp) {
        return exit(
            "hangup",
            128 + libc::SIGHUP,
            format!(
                "brig: the terminal hung up; the prison got SIGHUP and was killed {} later",
                secs(HANGUP_GRACE)
            ),
        );
    }
    if let Some(m) = msgs.iter().find(|m| m.kind == msg::ERROR) {
        if m.step == msg::STEP_EXEC {
            return if m.errno == libc::ENOENT {
                exit("not-found", 127, format!("brig: {cmd}: not found inside the prison (grant it with --rx, or check PATH)"))
            } else {
                exit(
                    "not-executable",
                    126,
                    format!(
                        "brig: {cmd}: cannot execute inside the prison: {}{}",
                        errno_text(m.errno),
                        if plan.capability_mode && m.errno == libc::EACCES {
                            " (in capability mode from exec, only a statically linked program \
                             can start: a dynamic one cannot open its loader and libraries; \
                             link it statically, or let it enter capability mode itself \
                             through brig-caps)"
                                .to_string()
                        } else if m.errno == libc::EACCES {
                            no_exec_hint(plan, &cmd)
                        } else {
                            String::new()
                        }
                    ),
                )
            };
        }
        if m.step == msg::STEP_CHDIR {
            let dir = plan.chdir.as_deref().unwrap_or(std::path::Path::new("/"));
            return exit(
                "inside-failed",
                125,
                format!(
                    "brig: cannot start in {} inside the prison: {}; the working directory must \
                     be a directory of the view (grant it, or name one that is with --chdir)",
                    dir.display(),
                    errno_text(m.errno)
                ),
            );
        }
        let operand = operand(operands, m);
        // A layer --best-effort was not allowed to drop: say why.
        let why = msg::layer_of(m.step)
            .filter(|_| plan.best_effort)
            .and_then(|l| degrade::forbidden(plan, !report.id_mapped.is_empty(), l))
            .map(|r| format!("; {r}"))
            .unwrap_or_default();
        return exit(
            "inside-failed",
            125,
            format!(
                "brig: inside the prison, step `{}`{operand} failed: {}{why}",
                m.step_name(),
                errno_text(m.errno)
            ),
        );
    }
    let Some(st) = msgs.iter().rev().find(|m| m.kind == msg::EXIT).map(|m| m.value as u32 as i32)
    else {
        let how = pid1.map_or("vanished".to_string(), |st| format!("{:?}", Status::from_raw(st)));
        if msgs.iter().any(|m| m.kind == msg::PREEXEC) {
            // The program ran: its processes died with pid 1 (SIGKILL to the whole pid
            // namespace); its own status was never reported.
            return Exit {
                cause: "init-died".into(),
                status: 128 + libc::SIGKILL,
                signal: Some(libc::SIGKILL),
                message: format!(
                    "brig: the prison's pid 1 ended ({how}) after the program started; the \
                     program was killed with it and its own status is unknown"
                ),
                ..Default::default()
            };
        }
        return exit(
            "setup-failed",
            125,
            format!("brig: pid 1 of the prison ended without a report ({how})"),
        );
    };
    match Status::from_raw(st) {
        Status::Exited(c) => {
            Exit { cause: "exited".into(), status: c, code: Some(c), ..Default::default() }
        }
        Status::Signaled(s) => {
            let (cause, message) = match s {
                // Only a limit that was set is blamed: the program can send itself these.
                libc::SIGXCPU if plan.limits.cpu.is_some() => (
                    "cpu",
                    format!(
                        "brig: cpu-time limit ({}) reached",
                        secs(plan.limits.cpu.unwrap_or_default())
                    ),
                ),
                libc::SIGXFSZ if plan.limits.fsize.is_some() => {
                    ("fsize", "brig: file-size limit reached".to_string())
                }
                libc::SIGKILL if cgroup.is_some_and(|c| c.oom_kills() > 0) => (
                    "memory",
                    format!(
                        "brig: memory limit ({}) reached; the kernel killed the program (out \
                         of memory)",
                        size(plan.limits.mem.unwrap_or_default())
                    ),
                ),
                _ => ("signaled", String::new()),
            };
            Exit {
                cause: cause.into(),
                status: 128 + s,
                signal: Some(s),
                message,
                ..Default::default()
            }
        }
    }
}

/// What a refusal by the pids controller means, and the fix.
fn tasks_refused(plan: &Plan) -> String {
    format!(
        "the prison reached its process limit ({} processes and threads): a fork or a new thread \
         was refused; raise it with --procs",
        plan.limits.procs
    )
}

/// For a program refused execution: the place of the view it is in that lacks `x`, and the
/// flag that grants it.
fn no_exec_hint(plan: &Plan, cmd: &str) -> String {
    use std::path::{Path, PathBuf};
    let start = plan.chdir.as_deref().or(plan.start_dir.as_deref()).unwrap_or(Path::new("/"));
    let path = match cmd.contains('/') {
        true => start.join(cmd),
        // Found through PATH: which directory is not known here.
        false => return "; if it lies in a grant without x, grant that with --rx or --rwx".into(),
    };
    let grant = plan
        .grants
        .iter()
        .filter(|g| path.starts_with(&g.dest))
        .max_by_key(|g| g.dest.components().count());
    let tmp = PathBuf::from("/tmp");
    let tmpfs = plan
        .tmpfs
        .iter()
        .chain(std::iter::once(&tmp))
        .filter(|t| path.starts_with(t))
        .max_by_key(|t| t.components().count());
    match (grant, tmpfs) {
        (Some(g), t) if t.is_none_or(|t| g.dest.starts_with(t)) => match g.rights.exec {
            true => String::new(),
            false => format!(
                "; the grant {} has no x: grant it with {} {}",
                g.origin,
                if g.rights.write { "--rwx" } else { "--rx" },
                g.source.display()
            ),
        },
        (_, Some(t)) if !plan.tmpfs_exec.contains(t) => format!(
            "; {} is a tmpfs without x: use --tmpfs {}:x{}",
            t.display(),
            t.display(),
            if *t == tmp { " (or -w)" } else { "" }
        ),
        _ => String::new(),
    }
}

/// Names the operand of a failed step from the supervisor's own records, never from the prison.
fn operand(operands: &[String], m: &Msg) -> String {
    match (m.step, operands.get(m.operand as usize)) {
        (17, _) => format!(" for rlimit resource {}", m.operand),
        (_, Some(o)) => format!(" for {o}"),
        _ => String::new(),
    }
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

fn exit(cause: &str, status: i32, message: String) -> Exit {
    Exit { cause: cause.into(), status, message, ..Default::default() }
}
