//! Lexical path handling (no filesystem access: the runner resolves symlinks later).

use std::path::{Component, Path, PathBuf};

/// `p` made absolute against `base`, with `.` removed and `..` applied lexically.
pub(crate) fn absolute(base: &Path, p: &Path) -> PathBuf {
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

/// Checks a path inside the prison: absolute, no `..`, no NUL. Returns it normalized.
pub(crate) fn inside(s: &str) -> Result<PathBuf, String> {
    if s.contains('\0') {
        return Err(format!("{s:?} contains a NUL byte"));
    }
    let p = Path::new(s);
    if !p.is_absolute() {
        return Err(format!(
            "\"{s}\" is not an absolute path; paths inside the prison start with /"
        ));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(format!("\"{s}\" contains \"..\"; write the path without it"));
    }
    Ok(absolute(Path::new("/"), p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical() {
        assert_eq!(absolute(Path::new("/a/b"), Path::new("../c/./d")), PathBuf::from("/a/c/d"));
        assert_eq!(absolute(Path::new("/"), Path::new("../../x")), PathBuf::from("/x"));
        assert_eq!(inside("/x/y/").expect("ok"), PathBuf::from("/x/y"));
        assert!(inside("x").is_err());
        assert!(inside("/a/../b").is_err());
        assert!(inside("/a\0").is_err());
    }
}
