//! A bundle's `config.json` made into a brig Plan. Each field is honoured, honoured more
//! strictly than asked (brig's layers stay on), or refused with the reason: nothing the config
//! asks to restrict is silently dropped (docs/oci.md has the table).

use std::path::{Path, PathBuf};

use crate::caller::Caller;
use anyhow::{bail, Context};
use brig_policy::{
    Flags, Grant, GrantFlag, Host, IdMaps, JoinedNs, OciFs, OciMount, Plan, Rights, RootFs,
};

use crate::translate;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// Reads and checks `bundle/config.json`.
pub fn load(bundle: &Path) -> anyhow::Result<Spec> {
    load_file(&bundle.join("config.json"))
}

/// Reads and checks one config.json.
pub fn load_file(path: &Path) -> anyhow::Result<Spec> {
    let path = path.to_path_buf();
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    // serde's own error names the line, the column and what was wrong there.
    let spec: Spec = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!("{}: {e} (see the runtime spec's config.md for the field)", path.display())
    })?;
    let v = spec.version();
    let major = v.split('.').next().and_then(|m| m.parse::<u32>().ok());
    let parts = v.split('.').count();
    if major != Some(1) || parts < 3 {
        bail!(
            "{}: ociVersion {v:?} is not a 1.x.y version this runtime implements",
            path.display()
        );
    }
    Ok(spec)
}

