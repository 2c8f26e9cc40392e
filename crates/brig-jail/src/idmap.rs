//! Root runs: writable grants are id-mapped mounts, so the prison's uid (65534) acts as the
//! grant's owner and what it creates belongs to that owner on the host, while the program is
//! still never host root. It can set no setuid or setgid bit (seccomp `@setid-bits`) and give
//! no file capability (no nested user namespace: `@namespaces`, without which it holds no
//! capability at all); neither group may be removed then, nor seccomp dropped. Every bind is
//! nosuid. A filesystem that cannot be id-mapped keeps the plain bind, and the report says so.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use brig_sys::process::{self, Forked};
use brig_sys::{fs, mount};

use crate::error::JailError;
use crate::grants::{Entry, Kind};

/// How writable grants are id-mapped: each grant's owner to the prison's ids, or (OCI, brig's
/// range) every id through the prison's own maps, so files keep their owners inside.
#[derive(Debug, Clone, Copy)]
pub enum Mapping<'a> {
    Owner((u32, u32)),
    Range(&'a brig_policy::IdMaps),
}

/// Replaces every writable bind of `view` (with `Mapping::Owner`, those whose owner is not the
/// prison's) with a detached mount made here, id-mapped as `how` says, with the bind's
/// attributes already set (pid 1 cannot change a mount of the host's user namespace). Returns,
/// for the report, each mapped grant; a grant whose filesystem cannot be id-mapped (NFS, FUSE,
/// overlayfs, ...) stays a plain bind, with a warning in `warnings`.
pub fn map_with(
    view: &mut [Entry],
    how: Mapping<'_>,
    warnings: &mut Vec<String>,
) -> Result<Vec<String>, JailError> {
    let mut done = Vec::new();
    let mut namespaces: Vec<((u32, u32), OwnedFd)> = Vec::new();
    for e in view.iter_mut() {
        let Kind::Bind { fd, rights, device, mapped, origin, source, .. } = &mut e.kind else {
            continue;
        };
        // brig's own device nodes (/dev/null, ...) are writable by everyone already.
        if !(rights.write || rights.create) || *device {
            continue;
        }
        let fail = |source_err: io::Error| JailError::OpenGrant {
            origin: format!("{origin} (id-mapped for the prison's uid)"),
            path: source.clone(),
            source: source_err,
        };
        let owner = fs::owner(fd.as_fd()).map_err(fail)?;
        let (key, maps) = match how {
            Mapping::Owner(prison) if owner == prison => continue,
            Mapping::Owner(prison) => (owner, line_maps(owner, prison)),
            Mapping::Range(m) if !m.map_mounts.contains(&e.dest) => continue,
            Mapping::Range(m) => ((u32::MAX, u32::MAX), (text(&m.uid), text(&m.gid))),
        };
        let ns = match namespaces.iter().find(|(o, _)| *o == key) {
            Some((_, ns)) => ns,
            None => {
                namespaces.push((key, userns(&maps).map_err(fail)?));
                &namespaces[namespaces.len() - 1].1
            }
        };
        let tree = mount::clone_tree(fd.as_fd()).map_err(fail)?;
        mount::set_attr(tree.as_fd(), crate::inside::bind_attrs(*rights, *device), 0, true)
            .map_err(fail)?;
        if let Err(e) = mount::set_idmap(tree.as_fd(), ns.as_fd()) {
            warnings.push(format!(
                "{origin}: its filesystem cannot be id-mapped ({e}), so the prison writes \
                 there only where the files' modes let its host ids write"
            ));
            continue;
        }
        *mapped = Some(tree);
        done.push(match how {
            Mapping::Owner(_) => {
                format!("{origin}: files of {}:{} are the prison's", owner.0, owner.1)
            }
            Mapping::Range(_) => {
                format!("{origin}: files keep their owners inside (the prison's maps)")
            }
        });
    }
    Ok(done)
}

/// uid_map and gid_map text mapping `owner` (uid, gid) to `prison`'s, and nothing else.
fn line_maps(owner: (u32, u32), prison: (u32, u32)) -> (String, String) {
    (format!("{} {} 1\n", owner.0, prison.0), format!("{} {} 1\n", owner.1, prison.1))
}

/// Whether the prison must keep its supplementary groups rather than clear them: an
/// unprivileged caller may not call setgroups, nor may anyone in a user namespace whose maps were
/// written with setgroups denied (a rootless engine's without /etc/subgid).
pub fn keep_groups(host_uid: u32) -> bool {
    host_uid != 0
        || std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// The text of a map's lines.
pub fn text(lines: &[(u32, u32, u32)]) -> String {
    lines.iter().map(|(i, h, n)| format!("{i} {h} {n}\n")).collect()
}

/// A user namespace with these uid_map and gid_map texts. Its process (a fork that only waits)
/// is gone when this returns; the namespace lives on through the fd.
fn userns((uid_map, gid_map): &(String, String)) -> io::Result<OwnedFd> {
    let (r, w) = fs::pipe()?;
    let (pid, _pidfd) = match process::clone_namespaces(libc::CLONE_NEWUSER, &[w.as_fd()])? {
        Forked::Child => {
            let mut b = [0u8; 1];
            let _ = fs::read(r.as_fd(), &mut b);
            process::exit_now(0)
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    drop(r);
    let dir = Path::new("/proc").join(pid.to_string());
    let made = std::fs::write(dir.join("uid_map"), uid_map)
        .and_then(|()| std::fs::write(dir.join("gid_map"), gid_map))
        .and_then(|()| std::fs::File::open(dir.join("ns/user")).map(OwnedFd::from));
    drop(w);
    process::wait(pid, false)?;
    made
}
