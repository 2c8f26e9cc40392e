//! File-descriptor based filesystem calls: openat2 with RESOLVE_* flags, *at() helpers, pipes.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::{check, check_int, cstr};

/// Flags for [`openat2`]'s `resolve` field.
pub mod resolve {
    pub const NO_XDEV: u64 = libc::RESOLVE_NO_XDEV;
    pub const NO_MAGICLINKS: u64 = libc::RESOLVE_NO_MAGICLINKS;
    pub const NO_SYMLINKS: u64 = libc::RESOLVE_NO_SYMLINKS;
    pub const BENEATH: u64 = libc::RESOLVE_BENEATH;
    pub const IN_ROOT: u64 = libc::RESOLVE_IN_ROOT;
}

/// `struct open_how` (libc's is non-exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `open(path, flags)` with O_CLOEXEC, for where `openat2` is refused (under brig's filter,
/// which answers it ENOSYS). No creation: no mode.
pub fn open(path: &Path, flags: i32) -> io::Result<OwnedFd> {
    let path = cstr(path)?;
    // SAFETY: `path` is NUL-terminated and outlives the call; without O_CREAT no mode is read.
    let fd = check_int(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) })?;
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `openat2(dirfd, path, {flags, mode, resolve})`; `dirfd` None means the current directory.
/// O_CLOEXEC is always added.
pub fn openat2(
    dirfd: Option<BorrowedFd<'_>>,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let path = cstr(path)?;
    let how = OpenHow { flags: (flags | libc::O_CLOEXEC) as u64, mode: mode as u64, resolve };
    let dfd = dirfd.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: `path` is NUL-terminated and outlives the call; `how` is a fully initialised
    // open_how and we pass its exact size, so the kernel reads only that struct.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dfd,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })?;
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Device and inode of an open file, plus whether it is a directory or a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ident {
    pub dev: u64,
    pub ino: u64,
    pub is_dir: bool,
    /// A character or block device.
    pub is_device: bool,
}

/// The owner (uid, gid) of the file `fd` refers to (`fstat`; an `O_PATH` fd will do).
pub fn owner(fd: BorrowedFd<'_>) -> io::Result<(u32, u32)> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a properly sized, writable stat buffer; the fd is valid while borrowed.
    check_int(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so the kernel filled the whole struct.
    let st = unsafe { st.assume_init() };
    Ok((st.st_uid, st.st_gid))
}

/// `fstat` reduced to what brig compares: the file's identity and kind.
pub fn ident(fd: BorrowedFd<'_>) -> io::Result<Ident> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a properly sized, writable stat buffer; the fd is valid while borrowed.
    check_int(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so the kernel filled the whole struct.
    let st = unsafe { st.assume_init() };
    let kind = st.st_mode & libc::S_IFMT;
    Ok(Ident {
        dev: st.st_dev,
        ino: st.st_ino,
        is_dir: kind == libc::S_IFDIR,
        is_device: kind == libc::S_IFCHR || kind == libc::S_IFBLK,
    })
}

/// `mkdirat(dirfd, path, mode)`; an existing entry is not an error.
pub fn mkdirat(dirfd: BorrowedFd<'_>, path: &Path, mode: u32) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: `p` is NUL-terminated and lives across the call.
    match check_int(unsafe { libc::mkdirat(dirfd.as_raw_fd(), p.as_ptr(), mode) }) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        r => r.map(drop),
    }
}

/// Creates (or truncates) a regular file at `dirfd/path` and writes `data`.
pub fn write_file_at(dirfd: BorrowedFd<'_>, path: &Path, mode: u32, data: &[u8]) -> io::Result<()> {
    let fd = openat2(
        Some(dirfd),
        path,
        libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW,
        mode,
        resolve::BENEATH | resolve::NO_SYMLINKS,
    )?;
    let mut done = 0;
    while done < data.len() {
        done += write(fd.as_fd(), &data[done..])?;
    }
    Ok(())
}

/// Creates (or truncates) a regular file at `dirfd/path` holding the first `len` bytes of `src`,
/// copied by the kernel (`sendfile` from offset 0): no page of ours is touched.
pub fn copy_file_at(
    dirfd: BorrowedFd<'_>,
    path: &Path,
    mode: u32,
    src: BorrowedFd<'_>,
    len: u64,
) -> io::Result<()> {
    let fd = openat2(
        Some(dirfd),
        path,
        libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_NOFOLLOW,
        mode,
        resolve::BENEATH | resolve::NO_SYMLINKS,
    )?;
    let mut off: libc::off_t = 0;
    while (off as u64) < len {
        let left = (len - off as u64) as usize;
        // SAFETY: both fds are valid while borrowed; `off` is a live off_t the kernel updates.
        let n = unsafe { libc::sendfile(fd.as_raw_fd(), src.as_raw_fd(), &mut off, left) };
        match n {
            -1 => return Err(io::Error::last_os_error()),
            0 => break, // the source got shorter
            _ => {}
        }
    }
    Ok(())
}

/// `symlinkat(target, dirfd, path)`.
pub fn symlinkat(target: &Path, dirfd: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    let t = cstr(target)?;
    let p = cstr(path)?;
    // SAFETY: both strings are NUL-terminated and live across the call.
    check_int(unsafe { libc::symlinkat(t.as_ptr(), dirfd.as_raw_fd(), p.as_ptr()) }).map(drop)
}

/// The target of the symlink `link` itself (an `O_PATH | O_NOFOLLOW` fd of it):
/// `readlinkat(link, "")`, so the link read is the one that was opened and checked.
pub fn readlink_fd(link: BorrowedFd<'_>) -> io::Result<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: `buf` has `buf.len()` writable bytes; the empty path is NUL-terminated static data.
    let n = check(unsafe {
        libc::readlinkat(link.as_raw_fd(), c"".as_ptr(), buf.as_mut_ptr().cast(), buf.len())
    } as libc::c_long)? as usize;
    buf.truncate(n);
    Ok(PathBuf::from(std::ffi::OsString::from_vec(buf)))
}

/// `unlinkat(dirfd, name, 0)`: removes a non-directory entry of `dirfd`.
pub fn unlinkat(dirfd: BorrowedFd<'_>, name: &Path) -> io::Result<()> {
    let n = cstr(name)?;
    // SAFETY: `n` is NUL-terminated and lives across the call.
    check_int(unsafe { libc::unlinkat(dirfd.as_raw_fd(), n.as_ptr(), 0) }).map(drop)
}

/// `fchdir(fd)`.
pub fn fchdir(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain syscall on a borrowed, open fd.
    check_int(unsafe { libc::fchdir(fd.as_raw_fd()) }).map(drop)
}

/// `chdir(path)`.
pub fn chdir(path: &Path) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: `p` is NUL-terminated and lives across the call.
    check_int(unsafe { libc::chdir(p.as_ptr()) }).map(drop)
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    check_int(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded and returned two fresh fds that we now own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `mkfifo(path, mode)`.
pub fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    let path = cstr(path)?;
    // SAFETY: `path` is NUL-terminated and outlives the call.
    check_int(unsafe { libc::mkfifo(path.as_ptr(), mode as libc::mode_t) }).map(drop)
}

/// `mknod(path, mode, makedev(major, minor))`: `mode` holds the file type (S_IFCHR, S_IFBLK,
/// S_IFIFO) and the permission bits.
pub fn mknod(path: &Path, mode: u32, major: u32, minor: u32) -> io::Result<()> {
    let path = cstr(path)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: `path` is NUL-terminated and outlives the call; mode and dev are plain integers.
    check_int(unsafe { libc::mknod(path.as_ptr(), mode as libc::mode_t, dev) }).map(drop)
}

/// Points this process's stdin, stdout and stderr at /dev/null (a supervisor that must not
/// hold or write to the stdio it handed to the program).
pub fn stdio_to_null() -> io::Result<()> {
    let null = open(Path::new("/dev/null"), libc::O_RDWR)?;
    for target in 0..3 {
        // SAFETY: dup2 onto 0-2 replaces those numbers atomically; no `OwnedFd` of ours owns
        // them (std's stdio handles refer to the numbers, and now write to /dev/null).
        check_int(unsafe { libc::dup2(null.as_raw_fd(), target) })?;
    }
    Ok(())
}

/// True if `fd` was opened for reading (read-only or read-write).
pub fn readable(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: F_GETFL takes no argument; `fd` is open.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    fl != -1 && fl & libc::O_ACCMODE != libc::O_WRONLY
}

/// `read(2)`, retried on EINTR. Returns 0 at end of file.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is a valid writable region of `buf.len()` bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        match check(n as libc::c_long) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map(|n| n as usize),
        }
    }
}

/// `write(2)`, retried on EINTR.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is a valid readable region of `buf.len()` bytes.
        let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        match check(n as libc::c_long) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map(|n| n as usize),
        }
    }
}

/// Closes every fd from number `first` up except those in `keep` (`close_range(2)`). Only for a
/// child process that owns nothing else it will use: an `OwnedFd` whose number was closed here
/// would later close a recycled number.
pub fn close_all_except(first: u32, keep: &[BorrowedFd<'_>]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep.iter().map(|k| k.as_raw_fd() as u32).collect();
    keep.sort_unstable();
    let mut from = first;
    for k in keep.into_iter().filter(|&k| k >= first) {
        if k > from {
            close_range(from, k - 1)?;
        }
        from = from.max(k + 1);
    }
    close_range(from, u32::MAX)
}

fn close_range(first: u32, last: u32) -> io::Result<()> {
    if first > last {
        return Ok(());
    }
    // SAFETY: see `close_all_except`: the caller is a child that will not use any fd it owned
    // in this range again.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) }).map(drop)
}

/// Builds a NUL-terminated string from bytes (used for argv/envp prepared before fork).
pub fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "string contains NUL"))
}