/// The Plan for `spec`'s process in `bundle`; `warnings` gets what brig does more strictly
/// than the config asks.
pub fn plan(
    bundle: &Path,
    spec: &Spec,
    id: &str,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Plan> {
    let Some(process) = spec.process() else { bail!("config.json has no process to run") };
    let args = process.args().clone().unwrap_or_default();
    anyhow::ensure!(!args.is_empty(), "process.args is empty: give the program to run");
    crate::hooks::check(spec.hooks().as_ref())?;
    let root = spec.root().as_ref().context("config.json has no root")?;
    let rootfs = match root.path().is_absolute() {
        true => root.path().clone(),
        false => bundle.join(root.path()),
    };
    // A terminal: brig's private pty of the prison's devpts, its master relayed by `run` or
    // handed to the engine's console socket by `create`.
    let pty = if process.terminal() == Some(true) { "always" } else { "never" };
    let mut joined = Vec::new();
    let mut idmapped = Vec::new();
    let caller = Caller::now().context("read this process's uid_map")?;
    let mut flags =
        Flags { command: args, no_system: true, pty: Some(pty.into()), ..Flags::default() };
    let mut tmpfs = Vec::new();
    let mut dev_shm = false;
    let mut shm_bind = None;
    let mut oci_mounts = Vec::new();
    for m in spec.mounts().iter().flatten() {
        let dest = m.destination().display().to_string();
        let opts = m.options().clone().unwrap_or_default();
        let mut fs = OciFs::View;
        if m.destination().components().any(|c| c == std::path::Component::ParentDir) {
            bail!("mount {dest}: a destination with `..` is refused; give the path itself");
        }
        match (m.typ().as_deref(), dest.as_str()) {
            // brig's own: a fresh procfs of the pid namespace, its minimal /dev, a private devpts.
            (Some("proc"), "/proc") | (Some("tmpfs"), "/dev") | (Some("devpts"), "/dev/pts") => {}
            // Replaces brig's /dev/shm link to /tmp (an OCI root has no /tmp of brig's).
            (Some("tmpfs"), "/dev/shm") => dev_shm = true,
            (Some("tmpfs"), _) => tmpfs.push(dest.clone()),
            (Some("bind") | None, _) if opts.iter().any(|o| o == "bind" || o == "rbind") => {
                let source = m.source().clone().context("a bind mount without a source")?;
                let source = if source.is_absolute() { source } else { bundle.join(source) };
                let ro = opts.iter().any(|o| o == "ro");
                if dest == "/dev/shm" {
                    // The engine's own shm directory, in place of brig's /dev/shm link.
                    let rights = if ro { Rights::RX } else { Rights::RWXC };
                    let origin = "mounts (/dev/shm)".to_string();
                    shm_bind = Some(Grant { source, dest: "/dev/shm".into(), rights, origin });
                    continue;
                }
                let flag = if ro { GrantFlag::Rx } else { GrantFlag::Rwx };
                // One spelling of the destination for the grant and its idmap entry.
                let dest = clean(&dest);
                flags.grants.push((flag, format!("{}:{}", source.display(), dest.display())));
                if opts.iter().any(|o| o == "idmap" || o == "ridmap") {
                    idmapped.push(dest);
                }
            }
            (Some("sysfs"), _) => fs = OciFs::Sysfs,
            (Some("mqueue"), _) => fs = OciFs::Mqueue,
            (Some(t @ ("cgroup" | "cgroup2")), _) => {
                warnings.push(format!("mount {dest} ({t}) is not made: brig's view has none"));
            }
            (t, _) => bail!("mount {dest}: type {t:?} is not supported by brig-oci"),
        }
        let source = m.source().as_ref().map(|p| p.display().to_string());
        let source = source.or(m.typ().clone()).unwrap_or_else(|| "none".into());
        oci_mounts.push(OciMount { dest: clean(&dest), source, fs });
    }
    flags.tmpfs = tmpfs;
    if let Some(linux) = spec.linux() {
        for ns in linux.namespaces().iter().flatten() {
            let Some(path) = ns.path() else { continue };
            let t = match ns.typ() {
                LinuxNamespaceType::Network => JoinedNs::Net,
                LinuxNamespaceType::Ipc => JoinedNs::Ipc,
                LinuxNamespaceType::Uts => JoinedNs::Uts,
                t => bail!("linux.namespaces: joining the {t:?} namespace at {} is refused: a container's user, mount, pid and cgroup namespaces are always brig's own (its view, its pid 1); a pod may share network, IPC and UTS", path.display()),
            };
            joined.push((t, path.clone()));
        }
        let has = |t: LinuxNamespaceType| linux.namespaces().iter().flatten().any(|n| n.typ() == t);
        for (t, what) in
            [(LinuxNamespaceType::Network, "network"), (LinuxNamespaceType::User, "user")]
        {
            if !has(t) {
                warnings.push(format!(
                    "a new {what} namespace is made although the config shares the host's"
                ));
            }
        }
        // Device rules hold by construction too: the view has only brig's minimal /dev,
        // every other mount is nodev, and no device node can be made in a user namespace.
        if linux.resources().iter().flat_map(|r| r.devices().iter().flatten()).any(|d| d.allow()) {
            warnings.push(
                "linux.resources.devices: allowed devices get no node beyond brig's minimal /dev and linux.devices"
                    .into(),
            );
        }
        for (k, v) in linux.sysctl().iter().flatten() {
            // Only what the container's own namespaces hold (network, IPC): anything else
            // would be the host's.
            let ipc = [
                "kernel.msgmax",
                "kernel.msgmnb",
                "kernel.msgmni",
                "kernel.sem",
                "kernel.shmall",
                "kernel.shmmax",
                "kernel.shmmni",
                "kernel.shm_rmid_forced",
            ];
            let ok =
                (k.starts_with("net.") || k.starts_with("fs.mqueue.") || ipc.contains(&k.as_str()))
                    && k.split('.').all(|p| !p.is_empty() && p != ".." && !p.contains('/'));
            anyhow::ensure!(ok, "linux.sysctl: {k} is not of the container's own namespaces (net.*, fs.mqueue.*, kernel IPC limits); refused");
            let of = if k.starts_with("net.") { JoinedNs::Net } else { JoinedNs::Ipc };
            anyhow::ensure!(!joined.iter().any(|(t, _)| *t == of), "linux.sysctl: {k} is of a namespace the container joins, not its own; set it where that namespace is made");
            anyhow::ensure!(!v.contains('\n'), "linux.sysctl: {k}: a value with a newline");
        }
        for (key, paths) in
            [("maskedPaths", linux.masked_paths()), ("readonlyPaths", linux.readonly_paths())]
        {
            for p in paths.iter().flatten() {
                let path = Path::new(p);
                let dots = path.components().any(|c| c == std::path::Component::ParentDir);
                let ok = path.is_absolute()
                    && !dots
                    && path != Path::new("/proc")
                    && path != Path::new("/");
                anyhow::ensure!(ok, "linux.{key}: {p:?}: give an absolute path inside the container, without `..` (not / or /proc itself)");
            }
        }
    }
    let host = Host { cwd: bundle.to_path_buf(), env: Vec::new() };
    let mut plan = brig_policy::plan(&flags, None, &host)?;
    if let (Some((_, path)), Caller::User) = (joined.first(), &caller) {
        bail!("linux.namespaces: joining {} needs root (setns asks for CAP_SYS_ADMIN in the caller's own user namespace): run brig-oci as root, or as root of the engine's user namespace that owns it", path.display());
    }
    plan.oci.joined = joined;
    plan.oci.tcp = true;
    plan.env = process
        .env()
        .iter()
        .flatten()
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    plan.oci.mounts = oci_mounts;
    if dev_shm {
        plan.tmpfs.push(PathBuf::from("/dev/shm"));
    }
    plan.grants.extend(shm_bind);
    plan.chdir = Some(PathBuf::from(process.cwd()));
    plan.oci.rootfs = Some(RootFs { path: rootfs, readonly: root.readonly() == Some(true) });
    let user = process.user();
    plan.oci.inside_ids = Some((user.uid(), user.gid()));
    plan.oci.umask = user.umask();
    if let Some(linux) = spec.linux() {
        plan.oci.cgroup = translate::cgroup(linux, id, !caller.host_root(), warnings)?;
        plan.oci.id_maps = translate::id_maps(linux, &caller)?;
        plan.oci.sysctl =
            linux.sysctl().iter().flatten().map(|(k, v)| (k.clone(), v.clone())).collect();
    }
    if plan.oci.id_maps.is_none() {
        plan.oci.id_maps = match &caller {
            // A root run's container gets a range of brig's, so its users and the image's
            // owners are all ids inside (a service that drops to uid 33 can); never host root.
            Caller::HostRoot => Some(translate::brig_range()?),
            // In an engine's user namespace (rootless podman): every id it holds, as itself,
            // as runc would run it; brig's own user namespace still sits below.
            Caller::NestedRoot { uids, gids } => Some(translate::identity(uids, gids)),
            Caller::User => None,
        };
    }
    if !idmapped.is_empty() {
        let Some(m) = plan.oci.id_maps.as_mut() else {
            bail!("mounts: option idmap needs the container's own id maps: run brig-oci as root");
        };
        m.map_mounts.extend(idmapped);
    }
    let groups: Vec<u32> = user.additional_gids().iter().flatten().copied().collect();
    if !groups.is_empty() {
        let mapped =
            |g: u32| plan.oci.id_maps.as_ref().is_some_and(|m| IdMaps::host(&m.gid, g).is_some());
        let bad = groups.iter().find(|&&g| !mapped(g));
        anyhow::ensure!(bad.is_none(), "process.user.additionalGids: gid {} is not mapped into the container's user namespace (an unprivileged run maps only its own ids); refused rather than dropped", bad.copied().unwrap_or_default());
        plan.oci.groups = groups;
    }
    plan.oci.oom_score_adj = process.oom_score_adj();
    plan.oci.hostname = spec.hostname().clone();
    if let Some(linux) = spec.linux() {
        plan.oci.masked_paths = linux.masked_paths().iter().flatten().map(PathBuf::from).collect();
        plan.oci.readonly_paths =
            linux.readonly_paths().iter().flatten().map(PathBuf::from).collect();
    }
    plan.oci.rlimits =
        process.rlimits().iter().flatten().map(translate::rlimit).collect::<Result<_, _>>()?;
    // The config's capabilities, in the container's own user namespace; none without the field.
    plan.oci.capabilities = Some(match process.capabilities() {
        Some(c) => translate::capabilities(c)?,
        None => Default::default(),
    });
    plan.no_new_privs = process.no_new_privileges() == Some(true);
    if let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        plan.oci.seccomp_profile = Some(translate::seccomp(s, warnings)?);
    }
    Ok(plan)
}

/// A destination as the view names it: absolute, no `.` or empty components, no trailing `/`.
fn clean(dest: &str) -> PathBuf {
    let mut p = PathBuf::from("/");
    for c in Path::new(dest).components() {
        if let std::path::Component::Normal(n) = c {
            p.push(n);
        }
    }
    p
}
