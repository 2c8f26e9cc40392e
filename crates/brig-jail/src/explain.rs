//! Explaining refusals: which layer refused what the program asked, and the flag that would
//! grant it. Supervisor side, trusted; what it reads from the program (paths, addresses) only
//! chooses the words of a message, never an answer to a syscall.
//!
//! The judgement is the plan's, replayed: the view brig built (each mount with its rights and
//! the flag that made it) decides which layer refuses a path, as Landlock and the mount flags
//! do in the kernel. A path outside the view is a refusal only if the host has it: one that
//! exists nowhere fails with ENOENT either way. Symlinks the view made (`/bin -> usr/bin`) are
//! followed; symlinks inside a grant are not, so an access through one is judged at the link.

use std::path::{Component, Path, PathBuf};

use brig_policy::Rights;
use serde::Serialize;

use crate::degrade;
use crate::grants::{Entry, Kind};
use crate::seccomp::{self, Policy};

/// What the program asked to do to a path or an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Look it up (stat, access, readlink, chdir, connect to a unix socket): needs only the view.
    Lookup,
    Read,
    Write,
    Exec,
    /// Make an entry (O_CREAT of a new file, mkdir, mknod, symlink, link, rename's target).
    Create,
    /// Remove an entry (unlink, rmdir, rename's source).
    Remove,
    Connect,
    Bind,
    /// A syscall refused by seccomp.
    Call,
}

impl Access {
    pub fn word(self) -> &'static str {
        match self {
            Access::Lookup => "lookup",
            Access::Read => "read",
            Access::Write => "write",
            Access::Exec => "exec",
            Access::Create => "create",
            Access::Remove => "remove",
            Access::Connect => "connect",
            Access::Bind => "bind",
            Access::Call => "syscall",
        }
    }

    /// The right a grant needs for it (none for a lookup).
    fn right(self, r: Rights) -> bool {
        match self {
            Access::Read => r.read,
            Access::Write => r.write,
            Access::Exec => r.exec,
            Access::Create | Access::Remove => r.create,
            _ => true,
        }
    }

    fn letter(self) -> &'static str {
        match self {
            Access::Read => "r",
            Access::Write => "w",
            Access::Exec => "x",
            _ => "c",
        }
    }
}

/// What a run asked of one path (`brig learn` drafts its grants from these).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Touched {
    pub lookup: bool,
    pub read: bool,
    pub write: bool,
    pub exec: bool,
    pub create: bool,
    pub remove: bool,
}

impl Touched {
    pub fn add(&mut self, a: Access) {
        match a {
            Access::Lookup => self.lookup = true,
            Access::Read => self.read = true,
            Access::Write => self.write = true,
            Access::Exec => self.exec = true,
            Access::Create => self.create = true,
            Access::Remove => self.remove = true,
            Access::Connect | Access::Bind | Access::Call => {}
        }
    }
}

/// One refusal, as brig says it and as `--report` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The syscall that asked.
    pub syscall: &'static str,
    pub access: Access,
    /// A path inside the prison, an address, or a syscall name.
    pub target: String,
    /// "view", "landlock", "noexec", "seccomp", "network", "limit".
    pub layer: &'static str,
    /// Why, in words.
    pub reason: String,
    /// The flag or manifest change that grants it; empty when nothing may.
    pub fix: String,
    /// How often it happened (said once, counted each time).
    pub count: u32,
}

impl Refusal {
    /// The line on brig's stderr: `brig: refused exec of /w/app: the grant --rw /w has no x;
    /// grant it with --rwx /w`.
    pub fn line(&self) -> String {
        let what = self.what();
        match self.fix.is_empty() {
            true => format!("brig: refused {what}: {}", self.reason),
            false => format!("brig: refused {what}: {}; {}", self.reason, self.fix),
        }
    }

    /// What was asked, in words: `exec of /w/app`, `connect to host:443`, `syscall ptrace`.
    pub fn what(&self) -> String {
        match self.access {
            Access::Call => format!("syscall {}", self.target),
            Access::Connect => format!("connect to {}", self.target),
            Access::Bind => format!("bind of {}", self.target),
            a => format!("{} of {}", a.word(), self.target),
        }
    }

