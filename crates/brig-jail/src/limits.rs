//! Limits: rlimits are the baseline everywhere; a cgroup adds memory and pids limits where one
//! can be used (v1 controllers writable by us, or a delegated v2 subtree), and says so.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use brig_policy::{Limits, DEFAULT_PROCS};
use brig_sys::fs;
use brig_sys::process::{self, SigSet};

use crate::error::JailError;
use crate::report::LimitReport;

/// One rlimit to set inside: (resource, soft, hard).
pub type Rlimit = (u32, u64, u64);

/// The rlimits that implement `limits` (RLIMIT_CORE is always 0). A limit a cgroup enforces is
/// not set again as an rlimit: RLIMIT_NPROC would refuse a fork before the pids cgroup could
/// count it, and RLIMIT_AS counts reserved address space (a JVM or Go reserves gigabytes it never
/// touches). Without a memory cgroup (`--best-effort` only) memory falls back to RLIMIT_DATA,
/// which counts private writable memory but not PROT_NONE reservations.
pub fn rlimits(l: &Limits, cg: Option<&Cgroup>) -> Vec<Rlimit> {
    let mut v = vec![(libc::RLIMIT_CORE, 0, 0), (libc::RLIMIT_NOFILE, l.nofile, l.nofile)];
    if cg.is_none_or(|c| c.pids.is_none()) {
        // +1: pid 1 of the prison runs as the same uid in the same user namespace.
        v.push((libc::RLIMIT_NPROC, l.procs + 1, l.procs + 1));
    }
    if let Some(c) = l.cpu {
        let s = c.as_secs().max(1);
        v.push((libc::RLIMIT_CPU, s, s + 1));
    }
    match l.mem {
        Some(m) if cg.is_none_or(|c| c.memory.is_none()) => v.push((libc::RLIMIT_DATA, m, m)),
        _ => {}
    }
    if let Some(f) = l.fsize {
        v.push((libc::RLIMIT_FSIZE, f, f));
    }
    v
}

/// A cgroup made for one run: a directory per v1 controller, or one v2 directory.
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
    memory: Option<Place>,
    pids: Option<Place>,
    /// The write end of the reaper's pipe: its end of file tells the reaper brig is gone.
    _reaper: Option<OwnedFd>,
}

/// Where a controller's cgroup of this run lives.
#[derive(Debug, Clone)]
pub struct Place {
    /// "cgroup v1" or "cgroup v2"
    pub version: &'static str,
    pub dir: PathBuf,
}

pub(crate) const ROOT: &str = "/sys/fs/cgroup";

/// This process's cgroup path for a v1 controller or for v2 ("" controller name).
pub(crate) fn own_cgroup(controller: &str) -> Option<PathBuf> {
    cgroups_of("self").ok()?.into_iter().find(|(c, _)| c == controller).map(|(_, p)| p)
}

/// /proc/PID/cgroup as (controller, path relative to its hierarchy) pairs: a v1 hierarchy of
/// several controllers under each of their names (named hierarchies left out), v2 under "".
pub(crate) fn cgroups_of(pid: &str) -> std::io::Result<Vec<(String, PathBuf)>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (_, ctrls, path) = (it.next(), it.next().unwrap_or(""), it.next().unwrap_or(""));
        let rel = PathBuf::from(path.trim_start_matches('/'));
        match ctrls {
            "" => out.push((String::new(), rel)),
            _ => out.extend(
                ctrls
                    .split(',')
                    .filter(|c| !c.is_empty() && !c.starts_with("name="))
                    .map(|c| (c.to_string(), rel.clone())),
            ),
        }
    }
    Ok(out)
}

/// Whether we may create children in a cgroup directory: judged from the owner and mode bits
/// (root may always) rather than by trying, which would leave a directory behind on failure
/// paths. Err says whose it is.
fn writable(p: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
    let (uid, _) = brig_sys::process::ids();
    match uid == 0 || (m.uid() == uid && m.mode() & 0o200 != 0) {
        true => Ok(()),
        false => {
            Err(format!("{} belongs to uid {} and brig runs as uid {uid}", p.display(), m.uid()))
        }
    }
}

