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

/// Replaces every writable bind of `view` whose owner is not the prison's `(uid, gid)` with a
/// detached mount made here, id-mapped so that owner's ids on disk are the prison's ids, with
/// the bind's attributes already set (pid 1 cannot change a mount of the host's user namespace).
/// Returns, for the report, each mapped grant with its owner; a grant whose filesystem cannot
/// be id-mapped (NFS, FUSE, ...) stays a plain bind, with a warning in `warnings`.
pub fn map_writable(
    view: &mut [Entry],
    prison: (u32, u32),
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
        if owner == prison {
            continue;
        }
        let ns = match namespaces.iter().find(|(o, _)| *o == owner) {
            Some((_, ns)) => ns,
            None => {
                namespaces.push((owner, userns(owner, prison).map_err(fail)?));
                &namespaces[namespaces.len() - 1].1
            }
        };
        let tree = mount::clone_tree(fd.as_fd()).map_err(fail)?;
        mount::set_attr(tree.as_fd(), crate::inside::bind_attrs(*rights, *device), 0, true)
            .map_err(fail)?;
        if let Err(e) = mount::set_idmap(tree.as_fd(), ns.as_fd()) {
            warnings.push(format!(
                "{origin}: its filesystem cannot be id-mapped ({e}), so the prison (uid {}) \
                 writes there only where the files' modes let uid {} write",
                prison.0, prison.0
            ));
            continue;
        }
        *mapped = Some(tree);
        done.push(format!("{origin}: files of {}:{} are the prison's", owner.0, owner.1));
    }
    Ok(done)
}

/// A user namespace mapping `owner` (uid, gid) to `prison`'s, and nothing else. Its process
/// (a fork that only waits) is gone when this returns; the namespace lives on through the fd.
fn userns(owner: (u32, u32), prison: (u32, u32)) -> io::Result<OwnedFd> {
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
    let made = std::fs::write(dir.join("uid_map"), format!("{} {} 1\n", owner.0, prison.0))
        .and_then(|()| std::fs::write(dir.join("gid_map"), format!("{} {} 1\n", owner.1, prison.1)))
        .and_then(|()| std::fs::File::open(dir.join("ns/user")).map(OwnedFd::from));
    drop(w);
    process::wait(pid, false)?;
    made
}