    /// Whether `other` is the same refusal (said once).
    pub fn same(&self, other: &Refusal) -> bool {
        self.access == other.access && self.target == other.target && self.layer == other.layer
    }
}

/// One place of the view, as the explanation needs it.
#[derive(Debug, Clone)]
enum Place {
    /// A host path bound here: its source, rights, and the flag or manifest line that made it.
    Grant {
        source: PathBuf,
        rights: Rights,
        origin: String,
        dir: bool,
    },
    /// A symlink brig made (`/bin -> usr/bin`).
    Link(PathBuf),
    Tmpfs {
        exec: bool,
    },
    /// Made by brig, read-only, no flag changes it: /proc, /dev/pts, the /etc stubs.
    Fixed,
}

/// The view brig built, for judging paths.
#[derive(Debug, Clone, Default)]
pub struct View {
    places: Vec<(PathBuf, Place)>,
    /// The prison has brig's resolver (`--egress`, `--ask`).
    pub resolver: bool,
}

impl View {
    /// The view of `entries`; `resolver`: the prison has brig's name server.
    pub fn of(entries: &[Entry], resolver: bool) -> View {
        let places = entries
            .iter()
            .map(|e| {
                let place = match &e.kind {
                    Kind::Bind { source, rights, origin, ident, .. } => Place::Grant {
                        source: source.clone(),
                        rights: *rights,
                        origin: origin.clone(),
                        dir: ident.is_dir,
                    },
                    Kind::Symlink { target } => Place::Link(target.clone()),
                    Kind::Tmpfs { exec, .. } => Place::Tmpfs { exec: *exec },
                    Kind::File { .. }
                    | Kind::Copy { .. }
                    | Kind::Proc { .. }
                    | Kind::Devpts
                    | Kind::Sysfs { .. }
                    | Kind::Mqueue { .. } => Place::Fixed,
                };
                (e.dest.clone(), place)
            })
            .collect();
        View { places, resolver }
    }

    /// The place holding `path` (absolute, inside), after following the links brig made:
    /// the path as followed, and the place's mount point and kind (`None`: outside the view).
    fn locate(&self, path: &Path) -> (PathBuf, Option<(&Path, &Place)>) {
        let mut path = normal(path);
        for _ in 0..16 {
            let found = self
                .places
                .iter()
                .filter(|(d, _)| path.starts_with(d))
                .max_by_key(|(d, _)| d.as_os_str().len());
            match found {
                Some((dest, Place::Link(target))) => {
                    let rest = path.strip_prefix(dest).unwrap_or(Path::new(""));
                    let base = dest.parent().unwrap_or(Path::new("/"));
                    path = normal(&base.join(target).join(rest));
                }
                Some((dest, place)) => return (path, Some((dest, place))),
                None => return (path, None),
            }
        }
        (path, Some((Path::new("/"), &Place::Fixed)))
    }

    /// The host file behind `path` inside: the grant's source beneath it, or the host's own
    /// path outside the view (or hidden by the prison's own tmpfs); `None` for what brig made.
    pub fn host_of(&self, path: &Path) -> Option<PathBuf> {
        match self.locate(path) {
            (p, None) | (p, Some((_, Place::Tmpfs { .. }))) => Some(p),
            (p, Some((dest, Place::Grant { source, .. }))) => {
                Some(under(source, p.strip_prefix(dest).unwrap_or(Path::new(""))))
            }
            _ => None,
        }
    }

    /// Whether `path` exists where the view takes it from (the host's file behind a grant, or
    /// the host's own path outside the view); true for what brig made.
    pub fn exists(&self, path: &Path) -> bool {
        match self.locate(path) {
            (p, None) => std::fs::symlink_metadata(p).is_ok(),
            (p, Some((dest, Place::Grant { source, .. }))) => {
                let rest = p.strip_prefix(dest).unwrap_or(Path::new(""));
                std::fs::symlink_metadata(under(source, rest)).is_ok()
            }
            _ => true,
        }
    }

