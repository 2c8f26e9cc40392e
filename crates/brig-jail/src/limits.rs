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

/// The rlimits that implement `limits` (RLIMIT_CORE is always 0).
pub fn rlimits(l: &Limits) -> Vec<Rlimit> {
    let mut v = vec![
        (libc::RLIMIT_CORE, 0, 0),
        // +1: pid 1 of the prison runs as the same uid in the same user namespace.
        (libc::RLIMIT_NPROC, l.procs + 1, l.procs + 1),
        (libc::RLIMIT_NOFILE, l.nofile, l.nofile),
    ];
    if let Some(c) = l.cpu {
        let s = c.as_secs().max(1);
        v.push((libc::RLIMIT_CPU, s, s + 1));
    }
    if let Some(m) = l.mem {
        v.push((libc::RLIMIT_AS, m, m));
    }
    if let Some(f) = l.fsize {
        v.push((libc::RLIMIT_FSIZE, f, f));
    }
    v
}

/// A cgroup (v1: one directory per controller; v2: one directory) made for one run.
#[derive(Debug)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
    pub version: &'static str,
    memory_dir: Option<PathBuf>,
    /// The write end of the reaper's pipe: its end of file tells the reaper brig is gone.
    _reaper: Option<OwnedFd>,
}

const V1_ROOT: &str = "/sys/fs/cgroup";

/// This process's cgroup path for a v1 controller or for v2 ("" controller name).
fn own_cgroup(controller: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
        let hit = if controller.is_empty() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        hit.then(|| PathBuf::from(path.trim_start_matches('/')))
    })
}

/// A cgroup directory we may create children in. Judged from the owner and mode bits (root may
/// always), rather than by trying, which would leave a directory behind on failure paths.
fn writable(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = std::fs::metadata(p) else { return false };
    let (uid, _) = brig_sys::process::ids();
    uid == 0 || (m.uid() == uid && m.mode() & 0o200 != 0)
}

/// Where a cgroup can be made here, if anywhere: ("cgroup v1", [memory dir, pids dir]) or
/// ("cgroup v2", [dir]). Used by `brig doctor` too.
pub fn probe() -> Option<(&'static str, Vec<PathBuf>)> {
    let mem = own_cgroup("memory").map(|p| Path::new(V1_ROOT).join("memory").join(p));
    let pids = own_cgroup("pids").map(|p| Path::new(V1_ROOT).join("pids").join(p));
    if let (Some(m), Some(p)) = (mem, pids) {
        if writable(&m) && writable(&p) && m.join("memory.limit_in_bytes").exists() {
            return Some(("cgroup v1", vec![m, p]));
        }
    }
    for base in [Path::new("/sys/fs/cgroup"), Path::new("/sys/fs/cgroup/unified")] {
        if let Some(rel) = own_cgroup("") {
            let dir = base.join(rel);
            let ctl =
                std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
            if ctl.contains("memory") && ctl.contains("pids") && writable(&dir) {
                return Some(("cgroup v2", vec![dir]));
            }
        }
    }
    None
}

/// Whether this run wants a cgroup: only when the user asked for memory or process limits.
pub fn wanted(l: &Limits) -> bool {
    l.mem.is_some() || l.procs != DEFAULT_PROCS
}

impl Cgroup {
    /// Creates `brig.<pid>` cgroups with the limits, after removing stale ones of dead runs.
    pub fn create(l: &Limits) -> Result<Option<Cgroup>, JailError> {
        let Some((version, parents)) = probe() else { return Ok(None) };
        let name = format!("brig.{}", std::process::id());
        let mut cg = Cgroup { dirs: Vec::new(), version, memory_dir: None, _reaper: None };
        for parent in &parents {
            sweep_stale(parent);
            let dir = parent.join(&name);
            std::fs::create_dir(&dir)
                .map_err(|source| JailError::Cgroup { path: dir.clone(), source })?;
            cg.dirs.push(dir);
        }
        let reaper = spawn_reaper(&cg.dirs);
        cg._reaper =
            Some(reaper.map_err(|source| JailError::Cgroup { path: name.into(), source })?);
        let put = |dir: &Path, file: &str, val: String| {
            std::fs::write(dir.join(file), val)
                .map_err(|source| JailError::Cgroup { path: dir.join(file), source })
        };
        let (mdir, pdir) = (cg.dirs[0].clone(), cg.dirs.last().cloned().unwrap_or_default());
        if version == "cgroup v1" {
            if let Some(m) = l.mem {
                put(&mdir, "memory.limit_in_bytes", m.to_string())?;
                let _ = put(&mdir, "memory.memsw.limit_in_bytes", m.to_string());
            }
            put(&pdir, "pids.max", (l.procs + 1).to_string())?;
        } else {
            if let Some(m) = l.mem {
                put(&mdir, "memory.max", m.to_string())?;
                let _ = put(&mdir, "memory.swap.max", "0".into());
            }
            put(&pdir, "pids.max", (l.procs + 1).to_string())?;
        }
        cg.memory_dir = Some(mdir);
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

    /// True if the memory controller killed something in this cgroup.
    pub fn oom_killed(&self) -> bool {
        let Some(d) = &self.memory_dir else { return false };
        let text = std::fs::read_to_string(d.join("memory.oom_control"))
            .or_else(|_| std::fs::read_to_string(d.join("memory.events")))
            .unwrap_or_default();
        text.lines().any(|l| l.starts_with("oom_kill ") && !l.ends_with(" 0"))
    }
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
    let cgv = cg.map(|c| c.version);
    let with_cg = |base: &str| match cgv {
        Some(v) => format!("{base} + {v}"),
        None => base.to_string(),
    };
    let mut out = vec![
        LimitReport {
            name: "processes",
            value: l.procs.to_string(),
            enforced_by: with_cg("rlimit"),
        },
        LimitReport { name: "nofile", value: l.nofile.to_string(), enforced_by: "rlimit".into() },
        LimitReport { name: "core", value: "0".into(), enforced_by: "rlimit".into() },
        LimitReport {
            name: "tmp",
            value: l.tmp_size.to_string(),
            enforced_by: "tmpfs size".into(),
        },
    ];
    if let Some(w) = l.wall {
        out.push(LimitReport {
            name: "wall",
            value: format!("{w:?}"),
            enforced_by: "supervisor".into(),
        });
    }
    if let Some(c) = l.cpu {
        out.push(LimitReport {
            name: "cpu",
            value: format!("{c:?}"),
            enforced_by: "rlimit".into(),
        });
    }
    if let Some(m) = l.mem {
        out.push(LimitReport {
            name: "memory",
            value: m.to_string(),
            enforced_by: with_cg("rlimit (address space)"),
        });
    }
    if let Some(f) = l.fsize {
        out.push(LimitReport { name: "fsize", value: f.to_string(), enforced_by: "rlimit".into() });
    }
    out
}
