//! Container state under `--root`, on the host side: one directory per container (mode 0700)
//! holding `state.json` (what `create` learned: pid 1's pid and start time, brig's supervisor),
//! `exec.fifo` while the container waits for `start`, and `report.json` once it has ended.
//! The status is never stored: it is read from the kernel each time (docs/oci.md "Lifecycle").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

/// The state directory `--root` names, or the default: /run/brig-oci for host root, else
/// `$XDG_RUNTIME_DIR/brig-oci` (root of an engine's user namespace too, as runc does), or
/// /tmp/brig-oci-UID without one.
pub fn root_dir(root: Option<&Path>) -> PathBuf {
    if let Some(r) = root {
        return r.to_path_buf();
    }
    let (uid, _) = brig_sys::process::ids();
    let host_root = crate::caller::Caller::now().is_ok_and(|c| c.host_root());
    match (uid, std::env::var_os("XDG_RUNTIME_DIR")) {
        (0, _) if host_root => PathBuf::from("/run/brig-oci"),
        (_, Some(x)) if !x.is_empty() => PathBuf::from(x).join("brig-oci"),
        _ => PathBuf::from(format!("/tmp/brig-oci-{uid}")),
    }
}

/// Checks a container id: it names a directory under the root.
pub fn check_id(id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c));
    anyhow::ensure!(
        ok,
        "container id {id:?}: use letters, digits, '-', '_', '+' and '.' (not first)"
    );
    Ok(())
}

/// What `create` recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// pid 1 of the container, on the host.
    pub pid: i32,
    /// Its start time (field 22 of /proc/PID/stat): a recycled pid is not the container.
    pub start_time: u64,
    /// brig's supervisor, which holds the container's seccomp listener and writes its report.
    pub supervisor: i32,
    pub bundle: PathBuf,
    pub created: String,
    pub annotations: BTreeMap<String, String>,
    /// The config's hooks as read at create (later changes to the bundle do not count).
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// brig's layers as pid 1 parked: `run.brig.layer.NAME` to `enforced` (or `degraded`,
    /// `unavailable`), with the detail after a colon; shown by `state`.
    #[serde(default)]
    pub layers: BTreeMap<String, String>,
    /// create made the container a cgroup of its own (host root, with linux.resources or
    /// cgroupsPath); without one, pid 1 shares its creator's, which pause and update must
    /// never touch.
    #[serde(default)]
    pub own_cgroup: bool,
}

/// The report's layers (brig's JSON line: name, state, detail) as `state` annotations.
pub fn layers(json: &str) -> BTreeMap<String, String> {
    let v: Vec<serde_json::Value> = serde_json::from_str(json).unwrap_or_default();
    let text = |l: &serde_json::Value, k: &str| l[k].as_str().unwrap_or_default().to_string();
    v.iter()
        .map(|l| {
            let (state, detail) = (text(l, "state"), text(l, "detail"));
            let value = if detail.is_empty() { state } else { format!("{state}: {detail}") };
            (format!("run.brig.layer.{}", text(l, "name").replace(' ', "_")), value)
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    /// Running, with its freezer cgroup frozen.
    Paused,
    Stopped,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// One container's directory.
#[derive(Debug)]
pub struct Container {
    pub dir: PathBuf,
    pub state: State,
}

pub fn dir_of(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

impl Container {
    /// The container `id`, or an error saying it does not exist.
    pub fn load(root: &Path, id: &str) -> anyhow::Result<Container> {
        check_id(id)?;
        let dir = dir_of(root, id);
        let path = dir.join("state.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("container {id:?} does not exist (no {})", path.display())
            }
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        let state = serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
        Ok(Container { dir, state })
    }

    /// Writes `state.json` (through a temporary file and a rename).
    pub fn save(&self) -> anyhow::Result<()> {
        write_atomic(&self.dir.join("state.json"), &serde_json::to_vec_pretty(&self.state)?)
    }

    pub fn fifo(&self) -> PathBuf {
        self.dir.join("exec.fifo")
    }

    /// From the kernel: pid 1 alive (the same process, not a zombie), and the fifo still there.
    pub fn status(&self) -> Status {
        match alive(self.state.pid, self.state.start_time) {
            false => Status::Stopped,
            true if self.fifo().exists() => Status::Created,
            true if self.freezer().is_some_and(|f| frozen(&f)) => Status::Paused,
            true => Status::Running,
        }
    }

    /// pid 1's own freezer cgroup (cgroup v1), if it has one.
    pub fn freezer(&self) -> Option<PathBuf> {
        self.cgroup_dir("freezer")
    }

    /// The container's own cgroup of `ctrl`, if create made one: read from /proc/PID/cgroup,
    /// then pid 1 checked to be still the container's (same pid and start time), so a recycled
    /// pid's cgroup is never taken.
    pub fn cgroup_dir(&self, ctrl: &str) -> Option<PathBuf> {
        if !self.state.own_cgroup {
            return None;
        }
        let dir = brig_jail::oci_cgroup::own_dir(self.state.pid, ctrl)?;
        alive(self.state.pid, self.state.start_time).then_some(dir)
    }

    /// The container's processes (host pids): every process in pid 1's pid namespace; or,
    /// when that cannot be read (pid 1 is not dumpable: an unprivileged caller), pid 1 and its
    /// descendants, which is every process of the container there (no exec).
    pub fn pids(&self) -> Vec<i32> {
        let all: Vec<i32> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .collect();
        let ns = |pid: i32| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
        let mut out: Vec<i32> = match ns(self.state.pid) {
            Some(mine) => all.into_iter().filter(|&p| ns(p).as_ref() == Some(&mine)).collect(),
            None => {
                let mut tree = vec![self.state.pid];
                let mut grew = true;
                while grew {
                    grew = false;
                    for &p in &all {
                        if !tree.contains(&p)
                            && brig_sys::process::parent(p).is_some_and(|pp| tree.contains(&pp))
                        {
                            tree.push(p);
                            grew = true;
                        }
                    }
                }
                tree
            }
        };
        out.sort_unstable();
        out
    }

    /// The state as the runtime spec gives it (the hooks get this: the config's annotations
    /// only).
    pub fn oci_state(&self) -> serde_json::Value {
        let status = self.status();
        let pid = if status == Status::Stopped { 0 } else { self.state.pid };
        serde_json::json!({
            "ociVersion": crate::OCI_VERSION,
            "id": self.state.id,
            "status": status.name(),
            "pid": pid,
            "bundle": self.state.bundle,
            "created": self.state.created,
            "annotations": self.state.annotations,
        })
    }
}

/// pid 1's start time, or None if `pid` is gone or a zombie.
pub fn start_time(pid: i32) -> Option<u64> {
    let fields = brig_sys::process::stat_fields(pid)?;
    if matches!(fields.first().map(String::as_str), Some("Z" | "X" | "x")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

fn frozen(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() != "THAWED")
}

fn alive(pid: i32, started: u64) -> bool {
    pid > 0 && start_time(pid) == Some(started)
}

pub fn write_atomic(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, data).with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for good in ["a", "abc-1_2.3", "x+y"] {
            assert!(check_id(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", ".hidden", "a b", "é"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn start_times() {
        let me = std::process::id() as i32;
        let t = start_time(me).expect("our own start time");
        assert!(alive(me, t));
        assert!(!alive(me, t + 1), "another start time is another process");
        assert!(!alive(i32::MAX, t));
    }
}
