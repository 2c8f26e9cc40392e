//! Lexical path handling. No filesystem access: the runner resolves symlinks when it opens a
//! grant (with `openat2` and `RESOLVE_NO_MAGICLINKS`), so nothing here is a security check on the
//! host's paths; it only fixes what the user wrote into one absolute spelling.

use std::path::{Component, Path, PathBuf};

use crate::error::Problem;

/// `p` made absolute against `base`, with `.` removed and `..` applied lexically (`..` at the
/// root stays at the root).
pub fn absolute(base: &Path, p: &Path) -> PathBuf {
    let joined = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Checks a path inside the prison: absolute, without `..` and NUL. Returns it normalized
/// (`//a/./b/` becomes `/a/b`).
pub fn inside(s: &str) -> Result<PathBuf, Problem> {
    if s.contains('\0') {
        return Err(Problem::new(format!("{s:?} contains a NUL byte"), "remove it"));
    }
    let p = Path::new(s);
    if !p.is_absolute() {
        return Err(Problem::new(
            format!("{s:?} is not an absolute path"),
            "paths inside the prison start with / (e.g. \"/data\")",
        ));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(Problem::new(
            format!("{s:?} contains \"..\""),
            "write the path inside the prison without \"..\"",
        ));
    }
    Ok(absolute(Path::new("/"), p))
}

/// What brig itself puts at these places in every prison's view (crates/brig-jail/src/grants.rs
/// builds them): (path, also everything beneath it, what it is, how to do without it). A grant or
/// tmpfs there would replace what every program relies on, or could not be mounted at all.
pub const RESERVED: &[(&str, bool, &str, &str)] = &[
    (
        "/",
        false,
        "the prison's root, which brig builds (a fresh tmpfs)",
        "grant only the directories the program needs, each at its own place below / \
         (e.g. /data)",
    ),
    (
        "/proc",
        true,
        "the prison's own procfs, which brig mounts",
        "choose a destination outside /proc",
    ),
    (
        "/dev",
        false,
        "brig's minimal /dev",
        "choose a destination outside /dev, or mount single entries at /dev/NAME",
    ),
    ("/dev/null", true, "a device brig gives every prison", DEV_HINT),
    ("/dev/zero", true, "a device brig gives every prison", DEV_HINT),
    ("/dev/full", true, "a device brig gives every prison", DEV_HINT),
    ("/dev/random", true, "a device brig gives every prison", DEV_HINT),
    ("/dev/urandom", true, "a device brig gives every prison", DEV_HINT),
    ("/dev/tty", true, "a device brig gives every prison", DEV_HINT),
    ("/dev/pts", true, "the prison's own devpts (its pseudo-terminals)", DEV_HINT),
    ("/dev/ptmx", true, "brig's link to /dev/pts/ptmx", DEV_HINT),
    ("/dev/fd", true, "brig's link to /proc/self/fd", DEV_HINT),
    ("/dev/stdin", true, "brig's link to /proc/self/fd/0", DEV_HINT),
    ("/dev/stdout", true, "brig's link to /proc/self/fd/1", DEV_HINT),
    ("/dev/stderr", true, "brig's link to /proc/self/fd/2", DEV_HINT),
    (
        "/dev/shm",
        true,
        "brig's link to /tmp (shared memory lives in the prison's /tmp)",
        "mount at /tmp instead, or size the prison's /tmp (--tmp-size, [limits] tmp)",
    ),
];

const DEV_HINT: &str = "choose another destination";

/// Refuses a mount point (a grant's or a tmpfs's destination, normalized by [`inside`]) that
/// brig's own view holds (see [`RESERVED`]).
pub fn mount_point(dest: &Path) -> Result<(), Problem> {
    let hit = RESERVED
        .iter()
        .find(|(p, beneath, ..)| dest == Path::new(p) || (*beneath && dest.starts_with(p)));
    match hit {
        None => Ok(()),
        Some((p, _, what, hint)) if dest == Path::new(p) => {
            Err(Problem::new(format!("{p} is {what}"), *hint))
        }
        Some((p, _, what, hint)) => {
            Err(Problem::new(format!("{} is inside {p}, {what}", dest.display()), *hint))
        }
    }
}

/// Checks a host path as written (relative or absolute): not empty, no NUL.
pub fn host(s: &str) -> Result<&Path, Problem> {
    if s.is_empty() {
        return Err(Problem::new("the path is empty", "give a host path (e.g. ./build)"));
    }
    if s.contains('\0') {
        return Err(Problem::new(format!("{s:?} contains a NUL byte"), "remove it"));
    }
    Ok(Path::new(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical() {
        assert_eq!(absolute(Path::new("/a/b"), Path::new("../c/./d")), PathBuf::from("/a/c/d"));
        assert_eq!(absolute(Path::new("/"), Path::new("../../x")), PathBuf::from("/x"));
        assert_eq!(absolute(Path::new("/a"), Path::new("/b/")), PathBuf::from("/b"));
        assert_eq!(absolute(Path::new("/a"), Path::new("")), PathBuf::from("/a"));
    }

    #[test]
    fn inside_paths() {
        assert_eq!(inside("//x/./y/").expect("ok"), PathBuf::from("/x/y"));
        assert_eq!(inside("/").expect("ok"), PathBuf::from("/"));
        assert!(inside("x").expect_err("relative").message.contains("not an absolute path"));
        assert!(inside("").is_err());
        assert!(inside("/a/../b").expect_err("dotdot").message.contains(".."));
        assert!(inside("/a\0").expect_err("nul").message.contains("NUL"));
    }

    #[test]
    fn reserved_mount_points() {
        for bad in
            ["/", "/proc", "/proc/sys", "/dev", "/dev/null", "/dev/fd/3", "/dev/shm/x", "/dev/pts"]
        {
            let e = mount_point(Path::new(bad)).expect_err(bad);
            assert!(e.message.starts_with(&format!("{bad} is ")) && !e.hint.is_empty(), "{e}");
        }
        for good in ["/tmp", "/tmp/x", "/dev/kvm", "/dev/ptsx", "/devices", "/procs", "/data"] {
            assert_eq!(mount_point(Path::new(good)), Ok(()), "{good}");
        }
        assert_eq!(
            mount_point(Path::new("/proc/1")).expect_err("proc").to_string(),
            "/proc/1 is inside /proc, the prison's own procfs, which brig mounts; choose a \
             destination outside /proc"
        );
    }

    #[test]
    fn host_paths() {
        assert!(host("").is_err());
        assert!(host("a\0b").is_err());
        assert_eq!(host("./a").expect("ok"), Path::new("./a"));
    }
}
