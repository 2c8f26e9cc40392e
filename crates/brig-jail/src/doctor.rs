//! `brig doctor`: what this kernel offers, probed for real, and which layers brig can enforce.

use brig_sys::process::{self, Forked};

use crate::namespaces;

/// One probed feature.
#[derive(Debug, Clone)]
pub struct Finding {
    pub feature: &'static str,
    pub ok: bool,
    pub detail: String,
    /// true if the default policy cannot be enforced without it
    pub required: bool,
}

fn clone_ok(flags: i32) -> Result<(), std::io::Error> {
    match process::clone_namespaces(flags, &[])? {
        Forked::Child => process::exit_now(0),
        Forked::Parent { pid, .. } => {
            let st = process::wait(pid, false)?;
            match st {
                Some((_, 0)) => Ok(()),
                _ => Err(std::io::Error::other("probe child failed")),
            }
        }
    }
}

fn finding(feature: &'static str, required: bool, r: Result<String, String>) -> Finding {
    match r {
        Ok(detail) => Finding { feature, ok: true, detail, required },
        Err(detail) => Finding { feature, ok: false, detail, required },
    }
}

/// Probes everything. Each probe really uses the feature (in a throwaway child where needed).
pub fn probe() -> Vec<Finding> {
    let mut f = Vec::new();
    let ns = |flags| clone_ok(flags).map(|()| "usable".to_string()).map_err(|e| e.to_string());
    f.push(finding("user namespace", true, ns(libc::CLONE_NEWUSER)));
    f.push(finding("user+mount+pid namespaces", true, ns(namespaces::REQUIRED)));
    f.push(finding("network namespace", true, ns(namespaces::REQUIRED | libc::CLONE_NEWNET)));
    for &(flag, name) in namespaces::OPTIONAL {
        f.push(finding(name, true, ns(namespaces::REQUIRED | flag)));
    }
    f.push(finding("cgroup namespace", true, ns(namespaces::REQUIRED | libc::CLONE_NEWCGROUP)));
    let ll = brig_sys::landlock::abi();
    f.push(finding(
        "landlock",
        true,
        match ll {
            Ok(v) if v >= crate::landlock::REQUIRED_ABI => Ok(format!("ABI {v}")),
            Ok(v) => Err(format!(
                "ABI {v}; brig needs {} for signal and abstract-socket scopes",
                crate::landlock::REQUIRED_ABI
            )),
            Err(e) => Err(e.to_string()),
        },
    ));
    let seccomp = process::prctl(libc::PR_GET_SECCOMP, 0);
    f.push(finding(
        "seccomp filter",
        true,
        seccomp
            .map(|m| match m {
                0 => "available (brig itself runs without a filter)".to_string(),
                _ => "available; brig itself already runs under a filter, which its prisons \
                      inherit on top of brig's"
                    .to_string(),
            })
            .map_err(|e| e.to_string()),
    ));
    f.push(finding(
        "seccomp user notification",
        // The broker answers listen and memfd_create through it.
        true,
        if brig_sys::seccomp::notif_available() {
            Ok("available".into())
        } else {
            Err("unavailable".into())
        },
    ));
    f.push(finding(
        "pidfd",
        true,
        brig_sys::process::pidfd_self()
            .map(|()| "pidfd_open works".into())
            .map_err(|e| e.to_string()),
    ));
    f.push(finding("clone3", false, brig_sys::process::clone3_probe().map_err(|e| e.to_string())));
    f.push(finding(
        "memory cgroup",
        false,
        crate::limits::find("memory")
            .map(|p| format!("memory: {} under {}", p.version, p.dir.display()))
            .map_err(|why| format!("no memory cgroup, so --mem is refused ({why})")),
    ));
    f.push(finding(
        "pids cgroup",
        false,
        crate::limits::find("pids")
            .map(|p| format!("{} under {}", p.version, p.dir.display()))
            .map_err(|why| format!("--procs is an rlimit only ({why})")),
    ));
    f.push(finding(
        "kvm",
        false,
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .map(|_| {
                "/dev/kvm opens read-write (for the VMM; brig run does not use it)".to_string()
            })
            .map_err(|e| format!("/dev/kvm: {e} (only the VMM needs it; brig run does not)")),
    ));
    f
}
