//! `linux.devices`, on the host side: each node is made by brig-oci (root: mknod needs the
//! host's CAP_MKNOD) in a directory of its own, owned as the config says through the prison's
//! id map, then bound into the container like brig's own /dev nodes. The container's devices
//! cgroup (`linux.resources.devices`) still decides whether it may open one.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use oci_spec::runtime::{LinuxDeviceType, Spec};

/// Makes the config's device nodes under `dir`; returns (host node, inside path) pairs.
/// `host_id`: an inside uid or gid to the host id that shows as it inside, if any.
pub fn make(
    spec: &Spec,
    dir: &Path,
    host_id: &dyn Fn(bool, u32) -> Option<u32>,
) -> anyhow::Result<Vec<(PathBuf, PathBuf)>> {
    let devices = spec.linux().as_ref().and_then(|l| l.devices().clone()).unwrap_or_default();
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let host_root = crate::caller::Caller::now()?.host_root();
    let mut out = Vec::new();
    for (i, d) in devices.iter().enumerate() {
        let dest = d.path();
        let bad = dest.components().any(|c| c == std::path::Component::ParentDir);
        if !dest.is_absolute() || bad {
            bail!("linux.devices[{i}]: path {} must be absolute, without `..`", dest.display());
        }
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => bail!("linux.devices[{i}]: type \"a\" is not a device node"),
        };
        if !host_root && kind != libc::S_IFIFO {
            bail!("linux.devices[{i}] ({}): making a device node needs host root", dest.display());
        }
        let node = dir.join(i.to_string());
        let mode = d.file_mode().unwrap_or(0o666) & 0o7777;
        let (major, minor) = (u32::try_from(d.major()), u32::try_from(d.minor()));
        let (Ok(major), Ok(minor)) = (major, minor) else {
            bail!("linux.devices[{i}]: major and minor must be 0 or more");
        };
        brig_sys::fs::mknod(&node, kind | mode, major, minor)
            .with_context(|| format!("linux.devices[{i}]: mknod {}", dest.display()))?;
        // mknod applies the umask; the config's mode is the mode.
        std::fs::set_permissions(&node, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        let owner = |gid: bool, id: Option<u32>| -> anyhow::Result<Option<u32>> {
            let Some(id) = id else { return Ok(None) };
            match host_id(gid, id) {
                Some(h) => Ok(Some(h)),
                None => bail!("linux.devices[{i}]: owner id {id} is not mapped into the container's user namespace"),
            }
        };
        let (uid, gid) = (owner(false, d.uid())?, owner(true, d.gid())?);
        if host_root {
            std::os::unix::fs::chown(&node, uid, gid)?;
        }
        out.push((node, dest.clone()));
    }
    Ok(out)
}

/// Makes the config's nodes under `dir` and hands them to `plan`, owned by the host ids that
/// show as the config's ids inside (the prison's map: the config's own, or brig's one line).
pub fn add(plan: &mut brig_policy::Plan, spec: &Spec, dir: &Path) -> anyhow::Result<()> {
    let (uid, gid) = brig_sys::process::ids();
    let (base_u, base_g) = match uid {
        0 => (brig_jail::launch::ROOT_RUNS_AS, brig_jail::launch::ROOT_RUNS_AS),
        _ => (uid, gid),
    };
    let (pu, pg) = plan.oci.inside_ids.unwrap_or((base_u, base_g));
    let maps = plan.oci.id_maps.clone();
    let host = move |is_gid: bool, id: u32| match &maps {
        Some(m) => brig_policy::IdMaps::host(if is_gid { &m.gid } else { &m.uid }, id),
        None if is_gid => (id == pg).then_some(base_g),
        None => (id == pu).then_some(base_u),
    };
    plan.oci.devices = make(spec, dir, &host)?;
    Ok(())
}