/// Where a cgroup with `controller` ("memory" or "pids") can be made here: this process's own
/// v1 cgroup of that controller, or its own v2 cgroup (at /sys/fs/cgroup or, on a hybrid host,
/// /sys/fs/cgroup/unified) when that delegates the controller to children. Err says why not,
/// for each place looked at.
pub fn find(controller: &str) -> Result<Place, String> {
    let mut why = Vec::new();
    if let Some(rel) = own_cgroup(controller) {
        let dir = Path::new(ROOT).join(controller).join(rel);
        match writable(&dir) {
            Ok(()) => return Ok(Place { version: "cgroup v1", dir }),
            Err(e) => why.push(format!("v1: {e}")),
        }
    }
    if let Some(rel) = own_cgroup("") {
        for base in [Path::new(ROOT), &Path::new(ROOT).join("unified")] {
            let dir = base.join(&rel);
            // Offered to this cgroup by its parent: brig can enable it for its children.
            let Ok(ctl) = std::fs::read_to_string(dir.join("cgroup.controllers")) else {
                continue;
            };
            if !ctl.split_whitespace().any(|c| c == controller) {
                why.push(format!("v2: {} is not given {controller}", dir.display()));
                continue;
            }
            match writable(&dir) {
                Ok(()) => return Ok(Place { version: "cgroup v2", dir }),
                Err(e) => why.push(format!("v2: {e}")),
            }
        }
    }
    if why.is_empty() {
        why.push(format!("this host has no {controller} controller"));
    }
    Err(why.join("; "))
}

