//! An OCI container's cgroup (`linux.cgroupsPath`, `linux.resources`) on cgroup v1, made by the
//! runner as root on the host side: one directory per mounted controller, the config's values
//! written into it, pid 1 moved in before it goes on. Directories the runner made are removed
//! when it ends (the container then has no process left); ones that were there are kept.

use std::path::{Path, PathBuf};

use brig_policy::CgroupSpec;

use crate::error::JailError;
use crate::limits::{own_cgroup, ROOT};

/// The v1 controllers a container joins when they are mounted.
const CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "pids",
    "devices",
    "freezer",
    "blkio",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
];

#[derive(Debug)]
pub struct OciCgroup {
    /// Made by us, parents first.
    made: Vec<PathBuf>,
    /// The container's directory in each hierarchy, with the hierarchy's real mount point.
    dirs: Vec<(PathBuf, PathBuf)>,
}

fn err(what: String) -> JailError {
    JailError::Limit { message: format!("linux.resources: {what}") }
}

impl OciCgroup {
    pub fn create(spec: &CgroupSpec) -> Result<OciCgroup, JailError> {
        let rel = spec.path.strip_prefix("/").unwrap_or(&spec.path).to_path_buf();
        if rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
            return Err(err(format!("cgroupsPath {:?}: no `..` or `.`", spec.path)));
        }
        let mut cg = OciCgroup { made: Vec::new(), dirs: Vec::new() };
        for ctrl in CONTROLLERS {
            let mount = Path::new(ROOT).join(ctrl);
            // A v1 hierarchy (cpu and cpuacct may be one mount under two links): once each.
            let Ok(real) = std::fs::canonicalize(&mount) else { continue };
            if !mount.join("cgroup.procs").exists() || cg.dirs.iter().any(|(r, _)| *r == real) {
                continue;
            }
            let base = match spec.path.is_absolute() {
                true => mount.clone(),
                false => mount.join(own_cgroup(ctrl).unwrap_or_default()),
            };
            let mut dir = base;
            for part in rel.components() {
                let parent = dir.clone();
                dir.push(part);
                match std::fs::create_dir(&dir) {
                    Ok(()) => {
                        cg.made.push(dir.clone());
                        if *ctrl == "cpuset" {
                            // A new cpuset has no CPUs or memory nodes: no task could join it.
                            for f in ["cpuset.cpus", "cpuset.mems"] {
                                let v = std::fs::read_to_string(parent.join(f)).unwrap_or_default();
                                write(&dir.join(f), v.trim())?;
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(err(format!("create {}: {e}", dir.display()))),
                }
            }
            cg.dirs.push((real, dir));
        }
        for (ctrl, file, value) in &spec.writes {
            let Some(dir) = cg.dir(ctrl) else {
                return Err(err(format!(
                    "the {ctrl} controller is not mounted as cgroup v1 here ({ROOT}/{ctrl}), so {file} cannot be set; refused"
                )));
            };
            write(&dir.join(file), value)?;
        }
        Ok(cg)
    }

    fn dir(&self, ctrl: &str) -> Option<&PathBuf> {
        let real = std::fs::canonicalize(Path::new(ROOT).join(ctrl)).ok()?;
        self.dirs.iter().find(|(r, _)| *r == real).map(|(_, d)| d)
    }

    /// Moves `pid` into the container's cgroup of every controller.
    pub fn join(&self, pid: i32) -> Result<(), JailError> {
        for (_, d) in &self.dirs {
            write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }
}

/// The v1 cgroup directory of `pid` for each controller it lists in /proc/PID/cgroup (a
/// hierarchy of several controllers appears under each of their names), where mounted.
pub fn dirs_of(pid: i32) -> std::io::Result<Vec<(String, PathBuf)>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (_, ctrls, path) = (it.next(), it.next().unwrap_or(""), it.next().unwrap_or(""));
        for ctrl in ctrls.split(',').filter(|c| !c.is_empty() && !c.starts_with("name=")) {
            let dir = Path::new(ROOT).join(ctrl).join(path.trim_start_matches('/'));
            if dir.join("cgroup.procs").exists() {
                out.push((ctrl.to_string(), dir));
            }
        }
    }
    Ok(out)
}

/// `pid`'s own cgroup of `ctrl`: not the hierarchy's root, where a container without a cgroup
/// of its own stays.
pub fn own_dir(pid: i32, ctrl: &str) -> Option<PathBuf> {
    let root = Path::new(ROOT).join(ctrl);
    dirs_of(pid).ok()?.into_iter().find(|(c, d)| c == ctrl && *d != root).map(|(_, d)| d)
}

/// OCI `update`: writes `writes` (controller, file, value) into pid 1's own cgroups, in order.
pub fn update(pid1: i32, writes: &[(String, String, String)]) -> Result<(), JailError> {
    for (ctrl, file, value) in writes {
        let Some(dir) = own_dir(pid1, ctrl) else {
            return Err(err(format!(
                "the container has no {ctrl} cgroup of its own, so {file} cannot be set; refused"
            )));
        };
        write(&dir.join(file), value)?;
    }
    Ok(())
}

fn write(file: &Path, value: &str) -> Result<(), JailError> {
    std::fs::write(file, value).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "this kernel has no such file".to_string(),
            _ => e.to_string(),
        };
        err(format!("write {value:?} to {}: {why}", file.display()))
    })
}

impl Drop for OciCgroup {
    fn drop(&mut self) {
        for d in self.made.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}
