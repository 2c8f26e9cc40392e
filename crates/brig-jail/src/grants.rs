//! The grant phase: the one module that opens host paths.
//!
//! The `Plan`'s grants and the default system view become a sorted list of `Entry`s. Every host
//! path is opened here, once, with `openat2(O_PATH, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`
//! after resolving the symlinks root owns (the system's own); any other symlink on the path is
//! refused, so a link planted by an earlier prison cannot redirect a grant.
//! The fd and its (dev, inode) are kept. Inside the prison the child re-opens the same path in
//! its copy of the mount namespace and refuses to mount it unless the identity matches, so a
//! path swapped between plan and mount is caught.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use brig_policy::{system, OciFs, Plan, Rights};
use brig_sys::fs::{self, resolve, Ident};

use crate::error::JailError;

/// What one entry of the view is.
#[derive(Debug)]
pub enum Kind {
    /// A host file or directory bind-mounted at `dest`; `device` keeps device nodes usable
    /// (every other bind is nodev).
    Bind {
        source: PathBuf,
        fd: OwnedFd,
        ident: Ident,
        rights: Rights,
        origin: String,
        device: bool,
        /// Root runs, writable grants: the detached id-mapped mount made by the runner
        /// (`idmap.rs`), attached as it is.
        mapped: Option<OwnedFd>,
    },
    /// A symlink created on the root tmpfs (merged-/usr links such as `/bin -> usr/bin`).
    Symlink { target: PathBuf },
    /// A small file written on the root tmpfs (`/etc/passwd` stub and friends).
    File { data: Vec<u8> },
    /// A host file copied onto the root tmpfs by the kernel (`/etc` files of the system view):
    /// its fd, opened in the grant phase, and the length to copy.
    Copy { fd: OwnedFd, len: u64 },
    /// A private tmpfs; `shared`: world-writable and sticky (1777, as /tmp), else 0755 (brig's
    /// /dev on an OCI root: in a sticky world-writable directory the kernel refuses O_CREAT
    /// opens of another owner's device nodes, `>/dev/null` included).
    Tmpfs { size: u64, exec: bool, shared: bool },
    /// A fresh procfs for the prison's pid namespace, with these names in it covered (an OCI
    /// config's `maskedPaths`, besides brig's own) or made read-only (`readonlyPaths`).
    /// `sysctl`: (path under /proc, value) written first (an OCI config's `linux.sysctl`).
    Proc { masked: Vec<PathBuf>, readonly: Vec<PathBuf>, sysctl: Vec<(PathBuf, String)> },
    /// A private devpts instance: the prison's own pseudo-terminals.
    Devpts,
    /// OCI: a read-only sysfs of the prison's network namespace; `made`: by the runner, in a
    /// network namespace the prison joins (pid 1 has no say over one it did not make).
    Sysfs { made: Option<OwnedFd> },
    /// OCI: an mqueue filesystem of the prison's IPC namespace; `made` as for sysfs.
    Mqueue { made: Option<OwnedFd> },
}

/// One mount, link or file of the prison's filesystem view.
#[derive(Debug)]
pub struct Entry {
    /// Absolute path inside the prison.
    pub dest: PathBuf,
    pub kind: Kind,
    /// True if `dest` lies inside a directory bind mount: its mountpoint must already exist there
    /// (brig never creates anything on a host filesystem).
    pub inside_bind: bool,
}

impl Entry {
    /// `dest` without its leading `/`, for `*at()` calls relative to the new root.
    pub fn rel(&self) -> &Path {
        self.dest.strip_prefix("/").unwrap_or(&self.dest)
    }

    /// What to show in messages: the grant's origin or the inside path.
    pub fn operand(&self) -> String {
        match &self.kind {
            Kind::Bind { origin, source, .. } => {
                format!("{} ({} -> {})", origin, source.display(), self.dest.display())
            }
            _ => self.dest.display().to_string(),
        }
    }
}

/// The size of brig's /dev on an OCI root (it holds mountpoints and links only).
const DEV_SIZE: u64 = 64 << 10;
/// `/dev/tty` opens the opener's controlling terminal: inside, the prison's own or none.
const DEVICES: &[&str] =
    &["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"];
const DEV_LINKS: &[(&str, &str)] = &[
    ("/dev/ptmx", "pts/ptmx"),
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
    ("/dev/shm", "/tmp"),
];

