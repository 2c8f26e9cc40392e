//! `brig learn`: runs a command with a read-only view of the host (its working directory a
//! throwaway copy, its home and /tmp private, no network), records every path it named, and
//! drafts a manifest for a person to review. Not a boundary: the learning run is an ordinary
//! prison, and the draft is text to read before use.
//!
//! The rule that turns paths into grants ([`draft`]; docs/learn.md says it in words):
//! 1. The OS runtime (`system = true`) covers /usr, /lib*, /bin, /sbin and the reviewed /etc
//!    files; nothing under them is listed. /proc, /dev and the private /tmp need nothing.
//! 2. Only what exists on the host is granted, and only what the run asked for: r for what it
//!    read, listed or looked up, x for what it executed, w for an existing file it wrote, and
//!    rwc for a directory in which it created, renamed or removed entries (the nearest one
//!    that exists on the host). Nothing else gets w or c.
//! 3. Reads in the working directory are one grant, the working directory. Elsewhere a file is
//!    granted alone, unless 3 or more entries of its directory were touched or the directory
//!    was listed: then the directory (applied upward, never to `/`, a top-level directory or a
//!    home directory itself).
//! 4. Every grant says why it is there (which files caused it) and is flagged when risky
//!    (home, keys, credentials, sockets, .git/hooks, shell start files).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use brig_jail::explain::{Refusal, Touched};
use brig_policy::{system, Rights};

/// Host top-level directories the learning run does not see (kernel interfaces, boot files,
/// mounts of removable media; /tmp is the prison's own).
const HIDDEN: &[&str] =
    &["proc", "sys", "dev", "run", "tmp", "boot", "lost+found", "mnt", "media", "var/run"];

/// How many touched entries of one directory make the directory the grant.
const GROUP_AT: usize = 3;

