//! Which namespaces to clone into, and what to do when the kernel refuses one.

use std::os::fd::AsFd;

use brig_policy::{JoinedNs, Plan};
use brig_sys::fs;
use brig_sys::mount;
use brig_sys::process::{self, Forked};

use crate::error::JailError;
use crate::grants::{Entry, Kind};
use crate::inside;
use crate::report::{LayerState, Report};

/// Without these brig has no prison at all; --best-effort cannot drop them.
pub const REQUIRED: i32 = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID;

/// Dropped (and reported) under --best-effort if the kernel refuses them.
/// (The network namespace is made by pid 1 itself, overlapped with the uid map writes; see
/// `inside::setup`. The cgroup namespace too, after the cgroup is joined.)
pub const OPTIONAL: &[(i32, &str)] =
    &[(libc::CLONE_NEWIPC, "ipc namespace"), (libc::CLONE_NEWUTS, "uts namespace")];

pub const ALL: i32 = REQUIRED | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS;

/// OCI: joins the namespaces the Plan names by path (the runner, before it clones pid 1, whose
/// own user namespace will have no say over them), and makes in them what pid 1 cannot: the
/// sysfs of a joined network namespace, the mqueue of a joined IPC namespace, the host name of
/// a joined UTS namespace. Returns the clone flags pid 1 must not use.
pub fn join(plan: &Plan, view: &mut [Entry], report: &mut Report) -> Result<i32, JailError> {
    let mut joined = 0;
    for (ns, path) in &plan.oci.joined {
        let (flag, name) = match ns {
            JoinedNs::Net => (libc::CLONE_NEWNET, "network namespace"),
            JoinedNs::Ipc => (libc::CLONE_NEWIPC, "ipc namespace"),
            JoinedNs::Uts => (libc::CLONE_NEWUTS, "uts namespace"),
        };
        let how = libc::O_RDONLY | libc::O_CLOEXEC;
        fs::openat2(None, path, how, 0, 0)
            .and_then(|fd| process::setns(fd.as_fd(), flag))
            .map_err(|e| JailError::Setup {
                step: "join a namespace by path",
                source: std::io::Error::new(e.kind(), format!("{}: {e}", path.display())),
            })?;
        joined |= flag;
        report.layer(name, LayerState::Enforced, format!("joined {}", path.display()));
    }
    for e in view.iter_mut() {
        let made = match &mut e.kind {
            Kind::Sysfs { made } if joined & libc::CLONE_NEWNET != 0 => Some(("sysfs", made)),
            Kind::Mqueue { made } if joined & libc::CLONE_NEWIPC != 0 => Some(("mqueue", made)),
            _ => None,
        };
        if let Some((fstype, made)) = made {
            let attrs = if fstype == "sysfs" { inside::SYSFS } else { inside::MQUEUE };
            // The config's source name, as pid 1 gives the filesystems it makes.
            let m = plan.oci.mounts.iter().find(|m| m.dest == e.dest);
            let label = m.map_or(fstype, |m| m.source.as_str());
            let m = mount::new_fs(fstype, &[("source", label)], attrs)
                .map_err(JailError::setup("mount sysfs or mqueue of a joined namespace"))?;
            *made = Some(m);
        }
    }
    if let (Some(name), true) = (&plan.oci.hostname, joined & libc::CLONE_NEWUTS != 0) {
        process::sethostname(name)
            .map_err(JailError::setup("set the joined uts namespace's host name"))?;
    }
    Ok(joined)
}

/// Records the namespaces of a successful clone as enforced (those joined are recorded by
/// [`join`]).
pub fn record(flags: i32, new_net: bool, oci_root: bool, report: &mut Report) {
    report.layer("user namespace", LayerState::Enforced, "");
    let root = if oci_root { "the bundle's root" } else { "fresh tmpfs root" };
    let how = format!("{root}, pivot_root, old root detached");
    report.layer("mount namespace", LayerState::Enforced, how);
    report.layer("pid namespace", LayerState::Enforced, "");
    for &(f, name) in OPTIONAL {
        if flags & f != 0 {
            report.layer(name, LayerState::Enforced, "");
        }
    }
    // Made inside by pid 1; a DEGRADED record from it overrides these.
    if new_net {
        report.layer("network namespace", LayerState::Enforced, "only loopback");
    }
    report.layer("cgroup namespace", LayerState::Enforced, "");
}

/// Tries a throwaway child in `flags`; true if the kernel allowed it.
fn can_clone(flags: i32) -> bool {
    match process::clone_namespaces(flags, &[]) {
        Ok(Forked::Child) => process::exit_now(0),
        Ok(Forked::Parent { pid, .. }) => {
            let _ = process::wait(pid, false);
            true
        }
        Err(_) => false,
    }
}

/// After clone with `flags` failed with `err`: find which namespace the kernel refuses. Without
/// --best-effort that is a refusal naming the layer; with it, the namespace is dropped, reported
/// and the remaining flags returned.
pub fn fallback(
    flags: i32,
    err: std::io::Error,
    best_effort: bool,
    report: &mut Report,
) -> Result<i32, JailError> {
    if !can_clone(REQUIRED) {
        return Err(JailError::LayerUnavailable {
            layer: "user, mount and pid namespaces",
            why: format!("clone: {err} (check kernel.unprivileged_userns_clone and user.max_user_namespaces)"),
        });
    }
    let mut out = flags;
    for &(f, name) in OPTIONAL {
        if flags & f != 0 && !can_clone(REQUIRED | f) {
            if !best_effort {
                return Err(JailError::LayerUnavailable {
                    layer: name,
                    why: format!("clone: {err}"),
                });
            }
            out &= !f;
            report.layer(name, LayerState::Unavailable, format!("clone: {err}"));
            report.warnings.push(crate::degrade::warning(name, &format!("clone: {err}")));
        }
    }
    if out == flags {
        return Err(JailError::Setup { step: "clone into namespaces", source: err });
    }
    Ok(out)
}