/// Resolves the plan into the ordered view, opening every host path.
pub fn open_view(plan: &Plan, uid: u32, gid: u32) -> Result<Vec<Entry>, JailError> {
    let mut v = Vec::new();
    if plan.system {
        // The system view is reviewed data in brig-policy (`brig check --verbose` shows it).
        for (p, _) in system::RUNTIME {
            system_entry(&mut v, Path::new(p), Rights::RX, false)?;
        }
        for (p, _) in system::ETC {
            system_entry(&mut v, Path::new(p), Rights::R, true)?;
        }
        for (name, data) in etc_stubs(uid, gid) {
            v.push(entry(name, Kind::File { data: data.into_bytes() }));
        }
        if plan.resolver() {
            // --egress: names go to the broker's resolver on the prison's loopback.
            v.retain(|e| e.dest != Path::new("/etc/nsswitch.conf"));
            let ns = "passwd: files\ngroup: files\nhosts: files dns\n";
            v.push(entry("/etc/nsswitch.conf", Kind::File { data: ns.into() }));
            let conf = "nameserver 127.0.0.1\noptions attempts:2 timeout:3\n";
            v.push(entry("/etc/resolv.conf", Kind::File { data: conf.into() }));
        }
        v.push(entry("/etc/mtab", Kind::Symlink { target: "../proc/self/mounts".into() }));
    }
    if let Some(r) = &plan.oci.rootfs {
        // OCI: the bundle's root. Writable while the view is built on it (mountpoints may be
        // made there); pid 1 makes it read-only afterwards when the config says so.
        let source = through_root_links(&r.path, "root.path")?;
        let kind = open_bind(&source, Rights::RWXC, "root.path".into(), false)?;
        v.push(Entry { dest: "/".into(), kind, inside_bind: false });
        // brig's /dev, never the image's.
        v.push(entry("/dev", Kind::Tmpfs { size: DEV_SIZE, exec: false, shared: false }));
    }
    for d in DEVICES {
        let rw = Rights { read: true, write: true, exec: false, create: false };
        let origin = "minimal /dev".to_string();
        v.push(entry(d, open_bind(Path::new(d), rw, origin, true)?));
    }
    for (host, dest) in &plan.oci.devices {
        let rw = Rights { read: true, write: true, exec: false, create: false };
        v.push(Entry {
            dest: dest.clone(),
            kind: open_bind(host, rw, "linux.devices".into(), true)?,
            inside_bind: false,
        });
    }
    for (link, target) in DEV_LINKS {
        v.push(entry(link, Kind::Symlink { target: target.into() }));
    }
    let under_proc = |paths: &[PathBuf]| -> Vec<PathBuf> {
        paths.iter().filter_map(|p| p.strip_prefix("/proc").ok().map(Path::to_path_buf)).collect()
    };
    let masked = under_proc(&plan.oci.masked_paths);
    let readonly = under_proc(&plan.oci.readonly_paths);
    let sysctl = plan
        .oci
        .sysctl
        .iter()
        .map(|(k, v)| (Path::new("sys").join(k.replace('.', "/")), v.clone()))
        .collect();
    v.push(entry("/proc", Kind::Proc { masked, readonly, sysctl }));
    v.push(entry("/dev/pts", Kind::Devpts));
    for m in &plan.oci.mounts {
        match m.fs {
            OciFs::Sysfs => v.push(Entry {
                dest: m.dest.clone(),
                kind: Kind::Sysfs { made: None },
                inside_bind: false,
            }),
            OciFs::Mqueue => v.push(Entry {
                dest: m.dest.clone(),
                kind: Kind::Mqueue { made: None },
                inside_bind: false,
            }),
            OciFs::View => {}
        }
    }
    if plan.oci.rootfs.is_none() {
        v.push(entry(
            "/tmp",
            Kind::Tmpfs { size: plan.limits.tmp_size, exec: false, shared: true },
        ));
    }
    // The user's own entries replace a default one at the same place (`--rw /tmp`).
    for t in &plan.tmpfs {
        v.retain(|e| e.dest != *t);
        let exec = plan.tmpfs_exec.contains(t);
        let kind = Kind::Tmpfs { size: plan.limits.tmp_size, exec, shared: true };
        v.push(Entry { dest: t.clone(), kind, inside_bind: false });
    }
    for g in &plan.grants {
        // Only root's symlinks (/bin -> usr/bin, /var/run -> /run) are followed; any other is
        // refused, so a link planted by an earlier prison cannot redirect this grant.
        let source = through_root_links(&g.source, &g.origin)?;
        let kind = open_bind(&source, g.rights, g.origin.clone(), false)?;
        // A destination that was not given is the path the grant really names, which the plan
        // could not check against brig's own mount points.
        let dest = if g.dest == g.source { source } else { g.dest.clone() };
        if dest != g.dest {
            brig_policy::paths::mount_point(&dest).map_err(|p| JailError::ResolvedDest {
                origin: g.origin.clone(),
                path: dest.clone(),
                problem: p.message,
            })?;
        }
        v.retain(|e| e.dest != dest);
        v.push(Entry { dest, kind, inside_bind: false });
    }
    let v = order(v)?;
    Ok(in_config_order(v, &plan.oci.mounts))
}

