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
    fn host_paths() {
        assert!(host("").is_err());
        assert!(host("a\0b").is_err());
        assert_eq!(host("./a").expect("ok"), Path::new("./a"));
    }
}
