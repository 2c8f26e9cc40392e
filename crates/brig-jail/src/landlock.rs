//! Landlock: a ruleset matching the view, handling every right of the kernel's ABI, with the
//! abstract-unix-socket and signal scopes.
//!
//! The ruleset is created in the runner from the grant fds (host inodes are the same inodes the
//! prison sees through its bind mounts). The child adds the few rules for what only exists inside
//! (its /proc, its tmpfs mounts, the generated /etc files) and restricts itself.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use brig_policy::Rights;
use landlock::{
    Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset,
    RulesetAttr, RulesetCreated, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

use crate::error::JailError;
use crate::grants::{Entry, Kind};

/// The oldest ABI that gives every layer the default policy needs (scopes arrived in ABI 6).
pub const REQUIRED_ABI: i32 = 6;

/// A ruleset created in the runner, finished inside the prison.
#[derive(Debug)]
pub struct Prepared {
    ruleset: RulesetCreated,
    /// Rules for what exists only inside, added there: (inside path, access beneath it).
    inside: Vec<(PathBuf, landlock::BitFlags<AccessFs>)>,
}

pub use brig_caps::capmode::access;

/// Creates the ruleset for `view` and the directory capabilities `dirs` at the kernel's ABI
/// `abi_version` (from the probe). `tcp`: TCP bind and connect are not handled (left to the
/// prison's network namespace: OCI containers).
pub fn prepare(
    view: &[Entry],
    dirs: &[(BorrowedFd<'_>, Rights)],
    abi_version: i32,
    tcp: bool,
) -> Result<Prepared, JailError> {
    let abi = ABI::from(abi_version);
    let err = |e: landlock::RulesetError| JailError::Landlock(e.to_string());
    let mut rs = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .map_err(err)?;
    if !tcp {
        rs = rs.handle_access(AccessNet::from_all(abi)).map_err(err)?;
    }
    let mut rs = rs.scope(Scope::from_all(abi)).map_err(err)?.create().map_err(err)?;
    for e in view {
        if let Kind::Bind { fd, ident, rights, .. } = &e.kind {
            let a = access(*rights, ident.is_dir, abi);
            if a.is_empty() {
                continue;
            }
            rs = rs.add_rule(PathBeneath::new(fd.as_fd(), a)).map_err(err)?;
        }
    }
    for (fd, rights) in dirs {
        let a = access(*rights, true, abi);
        if !a.is_empty() {
            rs = rs.add_rule(PathBeneath::new(*fd, a)).map_err(err)?;
        }
    }
    Ok(Prepared { ruleset: rs, inside: inside_rules(view, abi) })
}

/// What the child adds for things that exist only inside: (inside path, access beneath it).
fn inside_rules(view: &[Entry], abi: ABI) -> Vec<(PathBuf, landlock::BitFlags<AccessFs>)> {
    let mut out = Vec::new();
    let mut every_bind_readable = true;
    for e in view {
        let rule = match &e.kind {
            Kind::Proc { .. } | Kind::Sysfs { .. } => Some((Rights::R, true)),
            Kind::Mqueue { .. } => Some((Rights::RWC, true)),
            // Read, write and terminal ioctls on the prison's own ptys; nothing is created by
            // path there (the kernel makes the nodes).
            Kind::Devpts => {
                Some((Rights { read: true, write: true, exec: false, create: false }, true))
            }
            Kind::Tmpfs { exec, .. } => {
                Some((if *exec { Rights::RWXC } else { Rights::RWC }, true))
            }
            Kind::File { .. } | Kind::Copy { .. } => Some((Rights::R, false)),
            Kind::Bind { rights, .. } => {
                every_bind_readable &= rights.read;
                None
            }
            Kind::Symlink { .. } => None,
        };
        if let Some((rights, is_dir)) = rule {
            out.push((e.dest.clone(), access(rights, is_dir, abi)));
        }
    }
    // Listing directories beneath the root shows the view itself (`ls /`, `find /`): only what
    // brig put there. Landlock rules reach everything beneath, so not when a grant lacks `r`
    // (a write-only drop box must not be listed).
    if every_bind_readable {
        out.push((PathBuf::from("/"), AccessFs::ReadDir.into()));
    }
    out
}

impl Prepared {
    /// Inside the prison, after pivot_root: adds the inside rules and restricts this process.
    /// Returns whether the kernel enforced the whole ruleset. `no_new_privs`: set it too (else
    /// the caller holds CAP_SYS_ADMIN in its user namespace, and an OCI config turned it off).
    pub fn restrict(self, no_new_privs: bool) -> Result<bool, String> {
        let mut rs = self.ruleset;
        for (path, a) in &self.inside {
            let fd = PathFd::new(path).map_err(|e| format!("{}: {e}", path.display()))?;
            rs = rs.add_rule(PathBeneath::new(fd, *a)).map_err(|e| e.to_string())?;
        }
        let st = rs.no_new_privs(no_new_privs).restrict_self().map_err(|e| e.to_string())?;
        Ok(st.ruleset == RulesetStatus::FullyEnforced)
    }
}