/// OCI: the view in the config's mount order (runtimetest checks mountinfo against it), parents
/// still before their children. Each entry ranks as its deepest config mount at or above it
/// (entries under none come last), and never before an entry above it; the sort is stable, so
/// entries of one rank keep their path order.
fn in_config_order(v: Vec<Entry>, mounts: &[brig_policy::OciMount]) -> Vec<Entry> {
    if mounts.is_empty() {
        return v;
    }
    let own = |d: &Path| -> usize {
        if d == Path::new("/") {
            return 0;
        }
        mounts
            .iter()
            .enumerate()
            .filter(|(_, m)| d.starts_with(&m.dest) && m.dest != Path::new("/"))
            .max_by_key(|(_, m)| m.dest.components().count())
            .map_or(mounts.len() + 1, |(i, _)| i + 1)
    };
    let mut ranked: Vec<(usize, Entry)> = Vec::with_capacity(v.len());
    for e in v {
        let above = ranked
            .iter()
            .filter(|(_, a)| e.dest != a.dest && e.dest.starts_with(&a.dest))
            .map(|(r, _)| *r)
            .max()
            .unwrap_or(0);
        ranked.push((own(&e.dest).max(above), e));
    }
    ranked.sort_by_key(|(r, _)| *r);
    ranked.into_iter().map(|(_, e)| e).collect()
}

/// OCI, on the runner's side: the mountpoints the view needs directly on the bundle's root,
/// made now with the runner's ids, as runc makes them. pid 1, as the prison's uid, may not write
/// the image: a rootful engine's overlay root belongs to root and cannot be id-mapped. Each is
/// made one component at a time beneath the root, never through a symlink (one in the image
/// is refused, not followed); what exists is left as it is.
pub fn make_root_mountpoints(view: &[Entry]) -> Result<(), JailError> {
    let Some(Entry { kind: Kind::Bind { fd: root, .. }, .. }) =
        view.first().filter(|e| e.dest == Path::new("/"))
    else {
        return Ok(());
    };
    let mount_dir = |e: &Entry| match &e.kind {
        Kind::Bind { ident, .. } => Some(ident.is_dir),
        Kind::Tmpfs { .. }
        | Kind::Proc { .. }
        | Kind::Devpts
        | Kind::Sysfs { .. }
        | Kind::Mqueue { .. } => Some(true),
        _ => None,
    };
    let mounts: Vec<&Path> =
        view.iter().filter(|e| mount_dir(e) == Some(true)).map(|e| e.dest.as_path()).collect();
    for e in view.iter().skip(1) {
        let Some(dir) = mount_dir(e) else { continue };
        let above = mounts
            .iter()
            .filter(|m| **m != e.dest && e.dest.starts_with(m))
            .max_by_key(|m| m.components().count());
        if above != Some(&Path::new("/")) {
            continue;
        }
        let made =
            crate::inside::mountpoint(root.as_fd(), e.rel(), dir, true, &mut Default::default());
        made.map(drop).map_err(|source| {
            let link = match source.raw_os_error() == Some(libc::ELOOP) {
                true => " (a symlink in the image: brig never follows one to a mountpoint)",
                false => "",
            };
            let what = format!("{}: {source}{link}", e.dest.display());
            JailError::Setup {
                step: "mountpoint on the bundle's root",
                source: std::io::Error::new(source.kind(), what),
            }
        })?;
    }
    Ok(())
}

fn entry(dest: &str, kind: Kind) -> Entry {
    Entry { dest: PathBuf::from(dest), kind, inside_bind: false }
}

/// A system path: recreated as a symlink if it is one on the host, bound if it exists, skipped
/// if this distribution does not have it.
/// Largest `/etc` file copied rather than bound (the biggest here, ld.so.cache, is 34 KiB).
const ETC_COPY_MAX: u64 = 256 << 10;