    /// The refusal, if the view refuses `access` to `path` (absolute, inside the prison).
    /// `pid`: the asker, whose own private tmpfs holds what it made there.
    pub fn judge(
        &self,
        syscall: &'static str,
        path: &Path,
        access: Access,
        pid: u32,
    ) -> Option<Refusal> {
        let (path, found) = self.locate(path);
        // Looking for a name server outside the view: the way out is --egress, not the host's
        // resolver file.
        if path == Path::new("/etc/resolv.conf") && !self.resolver && found.is_none() {
            return Some(Refusal {
                syscall,
                access,
                target: path.display().to_string(),
                layer: "network",
                reason: "the prison has no name server: no name resolves without --egress".into(),
                fix: "let it reach a host by name with --egress HOST:PORT".into(),
                count: 1,
            });
        }
        let Some((dest, place)) = found else {
            // The root brig made, and the directories it made to hold mount points (`/etc`
            // for its files): read-only, listed, nothing to grant.
            if self.places.iter().any(|(d, _)| d.starts_with(&path)) {
                return match access {
                    // Creating what exists fails with EEXIST, not a refusal.
                    Access::Lookup | Access::Read | Access::Exec | Access::Create => None,
                    _ => Some(Refusal {
                        syscall,
                        access,
                        target: path.display().to_string(),
                        layer: "view",
                        reason: "brig made this directory to hold the view, read-only".into(),
                        fix: "grant a directory beneath it instead".into(),
                        count: 1,
                    }),
                };
            }
            return outside(syscall, &path, access);
        };
        let rest = path.strip_prefix(dest).unwrap_or(Path::new(""));
        let refusal = |layer, reason: String, fix: String| {
            let target = path.display().to_string();
            Some(Refusal { syscall, access, target, layer, reason, fix, count: 1 })
        };
        match place {
            Place::Link(_) => None,
            Place::Fixed if matches!(access, Access::Lookup | Access::Read) => None,
            Place::Fixed => {
                let reason = format!("{} is made by brig and read-only", dest.display());
                refusal("landlock", reason, "no flag grants it".into())
            }
            Place::Tmpfs { exec } if access == Access::Exec && !exec => {
                let reason = format!("the private tmpfs {} is mounted noexec", dest.display());
                refusal("noexec", reason, format!("grant exec with --tmpfs {}:x", dest.display()))
            }
            // The host's file of the same name is not in the prison's own tmpfs.
            Place::Tmpfs { .. } if access != Access::Create && !inside(pid, &path) => {
                let mut r = outside(syscall, &path, access)?;
                r.reason =
                    format!("not in the prison's view ({} is its own tmpfs)", dest.display());
                Some(r)
            }
            Place::Tmpfs { .. } => None,
            Place::Grant { source, rights, origin, dir } => {
                if access.right(*rights) {
                    return None;
                }
                let exists = std::fs::symlink_metadata(under(source, rest)).is_ok();
                if !exists && access != Access::Create {
                    return None; // ENOENT, not a refusal
                }
                let letter = access.letter();
                let layer = if access == Access::Exec { "noexec" } else { "landlock" };
                let (reason, fix) = if origin == "system view" {
                    let r = format!("the system view {} has no {letter}", dest.display());
                    (r, "brig does not let a prison change the host's system files".into())
                } else if origin == "minimal /dev" {
                    (format!("{} has no {letter}", dest.display()), String::new())
                } else if !dir && matches!(access, Access::Create | Access::Remove) {
                    let r = format!("the grant {origin} is a single file");
                    let parent = source.parent().unwrap_or(Path::new("/"));
                    (r, format!("grant its directory with --rw {}", parent.display()))
                } else {
                    let mut more = *rights;
                    match access {
                        Access::Read => more.read = true,
                        Access::Write => more.write = true,
                        Access::Exec => more.exec = true,
                        _ => more.create = true,
                    }
                    let spec = match source == dest {
                        true => source.display().to_string(),
                        false => format!("{}:{}", source.display(), dest.display()),
                    };
                    let r = format!("the grant {origin} has no {letter}");
                    (r, grant_fix(origin, more, &spec))
                };
                refusal(layer, reason, fix)
            }
        }
    }
}

