//! The launch sequence, top to bottom. `docs/launch-sequence.md` lists the same steps in the
//! same order; change both or neither.

use std::ffi::CString;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use brig_policy::Plan;
use brig_sys::fs;
use brig_sys::process::{self, Forked, SigSet};

use crate::caps;
use crate::degrade;
use crate::error::JailError;
use crate::grants;
use crate::idmap;
use crate::inside::{self, Inside};
use crate::landlock;
use crate::limits::{self, Cgroup};
use crate::namespaces;
use crate::report::{LayerState, Report};
use crate::seccomp;
use crate::supervise;
use crate::terminal;

/// The uid and gid the program has on the host (and inside): the caller's own when brig is
/// unprivileged; `nobody` when brig runs as root, so the program is never host root.
pub const ROOT_RUNS_AS: u32 = 65534;

/// Signals the supervisor and pid 1 take over (blocked, then read synchronously).
pub const FORWARDED: &[i32] = &[
    libc::SIGCHLD,
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// Runs `plan` and returns the report; `report.exit.status` is brig's exit status.
pub fn run(plan: &Plan) -> Report {
    let mut report = Report {
        brig_version: env!("CARGO_PKG_VERSION"),
        command: plan.command.clone(),
        ..Default::default()
    };
    if let Err(e) = launch(plan, &mut report) {
        report.exit = crate::report::Exit {
            cause: "refused".into(),
            status: 125,
            message: format!("brig: {e}"),
            ..Default::default()
        };
    }
    report
}

fn us(since: Instant) -> u64 {
    since.elapsed().as_micros() as u64
}

/// The runner's side of the launch. Each step names what it protects against.
fn launch(plan: &Plan, report: &mut Report) -> Result<(), JailError> {
    let t0 = Instant::now();
    // 1. Identity: the program must never be host root.
    let (host_uid, host_gid) = process::ids();
    let unprivileged = host_uid != 0;
    let (mut uid, mut gid) =
        if unprivileged { (host_uid, host_gid) } else { (ROOT_RUNS_AS, ROOT_RUNS_AS) };
    // OCI: the ids the program has inside its user namespace, mapped to those host ids, or by
    // the config's own maps (root runs; brig-oci checked that they leave out host root).
    let (in_uid, in_gid) = plan.oci.inside_ids.unwrap_or((uid, gid));
    if let Some(m) = &plan.oci.id_maps {
        let unmapped = || JailError::Setup {
            step: "uid/gid map",
            source: std::io::Error::other("the process's uid or gid is outside the config's maps"),
        };
        uid = brig_policy::IdMaps::host(&m.uid, in_uid).ok_or_else(unmapped)?;
        gid = brig_policy::IdMaps::host(&m.gid, in_gid).ok_or_else(unmapped)?;
    }
    report.host_uid = host_uid;
    report.prison_uid = uid;
    let started = plan
        .ready_fd
        .map(brig_sys::fdpass::claim_inherited)
        .transpose()
        .map_err(JailError::setup("claim the ready fd (--ready-fd)"))?;
    let gate = plan
        .oci
        .gate
        .map(|g| {
            let claim = brig_sys::fdpass::claim_inherited;
            Ok::<_, std::io::Error>((claim(g.fifo_fd)?, claim(g.created_fd)?))
        })
        .transpose()
        .map_err(JailError::setup("claim the OCI start fifo and created pipe"))?;
    let (gate, created) = gate.unzip();
    let console = plan
        .oci
        .console_fd
        .map(brig_sys::fdpass::claim_inherited)
        .transpose()
        .map_err(JailError::setup("claim the OCI console socket"))?;

    // 1. Grants: resolve and open every host path once; from here on they are fds.
    let mut view = grants::open_view(plan, uid, gid)?;
    if !unprivileged {
        // Root runs: the prison's uid acts as each writable grant's owner (id-mapped mounts),
        // or with brig's OCI range every owner keeps its id inside; an engine's own maps come
        // with files the engine made theirs.
        let how = match &plan.oci.id_maps {
            None => Some(idmap::Mapping::Owner((uid, gid))),
            Some(m) if !m.map_mounts.is_empty() => Some(idmap::Mapping::Range(m)),
            Some(_) => None,
        };
        if let Some(how) = how {
            report.id_mapped = idmap::map_with(&mut view, how, &mut report.warnings)?;
        }
    }
    grants::make_root_mountpoints(&view)?;
    let operands: Vec<String> = view.iter().map(grants::Entry::operand).collect();
    // ... and every capability: files opened as their mode says, sockets bound or connected in
    // the host's network, names resolved here; the prison gets fds, never the names.
    let mut socket_files = caps::SocketFiles::default();
    let mut caps = caps::open_all(plan, &mut socket_files, report)?;
    let listeners = caps::listeners(plan, &caps)?;
    report.timings.grants_us = us(t0);

    // 2. Compile ahead of clone: seccomp filter, Landlock ruleset, argv/envp, rlimits, cgroup.
    let t1 = Instant::now();
    let mut policy = compile_seccomp(plan, report)?;
    if plan.resolver() {
        // --egress: connect() to a name's address is made by the broker (egress.rs).
        policy.broker_call(libc::SYS_connect as u32);
    }
    if !plan.egress.is_empty() {
        let names: Vec<String> =
            plan.egress.iter().map(|e| format!("{}:{}", e.host, e.port)).collect();
        report.layer("egress", LayerState::Enforced, format!("by name: {}", names.join(", ")));
    }
    let observe = plan.explain || plan.learn || plan.ask.is_some();
    let filter = policy.compile_notifying(&crate::observe::numbers(observe));
    let allow_list = match plan.syscalls.only.is_empty() {
        true => None,
        false => Some(
            seccomp::Policy::allow_list(&plan.syscalls.only).map_err(JailError::Seccomp)?.compile(),
        ),
    };
    // --ask needs brig's own terminal to ask on.
    let asker = match plan.ask {
        Some(t) => Some(
            crate::ask::Asker::open(t, uid)
                .map_err(JailError::setup("--ask: open brig's terminal (/dev/tty)"))?,
        ),
        None => None,
    };
    let judge = crate::broker::Judge {
        program: policy.compile(),
        policy,
        view: crate::explain::View::of(&view, plan.resolver()),
        explain: plan.explain,
        id_mapped: !report.id_mapped.is_empty(),
        learn: plan.learn,
        egress: plan.egress.clone(),
        asker,
    };
    let dirs: Vec<_> = caps
        .iter()
        .filter_map(|c| Some((c.fd.as_fd(), c.remount.as_ref()?.dir_rights()?)))
        .collect();
    let oci_filter = match &plan.oci.seccomp_profile {
        Some(p) => Some(
            seccomp::oci::compile(p)
                .map_err(|e| JailError::Seccomp(format!("the OCI config's linux.seccomp: {e}")))?,
        ),
        None => None,
    };
    let landlock = prepare_landlock(&view, &dirs, plan, report)?;
    drop(dirs);
    let (argv, envp, search) = exec_args(plan)?;
    let cgroup = match limits::wanted(&plan.limits) {
        true => Cgroup::create(&plan.limits, plan.best_effort, &mut report.warnings)?,
        false => None,
    };
    let oci_cgroup =
        plan.oci.cgroup.as_ref().map(crate::oci_cgroup::OciCgroup::create).transpose()?;
    let mut rlimits = limits::rlimits(&plan.limits, cgroup.as_ref());
    // OCI: the config's own rlimits replace brig's for the same resource.
    rlimits.retain(|r| !plan.oci.rlimits.iter().any(|o| o.0 == r.0));
    rlimits.extend(&plan.oci.rlimits);
    report.limits = limits::describe(&plan.limits, cgroup.as_ref());
    let chdir = plan.chdir.clone().or(plan.start_dir.clone()).unwrap_or_else(|| PathBuf::from("/"));
    let ttys = terminal::ttys();
    let tty = terminal::setup(plan.pty, ttys);
    if tty.is_none() && ttys.contains(&true) {
        report.warnings.push(
            "--pty never: the program holds your terminal and can change its settings".into(),
        );
    }
    // Everything has opened: only now may a `create` capability create or empty its file.
    caps::commit(&mut caps)?;
    report.timings.compile_us = us(t1);

    // 3. Namespaces: user, mount, pid always; net, ipc, uts unless an OCI config joins them by
    // path (the runner joins them here) or they are missing under --best-effort.
    let joined = namespaces::join(plan, &mut view, report)?;
    let mut ns = namespaces::ALL & !joined;
    let signals = SigSet::of(FORWARDED);
    let old_mask = signals.block().map_err(JailError::setup("block signals"))?;
    let (report_r, report_w) = fs::pipe().map_err(JailError::setup("report pipe"))?;
    let (go_r, go_w) = fs::pipe().map_err(JailError::setup("go pipe"))?;
    // pid 1 sends the seccomp listener (and its network namespace) here for the broker.
    let (broker_r, broker_w) =
        brig_sys::fdpass::seqpacket_pair().map_err(JailError::setup("broker socket"))?;
    let id_mapped = !report.id_mapped.is_empty();
    let mut inside = Inside {
        view,
        caps,
        listen_pid: plan
            .caps
            .iter()
            .any(|c| matches!(c.kind, brig_policy::caps::CapKind::Listen(_))),
        capability_mode: plan.capability_mode,
        landlock,
        filter,
        allow_list,
        rlimits,
        argv,
        envp,
        search,
        chdir,
        chdir_or_root: plan.chdir.is_none(),
        uid: in_uid,
        gid: in_gid,
        keep_groups: idmap::keep_groups(host_uid),
        new_net: joined & libc::CLONE_NEWNET == 0,
        resolver: plan.resolver(),
        new_uts: ns & libc::CLONE_NEWUTS != 0,
        hostname: plan.oci.hostname.clone().unwrap_or_else(|| "brig".into()),
        root_readonly: plan.oci.rootfs.as_ref().is_none_or(|r| r.readonly),
        may_drop: crate::msg::LAYER_STEPS
            .into_iter()
            .filter(|&s| {
                let layer = crate::msg::layer_of(s).unwrap_or_default();
                plan.best_effort && degrade::forbidden(plan, id_mapped, layer).is_none()
            })
            .collect(),
        report: report_w,
        go: go_r,
        broker: broker_w,
        signals,
        tty,
        master: None,
        gate,
        capabilities: plan.oci.capabilities.map(|c| without_setfcap(c, &mut report.warnings, plan)),
        no_new_privs: plan.no_new_privs,
        oci_filter,
        labels: plan.oci.mounts.iter().map(|m| (m.dest.clone(), m.source.clone())).collect(),
        umask: plan.oci.umask,
        oom_score_adj: plan.oci.oom_score_adj,
        groups: plan.oci.groups.clone(),
        masked: outside_proc(&plan.oci.masked_paths),
        readonly: outside_proc(&plan.oci.readonly_paths),
    };
    let t2 = Instant::now();
    let t2_ns = process::monotonic_ns();
    // OCI create: pid 1 becomes the caller's child (the runner is about to leave it).
    let parent = if plan.oci.gate.is_some() { libc::CLONE_PARENT } else { 0 };
    let (pid, pidfd) = loop {
        match process::clone_namespaces(
            ns | parent,
            &[report_r.as_fd(), go_w.as_fd(), broker_r.as_fd()],
        ) {
            Ok(Forked::Child) => inside::pid1(inside),
            Ok(Forked::Parent { pid, pidfd }) => break (pid, pidfd),
            Err(e) => match namespaces::fallback(ns, e, plan.best_effort, report) {
                Ok(fewer) => {
                    ns = fewer;
                    inside.new_uts = ns & libc::CLONE_NEWUTS != 0;
                }
                Err(e) => {
                    let _ = old_mask.set_mask();
                    return Err(e);
                }
            },
        }
    };
    namespaces::record(ns, joined & libc::CLONE_NEWNET == 0, plan.oci.rootfs.is_some(), report);
    match plan.oci.capabilities {
        None => report.layer(
            "capabilities",
            LayerState::Enforced,
            "all sets empty, bounding set too, securebits locked",
        ),
        Some(c) => report.layer(
            "capabilities",
            LayerState::Enforced,
            format!("the OCI config's: {} in the bounding set", c.bounding.count_ones()),
        ),
    }
    match plan.no_new_privs {
        true => report.layer("no_new_privs", LayerState::Enforced, ""),
        false => report.layer(
            "no_new_privs",
            LayerState::Degraded,
            "off: the OCI config sets noNewPrivileges false",
        ),
    }
    report.layer("rlimits", LayerState::Enforced, "");
    if plan.capability_mode {
        report.layer(
            "capability_mode",
            LayerState::Enforced,
            "from exec: seccomp (no paths from / or cwd, no new sockets) + Landlock layer",
        );
    }
    drop(inside); // our copies of the child's ends (and the view's fds) close here
    if plan.oci.gate.is_some() {
        // The container's stdio is pid 1's now; the runner neither holds nor writes to it.
        fs::stdio_to_null().map_err(JailError::setup("stdio to /dev/null"))?;
    }

    // 3b. Map the prison's uid/gid, join the cgroup, then let pid 1 go. If any of this fails,
    // dropping `go_w` makes pid 1 exit, and the supervisor below still reaps it.
    let one = brig_policy::IdMaps {
        uid: vec![(in_uid, uid, 1)],
        gid: vec![(in_gid, gid, 1)],
        map_mounts: Vec::new(),
    };
    let ready = write_id_maps(pid, plan.oci.id_maps.as_ref().unwrap_or(&one), unprivileged)
        .and_then(|()| cgroup.as_ref().map_or(Ok(()), |c| c.join(pid)))
        .and_then(|()| oci_cgroup.as_ref().map_or(Ok(()), |c| c.join(pid)));
    // `go_w` stays open while the supervisor lives: pid 1 reads a hang-up as "runner died".
    let go_w = match ready {
        Ok(()) => {
            let _ = fs::write(go_w.as_fd(), b"g");
            Some(go_w)
        }
        Err(_) => None,
    };
    report.timings.clone_us = us(t2);

    // 4-8 happen inside (inside.rs); the supervisor waits, enforces wall time, forwards signals.
    // OCI cgroup: removed only once pid 1 has left it (the supervisor may return as soon as
    // the program's status is in, while pid 1 still unmounts the view).
    let pid1_gone = match &oci_cgroup {
        Some(_) => Some(pidfd.try_clone().map_err(JailError::setup("dup pid 1's pidfd"))?),
        None => None,
    };
    let prison = supervise::Running {
        pid,
        pidfd,
        pipe: report_r,
        broker: broker_r,
        listeners,
        judge,
        cloned_ns: t2_ns,
        tty,
        ttys,
        ready: started,
        created,
        console,
    };
    let out = supervise::supervise(plan, prison, cgroup.as_ref(), report, &operands);
    let _ = old_mask.set_mask();
    drop(go_w);
    drop(cgroup);
    if let Some(p) = pid1_gone {
        let _ = process::poll_readable(&[p.as_fd()], Some(std::time::Duration::from_secs(5)));
    }
    drop(oci_cgroup);
    drop(socket_files);
    report.timings.total_us = us(t0);
    // A step that failed inside is the cause when both failed: pid 1 exiting early is what
    // makes writing its uid/gid map fail.
    if report.exit.cause != "inside-failed" {
        ready?;
    }
    out
}

/// CAP_SETFCAP is taken out of an OCI config's sets when host directories are bound writable
/// and id-mapped: a file capability the container wrote there would be stored for the owner on
/// the host (root's, for a root-owned one), real for whoever on the host runs the file. (Its
/// own root, the image's layer, is the container's to write, as under runc.)
pub(crate) fn without_setfcap(
    mut c: brig_policy::CapSets,
    warnings: &mut Vec<String>,
    plan: &Plan,
) -> brig_policy::CapSets {
    const SETFCAP: u64 = 1 << 31;
    let all = c.bounding | c.effective | c.permitted | c.inheritable | c.ambient;
    if !plan.id_maps_writable_binds() || all & SETFCAP == 0 {
        return c;
    }
    for set in
        [&mut c.bounding, &mut c.effective, &mut c.permitted, &mut c.inheritable, &mut c.ambient]
    {
        *set &= !SETFCAP;
    }
    warnings.push(
        "process.capabilities: CAP_SETFCAP is dropped: host directories are bound writable \
         and id-mapped (mount option idmap), and a file capability written there would hold \
         on the host"
            .into(),
    );
    c
}

/// OCI masked or read-only paths not under /proc (pid 1 does those with procfs), relative to
/// the root.
fn outside_proc(paths: &[PathBuf]) -> Vec<PathBuf> {
    let rel = |p: &PathBuf| p.strip_prefix("/").map(Path::to_path_buf).ok();
    paths.iter().filter(|p| !p.starts_with("/proc")).filter_map(rel).collect()
}

/// The run's seccomp policy: the deny-list with the plan's changes.
pub(crate) fn compile_seccomp(
    plan: &Plan,
    report: &mut Report,
) -> Result<seccomp::Policy, JailError> {
    let mut policy = seccomp::Policy::default_deny();
    for name in &plan.syscalls.allow {
        policy.allow(name).map_err(JailError::Seccomp)?;
        report.warnings.push(format!("seccomp loosened: {name} is allowed"));
    }
    for name in &plan.syscalls.deny {
        policy.deny(name).map_err(JailError::Seccomp)?;
    }

    for group in degrade::KEPT_WHEN_ID_MAPPED {
        if !report.id_mapped.is_empty() && !policy.keeps(group) {
            return Err(JailError::Seccomp(format!(
                "{}; {group} stays denied",
                degrade::SETID_RISK
            )));
        }
    }
    let mut what = format!("deny-list: {} rules", policy.denied_names().len());
    if !plan.syscalls.only.is_empty() {
        what += &format!(", then an allow-list of {} syscalls", plan.syscalls.only.len());
    }
    if let Some(p) = &plan.oci.seccomp_profile {
        what += &format!(", then the OCI config's profile ({} rules)", p.rules.len());
    }
    report.layer("seccomp", LayerState::Enforced, what);
    Ok(policy)
}

pub(crate) fn prepare_landlock(
    view: &[grants::Entry],
    dirs: &[(std::os::fd::BorrowedFd<'_>, brig_policy::Rights)],
    plan: &Plan,
    report: &mut Report,
) -> Result<Option<landlock::Prepared>, JailError> {
    let abi = brig_sys::landlock::abi();
    let why = match abi {
        Ok(v) if v >= landlock::REQUIRED_ABI => {
            match landlock::prepare(view, dirs, v, plan.oci.tcp) {
                Ok(p) => {
                    let net = match plan.oci.tcp {
                        true => "fs + scopes (TCP left to the network namespace)",
                        false => "fs + net + scopes",
                    };
                    report.layer("landlock", LayerState::Enforced, format!("ABI {v}, {net}"));
                    return Ok(Some(p));
                }
                Err(e) => e.to_string(),
            }
        }
        Ok(v) => format!("kernel offers ABI {v}, brig needs {} (scopes)", landlock::REQUIRED_ABI),
        Err(e) => format!("landlock_create_ruleset: {e}"),
    };
    if !plan.best_effort {
        return Err(JailError::LayerUnavailable { layer: "landlock", why });
    }
    if let Some(r) = degrade::forbidden(plan, !report.id_mapped.is_empty(), "landlock") {
        return Err(JailError::LayerUnavailable { layer: "landlock", why: format!("{why}; {r}") });
    }
    report.layer("landlock", LayerState::Unavailable, why.clone());
    report.warnings.push(degrade::warning("landlock", &why));
    Ok(None)
}

pub(crate) type ExecArgs = (Vec<CString>, Vec<CString>, Vec<PathBuf>);

/// argv, envp and the PATH search list, as C strings made before clone.
pub(crate) fn exec_args(plan: &Plan) -> Result<ExecArgs, JailError> {
    let bad = |what: &str| JailError::Setup {
        step: "prepare exec",
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        ),
    };
    let argv = plan
        .command
        .iter()
        .map(|a| fs::cstring(a).map_err(|_| bad("an argument")))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = plan
        .env
        .iter()
        .chain(&caps::env(plan))
        .map(|(k, v)| fs::cstring(&format!("{k}={v}")).map_err(|_| bad("an environment value")))
        .collect::<Result<Vec<_>, _>>()?;
    let cmd = plan.command.first().map(String::as_str).unwrap_or_default();
    let search = if cmd.contains('/') {
        Vec::new()
    } else {
        let path = plan.env.iter().find(|(k, _)| k == "PATH").map_or("/usr/bin:/bin", |(_, v)| v);
        path.split(':').filter(|d| d.starts_with('/')).map(PathBuf::from).collect()
    };
    Ok((argv, envp, search))
}

/// Writes the uid/gid maps: one line, the inside ids to the prison's host ids (the caller's, or
/// nobody's when brig is root; the same numbers unless an OCI config names others), or an OCI
/// config's own maps. An unprivileged caller must deny setgroups first.
fn write_id_maps(
    pid: i32,
    maps: &brig_policy::IdMaps,
    unprivileged: bool,
) -> Result<(), JailError> {
    let dir = Path::new("/proc").join(pid.to_string());
    let put = |file: &str, text: String| {
        std::fs::write(dir.join(file), text)
            .map_err(|source| JailError::Setup { step: "uid/gid map", source })
    };
    if unprivileged {
        put("setgroups", "deny".into())?;
    }
    put("uid_map", idmap::text(&maps.uid))?;
    put("gid_map", idmap::text(&maps.gid))
}