/// One entry of the system view, skipped if the host lacks it: a symlink made again with the
/// same target; with `copy`, a small regular file copied (from an fd opened now, which followed
/// no symlink; a copy costs a few syscalls where a mount costs tens); else a bind with `rights`.
fn system_entry(v: &mut Vec<Entry>, p: &Path, rights: Rights, copy: bool) -> Result<(), JailError> {
    let err = |source| JailError::SystemPath { path: p.into(), source };
    let kind = match std::fs::symlink_metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(err(source)),
        Ok(m) if m.file_type().is_symlink() => {
            Kind::Symlink { target: std::fs::read_link(p).map_err(err)? }
        }
        // Only a world-readable file: the runner may be root, and a copy keeps no mode.
        Ok(m)
            if copy
                && m.file_type().is_file()
                && m.len() <= ETC_COPY_MAX
                && m.mode() & 0o004 != 0 =>
        {
            let flags = libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK;
            Kind::Copy { fd: open_host(p, flags, 0, "system view")?, len: m.len() }
        }
        Ok(_) => open_bind(p, rights, "system view".into(), false)?,
    };
    v.push(Entry { dest: p.into(), kind, inside_bind: false });
    Ok(())
}

/// A host path walked through the symlinks root owns: its real path, the directory that holds
/// its last name (an `O_PATH` fd; nothing on the way is a symlink) and that name (empty for
/// `/`). The last name need not exist.
#[derive(Debug)]
pub struct Walked {
    pub real: PathBuf,
    pub dir: OwnedFd,
    pub name: std::ffi::OsString,
}

/// Why [`walk_root_links`] stopped.
#[derive(Debug)]
pub enum WalkError {
    /// `at` is a symlink owned by `uid`, not root; the path really leads to `real`.
    Foreign { at: PathBuf, uid: u32, real: PathBuf },
    /// More than 40 links, or `at` is not a directory where one is needed, or could not be read.
    Io { at: PathBuf, source: std::io::Error },
}

/// Walks `path` (absolute) one name at a time from `/`, each opened from its parent's fd without
/// following anything (`O_PATH | O_NOFOLLOW`, `RESOLVE_NO_SYMLINKS`). A symlink owned by root (the
/// system's own links: no prison can make one, since a prison never runs as host root) is
/// followed by reading that very link (`readlinkat` on its fd: no swap between check and read);
/// any other is refused, naming where it leads. Shared by the grants, the capabilities and the
/// `--report` file.
pub fn walk_root_links(path: &Path) -> Result<Walked, WalkError> {
    use std::os::unix::fs::MetadataExt;
    fn io(at: &Path) -> impl FnOnce(std::io::Error) -> WalkError + '_ {
        move |source| WalkError::Io { at: at.to_path_buf(), source }
    }
    let o_path = libc::O_PATH | libc::O_NOFOLLOW;
    let how = resolve::NO_SYMLINKS | resolve::NO_MAGICLINKS | resolve::BENEATH;
    let root = Path::new("/");
    let mut rest = names(path);
    // The directories walked so far, for `..`: they hold no symlink, so the lexical parent is
    // the real one.
    let mut dirs: Vec<(OwnedFd, PathBuf)> =
        vec![(fs::openat2(None, root, o_path, 0, 0).map_err(io(root))?, root.into())];
    let mut links = 0;
    while let Some(name) = rest.pop() {
        if name == ".." {
            if dirs.len() > 1 {
                dirs.pop();
            }
            continue;
        }
        let Some((dir, real)) = dirs.last() else { break };
        let here: PathBuf = real.join(&name);
        let fd = match fs::openat2(Some(dir.as_fd()), Path::new(&name), o_path, 0, how) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && rest.is_empty() => None,
            Err(e) => return Err(io(&here)(e)),
            Ok(fd) => Some(std::fs::File::from(fd)),
        };
        let meta = fd.as_ref().map(|f| f.metadata().map_err(io(&here))).transpose()?;
        if let (Some(f), Some(m)) = (&fd, &meta) {
            if m.file_type().is_symlink() {
                links += 1;
                if m.uid() != 0 {
                    let mut real = std::fs::canonicalize(&here).unwrap_or_default();
                    real.extend(rest.iter().rev());
                    return Err(WalkError::Foreign { at: here, uid: m.uid(), real });
                }
                if links > 40 {
                    return Err(io(&here)(std::io::Error::from_raw_os_error(libc::ELOOP)));
                }
                let target = fs::readlink_fd(f.as_fd()).map_err(io(&here))?;
                if target.is_absolute() {
                    dirs.truncate(1);
                }
                rest.extend(names(&target));
                continue;
            }
        }
        if rest.is_empty() {
            let (dir, _) = dirs.pop().unwrap_or_else(|| unreachable!("dirs is never empty here"));
            return Ok(Walked { real: here, dir, name });
        }
        match (fd, meta) {
            (Some(f), Some(m)) if m.is_dir() => dirs.push((f.into(), here)),
            _ => return Err(io(&here)(std::io::Error::from_raw_os_error(libc::ENOTDIR))),
        }
    }
    // The path names `/` itself (or climbs above it).
    let (dir, _) = dirs.swap_remove(0);
    Ok(Walked { real: root.into(), dir, name: std::ffi::OsString::new() })
}