/// What brig says at exit about the refusals it saw: with `--explain`, a count by layer;
/// without, when the program failed after some, a hint to rerun with `--explain`.
pub fn summary(refusals: &[Refusal], explain: bool, failed: bool) -> Option<String> {
    let total: u32 = refusals.iter().map(|r| r.count).sum();
    if total == 0 || !(explain || failed) {
        return None;
    }
    let mut layers: Vec<(&str, u32)> = Vec::new();
    for r in refusals {
        match layers.iter_mut().find(|(l, _)| *l == r.layer) {
            Some((_, n)) => *n += r.count,
            None => layers.push((r.layer, r.count)),
        }
    }
    let by: Vec<String> = layers.iter().map(|(l, n)| format!("{n} {l}")).collect();
    let by = by.join(", ");
    Some(match explain {
        true => format!("brig: {total} refusals ({by}); each is listed above and in --report"),
        false => format!(
            "brig: the program failed after {total} refusals brig saw ({by}), the first: {}; \
             rerun with --explain to see each with the flag that grants it",
            refusals[0].line().trim_start_matches("brig: refused ")
        ),
    })
}

/// A syscall the seccomp policy refused (`nr` with `args`), with the group to allow.
pub fn seccomp(policy: &Policy, nr: u32, args: [u64; 6], id_mapped: bool) -> Refusal {
    let name = seccomp::name(nr).unwrap_or("unknown");
    let target = match nr as i64 {
        libc::SYS_socket | libc::SYS_socketpair => format!("{name} (family {})", args[0] as u32),
        libc::SYS_ioctl => format!("{name} (request {:#x})", args[1] as u32),
        libc::SYS_clone => format!("{name} (flags {:#x})", args[0] as u32),
        _ => name.to_string(),
    };
    let (reason, fix) = match policy.rule(nr) {
        Some((rule, Some(group))) => {
            let reason = format!("seccomp group {}: {}", group.name, rule.why);
            let fix = match id_mapped && degrade::KEPT_WHEN_ID_MAPPED.contains(&group.name) {
                true => "no flag allows it in a root run with writable grants".to_string(),
                false => format!("allow it with --allow-syscalls {}", group.name),
            };
            (reason, fix)
        }
        Some((rule, None)) if seccomp::brokered().contains(rule) => {
            (rule.why.to_string(), "no flag allows it".to_string())
        }
        _ => (
            "denied by the manifest or --deny-syscalls".to_string(),
            format!("remove {name} from the deny list"),
        ),
    };
    Refusal { syscall: name, access: Access::Call, target, layer: "seccomp", reason, fix, count: 1 }
}

/// `source/rest`, without the trailing slash `join("")` would add (which makes a file's lookup
/// fail with ENOTDIR).
fn under(source: &Path, rest: &Path) -> PathBuf {
    match rest.as_os_str().is_empty() {
        true => source.to_path_buf(),
        false => source.join(rest),
    }
}

/// Whether `path` exists in the prison of process `pid`, resolved in its root (symlinks the
/// program made cannot lead the supervisor's lookup out of it).
fn inside(pid: u32, path: &Path) -> bool {
    use brig_sys::fs::{openat2, resolve};
    let Ok(root) = openat2(None, &PathBuf::from(format!("/proc/{pid}/root")), libc::O_PATH, 0, 0)
    else {
        return false;
    };
    let rel = path.strip_prefix("/").unwrap_or(path);
    let how = resolve::IN_ROOT | resolve::NO_MAGICLINKS;
    openat2(Some(std::os::fd::AsFd::as_fd(&root)), rel, libc::O_PATH | libc::O_NOFOLLOW, 0, how)
        .is_ok()
}

/// A path the view does not hold: refused if the host has it (or, to create it, its
/// directory), with the grant that would show it.
fn outside(syscall: &'static str, path: &Path, access: Access) -> Option<Refusal> {
    let exists = |p: &Path| std::fs::symlink_metadata(p).ok();
    let (grant, rights) = match (access, exists(path)) {
        (Access::Create | Access::Remove, _) => {
            let parent = path.parent()?;
            exists(parent).filter(|m| m.is_dir())?;
            (parent.to_path_buf(), Rights::RWC)
        }
        (_, None) => return None,
        (Access::Exec, _) => (path.to_path_buf(), Rights::RX),
        (Access::Write, _) => (path.to_path_buf(), Rights::RWC),
        (_, Some(_)) => (path.to_path_buf(), Rights::R),
    };
    let fix = grant_fix("", rights, &grant.display().to_string());
    Some(Refusal {
        syscall,
        access,
        target: path.display().to_string(),
        layer: "view",
        reason: "not in the prison's view (the host has it)".into(),
        fix,
        count: 1,
    })
}

