//! Who runs brig-oci, on the host side: host root (a rootful engine), root of an engine's own
//! user namespace (rootless podman runs its runtime there), or an unprivileged user. Each gets
//! different ids for its containers and different powers (cgroups, device nodes).

use std::io;

/// The caller, as the kernel sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// uid 0 of the initial user namespace.
    HostRoot,
    /// uid 0 of a user namespace an engine made; the ids it holds (inside ranges, as
    /// `(first, count)`) of its uid_map and gid_map.
    NestedRoot { uids: Vec<(u32, u32)>, gids: Vec<(u32, u32)> },
    /// Any other uid.
    User,
}

impl Caller {
    pub fn now() -> io::Result<Caller> {
        if brig_sys::process::ids().0 != 0 {
            return Ok(Caller::User);
        }
        let uids = held("uid_map")?;
        if uids == [(0, u32::MAX)] {
            return Ok(Caller::HostRoot);
        }
        Ok(Caller::NestedRoot { uids, gids: held("gid_map")? })
    }

    /// Whether the caller is root of the host: it may write cgroups and make device nodes.
    pub fn host_root(&self) -> bool {
        *self == Caller::HostRoot
    }
}

/// The inside ranges of this process's /proc/self/`file`.
fn held(file: &str) -> io::Result<Vec<(u32, u32)>> {
    let text = std::fs::read_to_string(format!("/proc/self/{file}"))?;
    let bad = || io::Error::other(format!("/proc/self/{file}: unexpected line"));
    text.lines()
        .map(|l| {
            let mut it = l.split_whitespace().map(str::parse::<u32>);
            match (it.next(), it.next(), it.next()) {
                (Some(Ok(first)), Some(Ok(_)), Some(Ok(count))) => Ok((first, count)),
                _ => Err(bad()),
            }
        })
        .collect()
}