/// The read-only view of the host for the learning run: `(host path, inside path)` pairs, each
/// granted read and execute. Top-level symlinks (`/bin -> usr/bin`) are granted at their name.
pub fn host_view() -> std::io::Result<Vec<(PathBuf, PathBuf)>> {
    let root = brig_sys::process::ids().0 == 0;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/")? {
        let e = e?;
        let name = e.file_name();
        let Some(n) = name.to_str() else { continue };
        if HIDDEN.contains(&n) || (n == "root" && !root) {
            continue;
        }
        let path = Path::new("/").join(n);
        let ty = e.file_type()?;
        if ty.is_dir() {
            out.push((path.clone(), path));
        } else if ty.is_symlink() {
            if let Ok(real) = std::fs::canonicalize(&path) {
                if real.is_dir() && real != path {
                    out.push((real, path));
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Copies the tree at `src` to `dst` (which must not exist) without following any symlink:
/// files with their modes, directories, symlinks as links; other kinds are left out.
pub fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(src)?;
    let ty = meta.file_type();
    if ty.is_dir() {
        std::fs::create_dir(dst)?;
        for e in std::fs::read_dir(src)? {
            let e = e?;
            copy_tree(&e.path(), &dst.join(e.file_name()))?;
        }
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    } else if ty.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)?;
    } else if ty.is_file() {
        std::fs::copy(src, dst)?;
    }
    Ok(())
}

use std::os::unix::fs::MetadataExt;

/// What one grant of the draft holds and why.
#[derive(Debug, Default)]
struct Draft {
    rights: Rights,
    why: BTreeMap<&'static str, Vec<PathBuf>>,
}

impl Draft {
    fn add(&mut self, rights: Rights, why: &'static str, path: &Path) {
        self.rights = union(self.rights, rights);
        let v = self.why.entry(why).or_default();
        if !v.iter().any(|p| p == path) {
            v.push(path.to_path_buf());
        }
    }
}

fn union(a: Rights, b: Rights) -> Rights {
    Rights {
        read: a.read || b.read,
        write: a.write || b.write,
        exec: a.exec || b.exec,
        create: a.create || b.create,
    }
}

/// Whether the default view already holds `p` (the OS runtime, the /etc allow-list, brig's own
/// /etc files, /proc, /dev).
fn in_default_view(p: &Path) -> bool {
    let runtime = system::RUNTIME.iter().chain(system::ETC).map(|(d, _)| *d);
    runtime.chain(system::ETC_OWN.iter().copied()).any(|d| p.starts_with(d))
        || p.starts_with("/proc")
        || p.starts_with("/dev")
}

/// The draft manifest for what a run of `command` in `cwd` touched.
pub fn draft(
    command: &[String],
    cwd: &Path,
    touched: &[(PathBuf, Touched)],
    refusals: &[Refusal],
    home: Option<&Path>,
) -> String {
    let exists = |p: &Path| std::fs::symlink_metadata(p).ok();
    let nearest = |p: &Path| {
        p.ancestors().skip(1).find(|a| exists(a).is_some_and(|m| m.is_dir())).map(PathBuf::from)
    };
    let mut grants: BTreeMap<PathBuf, Draft> = BTreeMap::new();
    let mut reads: Vec<(PathBuf, bool, bool)> = Vec::new(); // (path, exec, listed)
    let mut tmp_exec = false;
    let mut notes = Vec::new();
    // Directories where entries were made or removed: rwc at the nearest that exists.
    for (p, t) in touched {
        if (t.create || t.remove) && (p.starts_with(cwd) || !p.starts_with("/tmp")) {
            if in_default_view(p) {
                notes.push(format!(
                    "the run changed {} in the OS runtime: not granted",
                    p.display()
                ));
                continue;
            }
            if let Some(dir) = nearest(p) {
                let why = if t.create { "made entries" } else { "removed entries" };
                grants.entry(dir).or_default().add(Rights::RWC, why, p);
            }
        }
    }
    let made: Vec<PathBuf> = grants.keys().cloned().collect();
    for (p, t) in touched {
        let private = p.starts_with("/tmp") && !p.starts_with(cwd);
        if private {
            tmp_exec |= t.exec;
            continue;
        }
        if in_default_view(p) || p == Path::new("/") {
            continue;
        }
        let Some(meta) = exists(p) else {
            // Made during the run: its rights go to the directory where it was made.
            if let Some(d) = made.iter().filter(|d| p.starts_with(d)).max().filter(|_| t.exec) {
                let x = Rights { exec: true, ..Rights::default() };
                grants.entry(d.clone()).or_default().add(x, "ran what it made", p);
            }
            continue;
        };
        if t.write && meta.is_file() && !made.iter().any(|d| p.starts_with(d)) {
            let rw = Rights { read: true, write: true, ..Rights::default() };
            grants.entry(p.clone()).or_default().add(rw, "wrote", p);
        }
        if t.read || t.exec || t.lookup || t.write {
            reads.push((p.clone(), t.exec, t.read && meta.is_dir()));
        }
    }
    for (p, (exec, _, files)) in group(reads, cwd, home) {
        let r = Rights { read: true, exec, ..Rights::default() };
        let d = grants.entry(p.clone()).or_default();
        for (f, x) in files {
            d.add(r, if x { "ran" } else { "read" }, &f);
        }
    }
    // A grant inside another with at least its rights adds nothing.
    let all: Vec<(PathBuf, Rights)> = grants.iter().map(|(p, d)| (p.clone(), d.rights)).collect();
    grants.retain(|p, d| {
        !all.iter().any(|(q, r)| q != p && p.starts_with(q) && union(*r, d.rights) == *r)
    });
    render(command, cwd, &grants, tmp_exec, &notes, refusals, home)
}

/// Per grant of rule 3: whether something under it ran, whether it was listed, and the
/// paths that caused it (with whether each ran).
type Group = (bool, bool, Vec<(PathBuf, bool)>);

/// Rule 3: reads in the working directory become the working directory; elsewhere files are
/// grouped into their directory when 3 or more of its entries were touched or it was listed.
fn group(
    reads: Vec<(PathBuf, bool, bool)>,
    cwd: &Path,
    home: Option<&Path>,
) -> BTreeMap<PathBuf, Group> {
    let mut out: BTreeMap<PathBuf, Group> = BTreeMap::new();
    for (p, x, listed) in reads {
        let key = if p.starts_with(cwd) { cwd.to_path_buf() } else { p.clone() };
        let e = out.entry(key).or_default();
        e.0 |= x;
        e.1 |= listed;
        e.2.push((p, x));
    }
    let stop = |d: &Path| d.parent().is_none_or(|p| p == Path::new("/")) || Some(d) == home;
    loop {
        let mut counts: BTreeMap<PathBuf, usize> = BTreeMap::new();
        for p in out.keys() {
            if let Some(d) = p.parent() {
                *counts.entry(d.to_path_buf()).or_default() += 1;
            }
        }
        let listed = out.iter().filter(|(_, v)| v.1).map(|(p, _)| p.clone());
        let Some(dir) = counts
            .iter()
            .filter(|(d, n)| **n >= GROUP_AT && !stop(d))
            .map(|(d, _)| d.clone())
            .chain(listed.filter(|d| !stop(d) && out.keys().any(|p| p != d && p.starts_with(d))))
            .next()
        else {
            break;
        };
        let mut merged = out.remove(&dir).unwrap_or_default();
        merged.1 = true;
        let inside: Vec<PathBuf> = out.keys().filter(|p| p.starts_with(&dir)).cloned().collect();
        for p in inside {
            if let Some((x, _, files)) = out.remove(&p) {
                merged.0 |= x;
                merged.2.extend(files);
            }
        }
        out.insert(dir, merged);
    }
    out
}

/// The manifest text: a header with the rule, [sandbox], [fs] with a comment per grant.
fn render(
    command: &[String],
    cwd: &Path,
    grants: &BTreeMap<PathBuf, Draft>,
    tmp_exec: bool,
    notes: &[String],
    refusals: &[Refusal],
    home: Option<&Path>,
) -> String {
    let mut s = String::new();
    s.push_str("# Draft manifest from `brig learn`: review every grant before you use it.\n");
    s.push_str(&format!("# Learned from: {}\n", shell_words(command)));
    s.push_str(&format!("# In: {}\n", cwd.display()));
    s.push_str(&format!(
        "# Replay: cd {} && brig run -m THIS_FILE -- {}\n",
        cwd.display(),
        shell_words(command)
    ));
    s.push_str(
        "# Rule: the OS runtime is one grant (system = true); only paths the run touched and\n",
    );
    s.push_str(
        "# the host has are granted, with only the rights it used; files are grouped into\n",
    );
    s.push_str("# their directory when 3+ of its entries were touched (docs/learn.md).\n\n");
    s.push_str("[sandbox]\nsystem = true   # the OS runtime: /usr, /lib*, /bin, /sbin, reviewed /etc files\n\n");
    s.push_str("[fs]\n");
    if tmp_exec {
        s.push_str("# the run executed files it made in /tmp (its home is /tmp too)\n");
        s.push_str("\"/tmp\" = \"tmpfs:x\"\n");
    }
    for (path, d) in grants {
        for (why, paths) in &d.why {
            let shown: Vec<String> = paths
                .iter()
                .take(3)
                .map(|p| match p.strip_prefix(path) {
                    Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
                    _ => p.display().to_string(),
                })
                .collect();
            let more = match paths.len() > 3 {
                true => format!(" and {} more", paths.len() - 3),
                false => String::new(),
            };
            s.push_str(&format!("# {why}: {}{more}\n", shown.join(", ")));
        }
        let writable = d.rights.write || d.rights.create;
        for r in brig_policy::check::path_risks(path, writable, home) {
            s.push_str(&format!("# RISK: {r}\n"));
        }
        s.push_str(&format!("{} = \"{}\"\n", toml_str(path), d.rights));
    }
    if !notes.is_empty() || !refusals.is_empty() {
        s.push_str("\n# Refused during the learning run (not granted; decide yourself):\n");
    }
    for n in notes {
        s.push_str(&format!("# - {n}\n"));
    }
    for r in refusals
        .iter()
        .filter(|r| r.layer != "view" || r.access != brig_jail::explain::Access::Lookup)
    {
        s.push_str(&format!("# - {}\n", r.line().trim_start_matches("brig: ")));
    }
    s
}

fn toml_str(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn shell_words(words: &[String]) -> String {
    let quote = |w: &String| {
        let plain = !w.is_empty()
            && w.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
        match plain {
            true => w.clone(),
            false => format!("'{}'", w.replace('\'', "'\\''")),
        }
    };
    words.iter().map(quote).collect::<Vec<_>>().join(" ")
}