/// "grant it with --rwx /w", or the manifest line to change.
fn grant_fix(origin: &str, rights: Rights, spec: &str) -> String {
    let flag = match (rights.exec, rights.write || rights.create) {
        (true, true) => "--rwx",
        (true, false) => "--rx",
        (false, true) => "--rw",
        (false, false) => "--ro",
    };
    let manifest = origin.rsplit_once(':').is_some_and(|(f, l)| {
        !f.starts_with('-') && !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit())
    });
    match manifest {
        true => format!("give it rights = \"{rights}\" at {origin}"),
        false => format!("grant it with {flag} {spec}"),
    }
}

/// `path` without `.`, `..` (lexically) or repeated slashes.
fn normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> View {
        let grant = |src: &str, rights, origin: &str, dir| Place::Grant {
            source: src.into(),
            rights,
            origin: origin.into(),
            dir,
        };
        let tmp = std::env::temp_dir();
        let w = tmp.to_str().expect("utf-8");
        View {
            places: vec![
                ("/usr".into(), grant("/usr", Rights::RX, "system view", true)),
                ("/bin".into(), Place::Link("usr/bin".into())),
                ("/proc".into(), Place::Fixed),
                ("/tmp".into(), Place::Tmpfs { exec: false }),
                ("/w".into(), grant(w, Rights::RWC, &format!("--rw {w}:/w"), true)),
                ("/m".into(), grant(w, Rights::R, "brig.toml:7", true)),
            ],
            resolver: false,
        }
    }

    #[test]
    fn each_layer_names_its_fix() {
        let v = view();
        let w = std::env::temp_dir();
        let w = w.display();
        let exec = v.judge("execve", Path::new("/w/."), Access::Exec, 0).expect("refused");
        assert_eq!(exec.layer, "noexec");
        assert_eq!(exec.fix, format!("grant it with --rwx {w}:/w"));
        assert!(exec.line().starts_with("brig: refused exec of /w: the grant --rw"), "{exec:?}");
        let m = v.judge("openat", Path::new("/m/x/../"), Access::Write, 0).expect("refused");
        assert_eq!(m.fix, "give it rights = \"rw\" at brig.toml:7");
        let tmp = v.judge("execve", Path::new("/tmp/a.out"), Access::Exec, 0).expect("refused");
        assert_eq!(tmp.fix, "grant exec with --tmpfs /tmp:x");
        assert!(v.judge("execve", Path::new("/bin/sh"), Access::Exec, 0).is_none(), "via the link");
        let sys = v.judge("openat", Path::new("/bin/sh"), Access::Write, 0).expect("refused");
        assert_eq!(sys.target, "/usr/bin/sh");
        assert!(v.judge("openat", Path::new("/proc/self/status"), Access::Read, 0).is_none());
        assert!(v.judge("openat", Path::new("/w/none-such"), Access::Read, 0).is_none());
        assert!(v.judge("openat", Path::new("/m/none-such"), Access::Write, 0).is_none(), "ENOENT");
    }

    #[test]
    fn outside_the_view_only_what_the_host_has() {
        let v = view();
        let etc = v.judge("openat", Path::new("/etc/hostname"), Access::Read, 0).expect("refused");
        assert_eq!((etc.layer, etc.fix.as_str()), ("view", "grant it with --ro /etc/hostname"));
        assert!(v.judge("statx", Path::new("/no/such/path"), Access::Lookup, 0).is_none());
        let new =
            v.judge("openat", Path::new("/etc/brig-new"), Access::Create, 0).expect("refused");
        assert_eq!(new.fix, "grant it with --rw /etc");
    }
}
