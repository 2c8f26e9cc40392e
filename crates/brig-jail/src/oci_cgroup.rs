//! An OCI container's cgroup (`linux.cgroupsPath`, `linux.resources`) on cgroup v1, made by the
//! runner as root on the host side: one directory per mounted controller, the config's values
//! written into it, pid 1 moved in before it goes on. On a hybrid layout a controller that only
//! the v2 hierarchy has (hugetlb on this machine) is written there, in a directory of the same
//! path. Directories the runner made are removed when it ends (the container then has no
//! process left); ones that were there are kept.

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

/// The v2 hierarchy of a hybrid layout.
const UNIFIED: &str = "/sys/fs/cgroup/unified";

#[derive(Debug)]
pub struct OciCgroup {
    /// Made by us, parents first.
    made: Vec<PathBuf>,
    /// The container's directory in each hierarchy, with the hierarchy's real mount point.
    dirs: Vec<(PathBuf, PathBuf)>,
    /// Its directory in the v2 hierarchy, when a write needs a controller only v2 has.
    v2: Option<PathBuf>,
}

/// Whether the v2 hierarchy offers `ctrl` (hybrid layout: the controllers v1 does not hold).
fn v2_has(ctrl: &str) -> bool {
    let list = std::fs::read_to_string(Path::new(UNIFIED).join("cgroup.controllers"));
    list.is_ok_and(|l| l.split_whitespace().any(|c| c == ctrl))
}

/// A v1 file's v2 name, for what brig-oci writes through v2 (hugetlb limits).
fn v2_file(file: &str) -> Option<String> {
    let size = file.strip_prefix("hugetlb.")?.strip_suffix(".limit_in_bytes")?;
    Some(format!("hugetlb.{size}.max"))
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
        let mut cg = OciCgroup { made: Vec::new(), dirs: Vec::new(), v2: None };
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
            if let Some(dir) = cg.dir(ctrl) {
                write(&dir.join(file), value)?;
                continue;
            }
            let Some(v2_name) = v2_file(file).filter(|_| v2_has(ctrl)) else {
                return Err(err(format!(
                    "the {ctrl} controller is not mounted as cgroup v1 here ({ROOT}/{ctrl}), nor written by brig-oci through cgroup v2, so {file} cannot be set; refused"
                )));
            };
            let dir = match &cg.v2 {
                Some(d) => d.clone(),
                None => cg.make_v2(&spec.path, &rel, ctrl)?,
            };
            write(&dir.join(v2_name), value)?;
        }
        Ok(cg)
    }

    /// The container's directory in the v2 hierarchy, `ctrl` enabled for it in every parent
    /// on the way down (the hierarchy's root included: its subtree_control is the machine's).
    fn make_v2(&mut self, path: &Path, rel: &Path, ctrl: &str) -> Result<PathBuf, JailError> {
        let mut dir = match path.is_absolute() {
            true => PathBuf::from(UNIFIED),
            false => Path::new(UNIFIED).join(own_cgroup("").unwrap_or_default()),
        };
        for part in rel.components() {
            write(&dir.join("cgroup.subtree_control"), &format!("+{ctrl}"))?;
            dir.push(part);
            match std::fs::create_dir(&dir) {
                Ok(()) => self.made.push(dir.clone()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(err(format!("create {}: {e}", dir.display()))),
            }
        }
        self.v2 = Some(dir.clone());
        Ok(dir)
    }

    fn dir(&self, ctrl: &str) -> Option<&PathBuf> {
        let real = std::fs::canonicalize(Path::new(ROOT).join(ctrl)).ok()?;
        self.dirs.iter().find(|(r, _)| *r == real).map(|(_, d)| d)
    }

    /// Moves `pid` into the container's cgroup of every controller.
    pub fn join(&self, pid: i32) -> Result<(), JailError> {
        for d in self.dirs.iter().map(|(_, d)| d).chain(&self.v2) {
            write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }
}

/// The cgroup directory of `pid` for each controller it lists in /proc/PID/cgroup (a v1
/// hierarchy of several controllers appears under each of their names; the v2 one under ""),
/// where mounted.
pub fn dirs_of(pid: i32) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for (ctrl, rel) in crate::limits::cgroups_of(&pid.to_string())? {
        let dir = match ctrl.as_str() {
            "" => Path::new(UNIFIED).join(rel),
            c => Path::new(ROOT).join(c).join(rel),
        };
        if dir.join("cgroup.procs").exists() {
            out.push((ctrl, dir));
        }
    }
    Ok(out)
}

/// `pid`'s cgroup of `ctrl` (in v2 when only v2 has it), unless that is the hierarchy's root.
/// Whether it is the container's own is the caller's to know (brig-oci records it at create).
pub fn own_dir(pid: i32, ctrl: &str) -> Option<PathBuf> {
    let v2 = !Path::new(ROOT).join(ctrl).join("cgroup.procs").exists() && v2_has(ctrl);
    let (name, root) = match v2 {
        true => ("", PathBuf::from(UNIFIED)),
        false => (ctrl, Path::new(ROOT).join(ctrl)),
    };
    dirs_of(pid).ok()?.into_iter().find(|(c, d)| c == name && *d != root).map(|(_, d)| d)
}

/// OCI `update`: writes `writes` (controller, file, value) into the container's own cgroups
/// (`dir_of` a controller), in order, except that a memory limit raised past the current
/// memory+swap limit goes after the new memory+swap limit (the kernel keeps memory <= memsw).
/// A write that fails stops there; the ones before it stay.
pub fn update(
    dir_of: &dyn Fn(&str) -> Option<PathBuf>,
    writes: &[(String, String, String)],
) -> Result<(), JailError> {
    let mut writes = writes.to_vec();
    let at = |w: &[(String, String, String)], f: &str| w.iter().position(|x| x.1 == f);
    let (limit, memsw) =
        (at(&writes, "memory.limit_in_bytes"), at(&writes, "memory.memsw.limit_in_bytes"));
    if let (Some(l), Some(s)) = (limit, memsw) {
        let now = dir_of("memory")
            .and_then(|d| std::fs::read_to_string(d.join("memory.memsw.limit_in_bytes")).ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(i64::MAX);
        let new = writes[s].2.parse::<i64>().map_or(i64::MAX, |v| if v < 0 { i64::MAX } else { v });
        if new > now && s > l {
            writes.swap(l, s);
        }
    }
    for (ctrl, file, value) in &writes {
        let Some(dir) = dir_of(ctrl) else {
            return Err(err(format!(
                "the container has no {ctrl} cgroup of its own, so {file} cannot be set; refused"
            )));
        };
        let file = match dir.starts_with(UNIFIED) {
            true => v2_file(file).unwrap_or_else(|| file.clone()),
            false => file.clone(),
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
