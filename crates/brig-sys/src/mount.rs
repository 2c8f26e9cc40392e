//! The new mount API (fsopen/fsmount/open_tree/move_mount/mount_setattr), pivot_root, umount2.
//!
//! Every call works on fds: a mount is created detached, configured, then attached onto a target
//! that was itself opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so no path is
//! resolved twice and a symlink swapped in by someone else cannot redirect a mount.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::{check, check_int, cstr};

/// Mount attributes (`MOUNT_ATTR_*`).
pub mod attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    pub const IDMAP: u64 = 0x0010_0000;
}

const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;
const FSOPEN_CLOEXEC: u32 = 1;
const FSMOUNT_CLOEXEC: u32 = 1;
const OPEN_TREE_CLONE: u32 = 1;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
const MS_PRIVATE: u64 = 1 << 18;

/// `struct mount_attr` for mount_setattr(2).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: callers pass only an fd the kernel has just returned to us and nobody else owns.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// Creates a new, detached filesystem instance (`fsopen` + `fsconfig` + `fsmount`).
/// `options` are `key=value` strings such as `("size", "1048576")`.
pub fn new_fs(fstype: &str, options: &[(&str, &str)], attrs: u64) -> io::Result<OwnedFd> {
    let ty = CString::new(fstype)?;
    // SAFETY: `ty` is NUL-terminated and lives across the call.
    let fsfd =
        owned(check(unsafe { libc::syscall(libc::SYS_fsopen, ty.as_ptr(), FSOPEN_CLOEXEC) })?);
    for (k, v) in options {
        let (k, v) = (CString::new(*k)?, CString::new(*v)?);
        // SAFETY: key and value are NUL-terminated strings alive across the call; aux is 0 as
        // FSCONFIG_SET_STRING requires.
        check(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fsfd.as_raw_fd(),
                FSCONFIG_SET_STRING,
                k.as_ptr(),
                v.as_ptr(),
                0,
            )
        })?;
    }
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value pointers; both are NULL.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fsfd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<u8>(),
            std::ptr::null::<u8>(),
            0,
        )
    })?;
    // SAFETY: plain syscall on the fs context fd we own.
    let mnt = check(unsafe {
        libc::syscall(libc::SYS_fsmount, fsfd.as_raw_fd(), FSMOUNT_CLOEXEC, attrs)
    })?;
    Ok(owned(mnt))
}

/// Clones the mount tree at `src` (recursively) into a new detached tree (`open_tree`).
pub fn clone_tree(src: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let flags = OPEN_TREE_CLONE
        | libc::O_CLOEXEC as u32
        | libc::AT_EMPTY_PATH as u32
        | libc::AT_RECURSIVE as u32;
    // SAFETY: the path is the empty NUL-terminated string, valid with AT_EMPTY_PATH.
    let fd =
        check(unsafe { libc::syscall(libc::SYS_open_tree, src.as_raw_fd(), c"".as_ptr(), flags) })?;
    Ok(owned(fd))
}

/// Sets `set` and clears `clear` attributes on the whole tree at `mnt`, and makes it private.
pub fn set_attr(mnt: BorrowedFd<'_>, set: u64, clear: u64, recursive: bool) -> io::Result<()> {
    let a = MountAttr { attr_set: set, attr_clr: clear, propagation: MS_PRIVATE, userns_fd: 0 };
    setattr(mnt, &a, recursive)
}

/// Makes the detached mount `mnt` (its top mount only) id-mapped through the user namespace
/// `userns`: a file owned by id `i` on disk is seen, and created, as the id `i` maps to there.
/// Needs CAP_SYS_ADMIN over the filesystem and a filesystem that supports it (ext4, tmpfs, ...).
pub fn set_idmap(mnt: BorrowedFd<'_>, userns: BorrowedFd<'_>) -> io::Result<()> {
    let userns_fd = userns.as_raw_fd() as u64;
    let a = MountAttr { attr_set: attr::IDMAP, attr_clr: 0, propagation: 0, userns_fd };
    setattr(mnt, &a, false)
}

fn setattr(mnt: BorrowedFd<'_>, a: &MountAttr, recursive: bool) -> io::Result<()> {
    let flags = libc::AT_EMPTY_PATH as u32 | if recursive { libc::AT_RECURSIVE as u32 } else { 0 };
    // SAFETY: `a` is a fully initialised mount_attr and we pass its exact size.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            flags,
            a as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

/// Attaches the detached mount `mnt` on top of the file or directory `target` (an fd).
pub fn attach(mnt: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: both paths are the empty NUL-terminated string, valid with the *_EMPTY_PATH flags.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// Detaches (lazily unmounts) the attached mount whose root `mnt` refers to, through its
/// `/proc/self/fd` link (a procfs must be mounted at /proc).
pub fn detach(mnt: BorrowedFd<'_>) -> io::Result<()> {
    let p = cstr(Path::new(&format!("/proc/self/fd/{}", mnt.as_raw_fd())))?;
    // SAFETY: `p` is NUL-terminated and alive across the call.
    check_int(unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) }).map(drop)
}

/// Makes every mount in this namespace private, so nothing we do propagates to the host.
pub fn make_all_private() -> io::Result<()> {
    // SAFETY: all strings are NUL-terminated literals; a NULL source/fstype/data is what
    // MS_PRIVATE expects.
    check_int(unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    })
    .map(drop)
}

/// `pivot_root(".", ".")` then detach the old root: the current directory becomes `/`.
pub fn pivot_to_cwd() -> io::Result<()> {
    // SAFETY: both paths are NUL-terminated literals.
    check(unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) })?;
    // The old root is now stacked under the new one at "."; detach it lazily.
    // SAFETY: NUL-terminated literal path.
    check_int(unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) })?;
    Ok(())
}

/// Attaches `mnt` at an absolute `path` of the current namespace (used once, for staging).
pub fn attach_at_path(mnt: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    let p = cstr(path)?;
    // SAFETY: `p` and the empty path are NUL-terminated and alive across the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            p.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
    .map(drop)
}