/// Makes a v2 cgroup `dir` (brig's own) pass `controllers` to its children. A v2 cgroup with
/// processes cannot (only leaves hold processes, the root excepted), so brig first moves itself
/// into the leaf `dir/brig-supervisor` (kept: it is brig's cgroup while it runs, and goes with
/// the delegated cgroup; `systemd-run --scope` removes it with the scope). This fails when
/// other processes share `dir`, which a cgroup delegated to one command does not.
fn delegate_v2(dir: &Path, controllers: &[&str]) -> Result<(), JailError> {
    let sub = dir.join("cgroup.subtree_control");
    let on = std::fs::read_to_string(&sub).unwrap_or_default();
    let missing: Vec<String> = (controllers.iter())
        .filter(|c| !on.split_whitespace().any(|o| o == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let cg = |path: PathBuf| move |source| JailError::Cgroup { path: path.clone(), source };
    if dir != Path::new(ROOT) {
        let leaf = dir.join("brig-supervisor");
        match std::fs::create_dir(&leaf) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(cg(leaf)(e)),
            _ => {}
        }
        let procs = leaf.join("cgroup.procs");
        std::fs::write(&procs, std::process::id().to_string()).map_err(cg(procs))?;
    }
    std::fs::write(&sub, missing.join(" ")).map_err(|e| JailError::Limit {
        message: format!(
            "cannot pass {} to the children of {} ({e}): other processes share that cgroup; \
             run brig alone in a delegated cgroup (`systemd-run --user --scope -p Delegate=yes \
             brig run ...`)",
            missing.join(" "),
            dir.display()
        ),
    })
}

/// Whether this run wants a cgroup: only when the user asked for memory or process limits.
pub fn wanted(l: &Limits) -> bool {
    l.mem.is_some() || l.procs != DEFAULT_PROCS
}

/// Why `--mem` cannot be had here, and what to do.
fn no_memory_cgroup(why: &str) -> String {
    format!(
        "--mem needs a memory cgroup brig can make children in, and there is none ({why}). Run \
         brig in a delegated cgroup (systemd: `systemd-run --user --scope -p Delegate=yes brig \
         run ...`; without systemd, root makes a cgroup, chowns it to you and moves your shell \
         into it), or as root; or add --best-effort for a partial limit (RLIMIT_DATA: anonymous \
         memory only)"
    )
}

impl Cgroup {
    /// Creates `brig.<pid>` cgroups with the limits, after removing stale ones of dead runs.
    /// `--mem` without a memory cgroup is refused unless `best_effort` (then `warnings` says
    /// what is not counted); `--procs` falls back to RLIMIT_NPROC silently (it too counts
    /// processes and threads, those of the prison's uid in its user namespace; it cannot say
    /// when it bit).
    pub fn create(
        l: &Limits,
        best_effort: bool,
        warnings: &mut Vec<String>,
    ) -> Result<Option<Cgroup>, JailError> {
        let memory = match l.mem.map(|_| find("memory")) {
            Some(Err(why)) if !best_effort => {
                return Err(JailError::Limit { message: no_memory_cgroup(&why) })
            }
            Some(Err(why)) => {
                warnings.push(format!(
                    "--best-effort: no memory cgroup ({why}); --mem is RLIMIT_DATA, a partial \
                     limit per process: anonymous memory only; tmpfs, memfd, pipes not counted"
                ));
                None
            }
            Some(Ok(p)) => Some(p),
            None => None,
        };
        let pids = find("pids").ok();
        if memory.is_none() && pids.is_none() {
            return Ok(None);
        }
        let mut v2: Vec<(&Path, Vec<&str>)> = Vec::new();
        for (place, name) in [(&memory, "memory"), (&pids, "pids")] {
            let Some(p) = place.as_ref().filter(|p| p.version == "cgroup v2") else { continue };
            match v2.iter_mut().find(|(d, _)| *d == p.dir) {
                Some((_, names)) => names.push(name),
                None => v2.push((&p.dir, vec![name])),
            }
        }
        for (dir, names) in v2 {
            delegate_v2(dir, &names)?;
        }
        let name = format!("brig.{}", std::process::id());
        let mut cg = Cgroup { dirs: Vec::new(), memory: None, pids: None, _reaper: None };
        for parent in memory.iter().chain(&pids) {
            let dir = parent.dir.join(&name);
            if cg.dirs.contains(&dir) {
                continue;
            }
            sweep_stale(&parent.dir);
            std::fs::create_dir(&dir)
                .map_err(|source| JailError::Cgroup { path: dir.clone(), source })?;
            cg.dirs.push(dir);
        }
        let reaper = spawn_reaper(&cg.dirs);
        cg._reaper =
            Some(reaper.map_err(|source| JailError::Cgroup { path: name.clone().into(), source })?);
        let put = |dir: &Path, file: &str, val: String| {
            std::fs::write(dir.join(file), val)
                .map_err(|source| JailError::Cgroup { path: dir.join(file), source })
        };
        let made = |p: &Place| Place { version: p.version, dir: p.dir.join(&name) };
        if let (Some(m), Some(p)) = (l.mem, &memory) {
            let p = made(p);
            if p.version == "cgroup v1" {
                put(&p.dir, "memory.limit_in_bytes", m.to_string())?;
                let _ = put(&p.dir, "memory.memsw.limit_in_bytes", m.to_string());
            } else {
                put(&p.dir, "memory.max", m.to_string())?;
                let _ = put(&p.dir, "memory.swap.max", "0".into());
            }
            cg.memory = Some(p);
        }
        if let Some(p) = &pids {
            let p = made(p);
            put(&p.dir, "pids.max", (l.procs + 1).to_string())?;
            cg.pids = Some(p);
        }
        Ok(Some(cg))
    }

    /// Moves `pid` (the prison's pid 1, still waiting for its go) into every directory.
    pub fn join(&self, pid: i32) -> Result<(), JailError> {
        for d in &self.dirs {
            let f = d.join("cgroup.procs");
            std::fs::write(&f, pid.to_string())
                .map_err(|source| JailError::Cgroup { path: f, source })?;
        }
        Ok(())
    }

    /// How many processes the memory controller killed in this cgroup.
    pub fn oom_kills(&self) -> u64 {
        let Some(p) = &self.memory else { return 0 };
        let file = if p.version == "cgroup v1" { "memory.oom_control" } else { "memory.events" };
        counter(&p.dir.join(file), "oom_kill")
    }

    /// How many forks or new threads the pids controller refused.
    pub fn tasks_refused(&self) -> u64 {
        self.pids.as_ref().map_or(0, |p| counter(&p.dir.join("pids.events"), "max"))
    }

    /// Whether the pids controller enforces `--procs`.
    pub fn counts_tasks(&self) -> bool {
        self.pids.is_some()
    }
}

/// A `name value` line of a cgroup's flat-keyed file.
fn counter(file: &Path, name: &str) -> u64 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

impl Drop for Cgroup {
    /// Removes the directories; the prison is dead by now (pid 1 was reaped).
    fn drop(&mut self) {
        for d in &self.dirs {
            for _ in 0..100 {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
    }
}

/// Forks the cgroup's reaper: a process outside the prison, brig's process group and session,
/// holding nothing but the read end of a pipe whose write end only brig holds. However brig
/// ends (an error, a signal, SIGKILL), the pipe reads end-of-file and the reaper removes the
/// directories once the prison's processes have left them (pid 1 dies with brig: PDEATHSIG).
/// After a normal run brig has removed them itself and the reaper just exits.
fn spawn_reaper(dirs: &[PathBuf]) -> std::io::Result<OwnedFd> {
    let (r, w) = fs::pipe()?;
    if process::fork()?.is_some() {
        return Ok(w);
    }
    // The reaper: a single-threaded copy of brig (brig forks before any thread exists).
    drop(w);
    let _ = fs::close_all_except(0, &[r.as_fd()]);
    let _ = process::setsid();
    let _ = process::blank_cmdline("brig-reaper");
    let _ = SigSet::of(&[libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT]).block();
    let mut b = [0u8; 1];
    while matches!(fs::read(r.as_fd(), &mut b), Ok(n) if n > 0) {}
    for d in dirs {
        for _ in 0..2000 {
            if std::fs::remove_dir(d).is_ok() || !d.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    process::exit_now(0)
}

/// Removes `brig.<pid>` cgroups left by runs whose brig and reaper were both killed.
fn sweep_stale(parent: &Path) {
    let Ok(rd) = std::fs::read_dir(parent) else { return };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("brig.")) else { continue };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

/// The report lines for limits, naming the mechanism behind each.
pub fn describe(l: &Limits, cg: Option<&Cgroup>) -> Vec<LimitReport> {
    let line = |name, value: String, by: &str| LimitReport { name, value, enforced_by: by.into() };
    let procs_by = match cg.and_then(|c| c.pids.as_ref()) {
        Some(p) => format!("{} pids (processes and threads)", p.version),
        None => "rlimit (processes and threads of the prison's uid)".into(),
    };
    let mut out = vec![
        line("processes", l.procs.to_string(), &procs_by),
        line("nofile", l.nofile.to_string(), "rlimit"),
        line("core", "0".into(), "rlimit"),
        line("tmp", l.tmp_size.to_string(), "tmpfs size"),
    ];
    if let Some(w) = l.wall {
        out.push(line("wall", format!("{w:?}"), "supervisor"));
    }
    if let Some(c) = l.cpu {
        out.push(line("cpu", format!("{c:?}"), "rlimit"));
    }
    if let Some(m) = l.mem {
        let by = match cg.and_then(|c| c.memory.as_ref()) {
            Some(p) => format!(
                "{} memory (all memory it charges: anonymous, tmpfs, memfd, pipes, page cache)",
                p.version
            ),
            None => {
                "rlimit (data): partial: anonymous memory only; tmpfs, memfd, pipes not counted"
                    .into()
            }
        };
        out.push(line("memory", m.to_string(), &by));
    }
    if let Some(f) = l.fsize {
        out.push(line("fsize", f.to_string(), "rlimit"));
    }
    out
}