/// A path's names, last first (to pop), `..` kept.
fn names(p: &Path) -> Vec<std::ffi::OsString> {
    use std::path::Component;
    let names = p.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some("..".into()),
        _ => None,
    });
    names.rev().collect()
}

/// The real path of a grant's or capability's `path`, through root's symlinks only. The result
/// is opened with RESOLVE_NO_SYMLINKS, so a link swapped in after the walk makes the open fail.
pub(crate) fn through_root_links(path: &Path, origin: &str) -> Result<PathBuf, JailError> {
    match walk_root_links(path) {
        Ok(w) => Ok(w.real),
        Err(WalkError::Foreign { real, .. }) => Err(JailError::GrantIsSymlink {
            origin: origin.into(),
            path: path.into(),
            target: real,
        }),
        Err(WalkError::Io { at, source }) => {
            Err(JailError::OpenGrant { origin: origin.into(), path: at, source })
        }
    }
}

/// Opens a host path as an `O_PATH` capability, refusing any symlink on the way.
fn open_bind(
    source: &Path,
    rights: Rights,
    origin: String,
    device: bool,
) -> Result<Kind, JailError> {
    let fd = open_host(source, libc::O_PATH, 0, &origin)?;
    let ident = fs::ident(std::os::fd::AsFd::as_fd(&fd)).map_err(|e| JailError::OpenGrant {
        origin: origin.clone(),
        path: source.into(),
        source: e,
    })?;
    Ok(Kind::Bind { source: source.into(), fd, ident, rights, origin, device, mapped: None })
}

/// Opens `path` (already through root's links) with `flags`, refusing any symlink on the way.
pub(crate) fn open_host(
    path: &Path,
    flags: i32,
    mode: u32,
    origin: &str,
) -> Result<OwnedFd, JailError> {
    let how = resolve::NO_SYMLINKS | resolve::NO_MAGICLINKS;
    fs::openat2(None, path, flags, mode, how).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            let target = std::fs::canonicalize(path).unwrap_or_default();
            JailError::GrantIsSymlink { origin: origin.into(), path: path.into(), target }
        } else {
            JailError::OpenGrant { origin: origin.into(), path: path.into(), source: e }
        }
    })
}

/// Sorts parents before children, rejects duplicate destinations, marks entries inside binds,
/// and drops generated files or links that a user grant shadows.
fn order(mut v: Vec<Entry>) -> Result<Vec<Entry>, JailError> {
    v.sort_by(|a, b| a.dest.cmp(&b.dest));
    for w in v.windows(2) {
        if w[0].dest == w[1].dest {
            return Err(JailError::DuplicateDest { path: w[0].dest.clone() });
        }
    }
    // Every mount of the view, and whether it is a host directory's (never written to) or
    // brig's own (a tmpfs, procfs, devpts, or an OCI root), where mountpoints may be made.
    let mounts: Vec<(PathBuf, bool)> = v
        .iter()
        .filter_map(|e| match &e.kind {
            Kind::Bind { ident, .. } if ident.is_dir => {
                Some((e.dest.clone(), e.dest != Path::new("/")))
            }
            Kind::Tmpfs { .. }
            | Kind::Proc { .. }
            | Kind::Devpts
            | Kind::Sysfs { .. }
            | Kind::Mqueue { .. } => Some((e.dest.clone(), false)),
            _ => None,
        })
        .collect();
    for e in &mut v {
        // The nearest mount above an entry decides.
        e.inside_bind = mounts
            .iter()
            .filter(|(m, _)| e.dest != *m && e.dest.starts_with(m))
            .max_by_key(|(m, _)| m.components().count())
            .is_some_and(|(_, host)| *host);
    }
    v.retain(|e| {
        let made = matches!(e.kind, Kind::File { .. } | Kind::Copy { .. } | Kind::Symlink { .. });
        !(e.inside_bind && made)
    });
    Ok(v)
}

