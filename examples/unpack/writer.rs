//! The caller's side: every path, link and size the component sends is checked before anything
//! is written, and everything is written beneath DESTDIR through a `cap_std::fs::Dir` (no path
//! leads out of it, whatever symlinks are inside).

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use cap_std::fs::{Dir, Permissions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

use crate::component::Sink;
use crate::proto::{Entry, Kind};

/// What one archive may produce.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub bytes: u64,
    pub entries: u64,
}

pub struct Writer {
    dest: Dir,
    budget: Budget,
    written: u64,
    entries: u64,
    /// The file being written, its path and the bytes it still expects.
    file: Option<(cap_std::fs::File, PathBuf, u64)>,
    /// Directories and their modes, set at the end (a read-only directory must stay writable
    /// until its entries are in).
    dirs: Vec<(PathBuf, u32)>,
}

/// A relative path that stays beneath its root: no `..`, not absolute, no NUL (empty when it
/// names the root itself, `./`).
pub fn checked(raw: &[u8]) -> Result<PathBuf, String> {
    let shown = String::from_utf8_lossy(raw);
    if raw.is_empty() || raw.contains(&0) {
        return Err(format!("refused entry {shown:?}: an empty path or one with NUL"));
    }
    let p = Path::new(std::ffi::OsStr::from_bytes(raw));
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!("refused entry {shown:?}: `..` would lead out of DESTDIR"))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("refused entry {shown:?}: an absolute path"))
            }
        }
    }
    Ok(out)
}

/// A symlink's target, which must stay beneath DESTDIR from where the link is.
fn link_target(at: &Path, raw: &[u8]) -> Result<PathBuf, String> {
    let (shown, target) =
        (String::from_utf8_lossy(raw), Path::new(std::ffi::OsStr::from_bytes(raw)));
    let mut depth = at.components().count() as i64 - 1;
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => depth -= 1,
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "refused entry {:?}: a link to the absolute path {shown:?}",
                    at.display()
                ))
            }
        }
        if depth < 0 {
            return Err(format!(
                "refused entry {:?}: a link to {shown:?}, out of DESTDIR",
                at.display()
            ));
        }
    }
    Ok(target.to_path_buf())
}

impl Writer {
    pub fn new(dest: Dir, budget: Budget) -> Writer {
        Writer { dest, budget, written: 0, entries: 0, file: None, dirs: Vec::new() }
    }

    fn close_file(&mut self) -> Result<(), String> {
        if let Some((_, path, left)) = self.file.take() {
            if left != 0 {
                return Err(format!("entry {:?}: {left} bytes short of its size", path.display()));
            }
        }
        Ok(())
    }

    /// Finishes: the last file complete, directory modes set. Returns the bytes written.
    pub fn finish(mut self) -> Result<(u64, u64), String> {
        self.close_file()?;
        for (path, mode) in self.dirs.iter().rev() {
            let perm = Permissions::from_std(std::fs::Permissions::from_mode(mode & 0o777));
            self.dest
                .set_permissions(path, perm)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok((self.entries, self.written))
    }

    /// Removes whatever is at `path` (not a directory), as tar -x replaces an entry.
    /// The current file's next `n` bytes, checked against its size, then written by `write`.
    pub fn data_with(
        &mut self,
        n: u64,
        write: impl FnOnce(&mut cap_std::fs::File) -> std::io::Result<()>,
    ) -> Result<(), String> {
        let Some((f, path, left)) = self.file.as_mut() else {
            return Err("refused: data outside a file".into());
        };
        if n > *left {
            return Err(format!("refused entry {:?}: more data than its size", path.display()));
        }
        write(f).map_err(|e| format!("{}: {e}", path.display()))?;
        *left -= n;
        self.written += n;
        Ok(())
    }

    fn clear(&self, path: &Path) {
        if self.dest.symlink_metadata(path).is_ok_and(|m| !m.is_dir()) {
            let _ = self.dest.remove_file(path);
        }
    }
}

impl Sink for Writer {
    fn entry(&mut self, e: Entry) -> Result<(), String> {
        self.close_file()?;
        self.entries += 1;
        if self.entries > self.budget.entries {
            return Err(format!("refused: more than {} entries", self.budget.entries));
        }
        let path = checked(&e.path)?;
        let shown = path.display().to_string();
        if path.as_os_str().is_empty() {
            return match e.kind {
                Kind::Dir => Ok(()),
                _ => Err(format!(
                    "refused entry {:?}: names DESTDIR itself",
                    e.path.escape_ascii().to_string()
                )),
            };
        }
        if e.size > self.budget.bytes - self.written {
            return Err(format!(
                "refused entry {shown:?}: its {} bytes exceed what is left of the {}-byte budget",
                e.size, self.budget.bytes
            ));
        }
        let io = |e: std::io::Error| format!("entry {shown:?}: {e}");
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.dest.create_dir_all(parent).map_err(io)?;
        }
        match e.kind {
            Kind::Dir => {
                self.dest.create_dir_all(&path).map_err(io)?;
                self.dirs.push((path, e.mode));
            }
            Kind::File => {
                self.clear(&path);
                let f = self.dest.create(&path).map_err(io)?;
                let perm = Permissions::from_std(std::fs::Permissions::from_mode(e.mode & 0o777));
                f.set_permissions(perm).map_err(io)?;
                self.file = Some((f, path, e.size));
            }
            Kind::Symlink => {
                let target = link_target(&path, &e.link)?;
                self.clear(&path);
                self.dest.symlink(&target, &path).map_err(io)?;
            }
            Kind::Hardlink => {
                let target = checked(&e.link)?;
                if target.as_os_str().is_empty() {
                    return Err(format!("refused entry {shown:?}: a hard link to DESTDIR"));
                }
                self.clear(&path);
                self.dest.hard_link(&target, &self.dest, &path).map_err(io)?;
            }
        }
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.data_with(bytes.len() as u64, |f| f.write_all(bytes))
    }
}