/// Minimal `/etc` files a dynamic program expects: its own user and group, files-only NSS, and
/// `localhost`.
fn etc_stubs(uid: u32, gid: u32) -> Vec<(&'static str, String)> {
    vec![
        ("/etc/passwd", format!("brig:x:{uid}:{gid}:brig prisoner:/tmp:/bin/sh\n")),
        ("/etc/group", format!("brig:x:{gid}:\n")),
        ("/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n".into()),
        ("/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n".into()),
        ("/etc/hostname", "brig\n".into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_follows_only_roots_links() {
        let d = std::env::temp_dir().join(format!("brig-walk-{}", std::process::id()));
        std::fs::create_dir_all(d.join("real/sub")).expect("mkdir");
        std::os::unix::fs::symlink("real", d.join("link")).expect("symlink");
        let root = brig_sys::process::ids().0 == 0;
        match walk_root_links(&d.join("link/sub/../sub/new")) {
            // As root the link is root's: followed, `..` taken on the real path.
            Ok(w) if root => {
                assert_eq!(w.real, d.join("real/sub/new"));
                assert_eq!(w.name, "new");
            }
            Err(WalkError::Foreign { at, real, .. }) if !root => {
                assert_eq!(at, d.join("link"));
                assert_eq!(real, d.join("real/sub/../sub/new"));
            }
            other => panic!("{other:?}"),
        }
        if root {
            std::os::unix::fs::lchown(d.join("link"), Some(1000), None).expect("lchown");
            match walk_root_links(&d.join("link/sub")) {
                Err(WalkError::Foreign { at, uid, real }) => {
                    assert_eq!((at, uid, real), (d.join("link"), 1000, d.join("real/sub")));
                }
                other => panic!("{other:?}"),
            }
        }
        // A file where a directory is needed; a missing name in the middle.
        std::fs::write(d.join("f"), "").expect("write");
        assert!(matches!(walk_root_links(&d.join("f/x")), Err(WalkError::Io { .. })));
        assert!(matches!(walk_root_links(&d.join("no/x")), Err(WalkError::Io { .. })));
        let _ = std::fs::remove_dir_all(&d);
    }

    fn plan() -> Plan {
        Plan {
            command: vec!["/bin/true".into()],
            grants: vec![],
            system: true,
            tmpfs: vec![],
            chdir: None,
            env: vec![],
            limits: Default::default(),
            syscalls: Default::default(),
            best_effort: false,
            caps: vec![],
            description_fd: None,
            app: None,
            capability_mode: false,
            pty: Default::default(),
            explain: false,
            learn: false,
            ready_fd: None,
            egress: vec![],
            ask: None,
            start_dir: None,
            tmpfs_exec: vec![],
            oci: Default::default(),
            no_new_privs: true,
        }
    }

    #[test]
    fn default_view_is_sorted_and_has_no_home() {
        let v = open_view(&plan(), 1000, 1000).expect("view");
        assert!(v.windows(2).all(|w| w[0].dest < w[1].dest));
        for forbidden in ["/home", "/root", "/run", "/var", "/sys", "/etc/shadow"] {
            assert!(v.iter().all(|e| e.dest != Path::new(forbidden)), "{forbidden} in view");
        }
        assert!(v.iter().any(|e| e.dest == Path::new("/proc")));
        // brig's own /etc files are the ones brig-policy lists (and `brig check` shows).
        let mut own: Vec<&str> = etc_stubs(0, 0).iter().map(|(n, _)| *n).collect();
        own.push("/etc/mtab");
        assert_eq!(own, system::ETC_OWN);
    }

    #[test]
    fn grant_shadows_generated_files() {
        let mut p = plan();
        p.grants.push(brig_policy::Grant {
            source: "/etc".into(),
            dest: "/etc".into(),
            rights: Rights::R,
            origin: "--ro /etc".into(),
        });
        let v = open_view(&p, 1000, 1000).expect("view");
        // Files brig writes or copies give way to the grant's own; a directory bound inside it
        // stays (as a mount that must exist there).
        assert!(v.iter().all(|e| e.dest != Path::new("/etc/passwd")));
        assert!(v.iter().all(|e| e.dest != Path::new("/etc/ld.so.cache")));
        let alt = v.iter().find(|e| e.dest == Path::new("/etc/alternatives")).expect("alt");
        assert!(alt.inside_bind);
    }
}
