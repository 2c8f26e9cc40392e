//! Handing fds across exec: sealed memfds, moving fds to fixed numbers, and taking ownership of
//! the numbers a program inherited.

use std::collections::BTreeSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use crate::{check, check_int, cstr};

/// `MFD_NOEXEC_SEAL` (Linux 6.3): the memfd is not executable and can never be made so
/// (F_SEAL_EXEC); implies sealing is allowed.
pub const MFD_NOEXEC_SEAL: u32 = 0x8;
/// `MFD_EXEC`: an executable memfd, asked for explicitly.
pub const MFD_EXEC: u32 = 0x10;

/// `memfd_create(name, flags)`, close-on-exec whatever `flags` say.
pub fn memfd(name: &str, flags: u32) -> io::Result<OwnedFd> {
    let cname = cstr(std::path::Path::new(name))?;
    // SAFETY: `cname` is NUL-terminated and outlives the call.
    let fd = check_int(unsafe { libc::memfd_create(cname.as_ptr(), flags | libc::MFD_CLOEXEC) })?;
    // SAFETY: memfd_create just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `eventfd(0, EFD_CLOEXEC)`: a counter one side signals and the other reads (brig-vmm's
/// queue notifications, which KVM signals).
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers.
    let fd = check_int(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) })?;
    // SAFETY: eventfd just returned this fd; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A sealed memfd holding `data`, opened read-only: nobody, the holder included, can change,
/// grow or shrink it, re-seal it, or execute it. Close-on-exec.
pub fn sealed_memfd(name: &str, data: &[u8]) -> io::Result<OwnedFd> {
    let fd = memfd(name, MFD_NOEXEC_SEAL)?;
    let mut done = 0;
    while done < data.len() {
        done += crate::fs::write(std::os::fd::AsFd::as_fd(&fd), &data[done..])?;
    }
    add_seals(
        fd.as_fd(),
        libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL,
    )?;
    // A new, read-only open file description of the same memfd (the first one is read-write).
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    crate::fs::openat2(None, std::path::Path::new(&path), libc::O_RDONLY, 0, 0)
}

/// A close-on-exec duplicate of `fd` at the lowest free number >= `min`.
pub fn dup_at_least(fd: BorrowedFd<'_>, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC takes an int; the kernel returns a new fd only we own.
    let n = check_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) })?;
    // SAFETY: just returned by the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// Duplicates `fd` onto the number `target`, inheritable across exec (no close-on-exec), closing
/// whatever was there. For the program's process just before exec: the number is meant to leak
/// into the program, so no `OwnedFd` is made for it.
pub fn place_for_exec(fd: BorrowedFd<'_>, target: RawFd) -> io::Result<()> {
    if fd.as_raw_fd() == target {
        // dup3 refuses equal numbers; clear close-on-exec instead.
        // SAFETY: F_SETFD with an int flag word on an open fd.
        return check_int(unsafe { libc::fcntl(target, libc::F_SETFD, 0) }).map(drop);
    }
    // SAFETY: dup3 closes `target` if open. The callers own no `OwnedFd` at `target` any more
    // (every fd they keep was moved above the target range first), so no destructor will close
    // it again.
    check_int(unsafe { libc::dup3(fd.as_raw_fd(), target, 0) }).map(drop)
}

/// The file status flags (`F_GETFL`: O_NONBLOCK, O_APPEND, the access mode).
pub fn status_flags(fd: BorrowedFd<'_>) -> io::Result<i32> {
    // SAFETY: F_GETFL takes no argument; `fd` is open.
    check_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })
}

/// Sets or clears O_NONBLOCK (cleared after opening a FIFO or device without blocking the
/// runner; set on the terminal relay's pty master).
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFL takes no argument; `fd` is open.
    let fl = check_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    let fl = if on { fl | libc::O_NONBLOCK } else { fl & !libc::O_NONBLOCK };
    // SAFETY: F_SETFL takes an int flag word; `fd` is open.
    check_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl) }).map(drop)
}

/// The numbers already claimed by [`claim_inherited`] in this process.
static CLAIMED: Mutex<BTreeSet<RawFd>> = Mutex::new(BTreeSet::new());

/// Takes ownership of fd number `raw`, which this process inherited at exec (a capability brig
/// placed there). Refuses a number that is not open, one below 3, and one already claimed, so a
/// number never gets two owners through this function.
///
/// The caller must not have made an `OwnedFd` for `raw` in some other way; a program that
/// receives capabilities leaves those numbers to `brig-caps`.
pub fn claim_inherited(raw: RawFd) -> io::Result<OwnedFd> {
    let mut claimed = CLAIMED.lock().unwrap_or_else(|p| p.into_inner());
    if raw < 3 || claimed.contains(&raw) {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: F_GETFD only reads the fd's flags; it fails with EBADF if `raw` is not open.
    check_int(unsafe { libc::fcntl(raw, libc::F_GETFD) })?;
    claimed.insert(raw);
    // SAFETY: `raw` is open (checked), was inherited at exec, and is claimed at most once
    // through this function (the set above); see the caller's obligation in the doc comment.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// A close-on-exec `SOCK_SEQPACKET` unix socketpair.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two fds socketpair writes.
    check_int(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: both just returned by the kernel, owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The most fds [`send_fds`] sends and [`recv_fds`] accepts in one message.
pub const MAX_FDS: usize = 4;

/// The most fds [`send_msg`] sends and [`recv_msg`] accepts in one message.
pub const MAX_MSG_FDS: usize = 16;

/// Sends `fds` (at most [`MAX_FDS`]) with the one-byte message `tag` over a unix socket
/// (SCM_RIGHTS).
pub fn send_fds(sock: BorrowedFd<'_>, tag: u8, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    send_msg(sock, &[tag], fds)
}

/// Receives one message from [`send_fds`]: its tag and the fds it carried (close-on-exec), in
/// order. A message with more than [`MAX_FDS`] fds is refused (what arrived is closed). End of
/// stream gives `UnexpectedEof`.
pub fn recv_fds(sock: BorrowedFd<'_>) -> io::Result<(u8, Vec<OwnedFd>)> {
    let mut byte = [0u8; 1];
    let r = recv_msg(sock, &mut byte, false)?;
    if r.len == 0 && r.fds.is_empty() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if r.fds_cut || r.fds.len() > MAX_FDS {
        return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
    }
    Ok((byte[0], r.fds))
}

/// Sends one message, `bytes` with `fds` (at most [`MAX_MSG_FDS`]) beside it, over a unix
/// socket (SCM_RIGHTS); never raises SIGPIPE.
pub fn send_msg(sock: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.len() > MAX_MSG_FDS {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    // u64 words keep the control buffer aligned for cmsghdr: CMSG_SPACE(16 * 4) = 80 bytes.
    let mut control = [0u64; 16];
    let payload = std::mem::size_of_val(raw.as_slice()) as u32;
    let mut iov =
        libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() };
    // SAFETY: msghdr is plain old data; all-zero is valid before the fields are set.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !raw.is_empty() {
        msg.msg_control = control.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE is a pure size computation.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(payload) } as usize;
        // SAFETY: `control` is 128 bytes, at least CMSG_SPACE(16 * 4), so the first header and
        // its data fit; CMSG_FIRSTHDR is non-null for a control buffer that large.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(payload) as usize;
            std::ptr::copy_nonoverlapping(
                raw.as_ptr(),
                libc::CMSG_DATA(c).cast::<RawFd>(),
                raw.len(),
            );
        }
    }
    // SAFETY: `msg` points at `iov` (the kernel only reads `bytes` through it) and `control`,
    // all alive for the call.
    check(unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) } as libc::c_long)
        .map(drop)
}

/// One message received by [`recv_msg`].
#[derive(Debug)]
pub struct Received {
    /// Bytes written into the buffer (0 with no fds: the peer closed).
    pub len: usize,
    /// The message was longer than the buffer (the rest is lost).
    pub cut: bool,
    /// More fds came than [`MAX_MSG_FDS`] (the kernel closed the rest).
    pub fds_cut: bool,
    /// The fds that came, close-on-exec, in order.
    pub fds: Vec<OwnedFd>,
}

/// Receives one message into `buf` with the fds beside it; `nonblocking`: EAGAIN when none
/// waits. Nothing is allocated from what the peer sent but the fds themselves (at most
/// [`MAX_MSG_FDS`]).
pub fn recv_msg(sock: BorrowedFd<'_>, buf: &mut [u8], nonblocking: bool) -> io::Result<Received> {
    let mut control = [0u64; 16];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: msghdr is plain old data; all-zero is valid before the fields are set.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: pure size computation.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE((MAX_MSG_FDS * 4) as u32) } as usize;
    let flags = libc::MSG_CMSG_CLOEXEC | if nonblocking { libc::MSG_DONTWAIT } else { 0 };
    // SAFETY: `msg` points at `iov` (covering `buf`, ours mutably) and `control` (128 bytes >=
    // msg_controllen), alive for the call.
    let n = check(unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, flags) } as libc::c_long)?;
    let mut fds = Vec::new();
    // SAFETY: the kernel filled `control` up to msg_controllen with well-formed headers;
    // CMSG_FIRSTHDR/NXTHDR stay within it. Each SCM_RIGHTS fd is new and owned by nobody else,
    // so it is wrapped at once (and closed if the message is refused).
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                let data = libc::CMSG_DATA(c).cast::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok(Received {
        len: n as usize,
        cut: msg.msg_flags & libc::MSG_TRUNC != 0,
        fds_cut: msg.msg_flags & libc::MSG_CTRUNC != 0,
        fds,
    })
}

/// The seals on a memfd (`F_GET_SEALS`); EINVAL for a file that cannot be sealed.
pub fn seals(fd: BorrowedFd<'_>) -> io::Result<i32> {
    // SAFETY: F_GET_SEALS takes no argument; `fd` is open.
    check_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) })
}

/// Adds `seals` to a memfd (`F_ADD_SEALS`).
pub fn add_seals(fd: BorrowedFd<'_>, seals: i32) -> io::Result<()> {
    // SAFETY: F_ADD_SEALS takes an int; `fd` is open.
    check_int(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) }).map(drop)
}

/// A prefaulted `MAP_SHARED` mapping of the first `len` bytes of an fd, unmapped on drop.
#[derive(Debug)]
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize, prot: libc::c_int) -> io::Result<Mapping> {
        if len == 0 {
            return Ok(Mapping { ptr: std::ptr::null_mut(), len: 0 });
        }
        let flags = libc::MAP_SHARED | libc::MAP_POPULATE;
        // SAFETY: a new mapping of `len` bytes of `fd` at an address the kernel picks; it
        // aliases nothing of ours.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: the mapping made in `new`, not used after this.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}

/// The size of a memfd, refused with `EFBIG` past `max`.
fn memfd_len(fd: BorrowedFd<'_>, max: u64) -> io::Result<usize> {
    let len = std::fs::File::from(fd.try_clone_to_owned()?).metadata()?.len();
    match usize::try_from(len) {
        Ok(n) if len <= max => Ok(n),
        _ => Err(io::Error::from_raw_os_error(libc::EFBIG)),
    }
}

/// A read-only mapping of a memfd sealed against writing and shrinking: its bytes can change
/// neither under the mapping (F_SEAL_WRITE; the kernel refuses that seal while any writable
/// mapping exists) nor under its end (F_SEAL_SHRINK: no SIGBUS). Unmapped on drop.
#[derive(Debug)]
pub struct SealedMap(Mapping);

// SAFETY: the mapping is read-only and its contents cannot change (the seals); sharing or
// moving the handle between threads is as safe as sharing a `&[u8]`.
unsafe impl Send for SealedMap {}
// SAFETY: as above.
unsafe impl Sync for SealedMap {}

impl SealedMap {
    /// Maps all of `fd` (prefaulted: one call instead of a fault per page). `EPERM` unless it
    /// carries F_SEAL_WRITE and F_SEAL_SHRINK; `EFBIG` if it is longer than `max`.
    pub fn new(fd: BorrowedFd<'_>, max: u64) -> io::Result<SealedMap> {
        let need = libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK;
        if seals(fd)? & need != need {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        Ok(SealedMap(Mapping::new(fd, memfd_len(fd, max)?, libc::PROT_READ)?))
    }

    pub fn as_slice(&self) -> &[u8] {
        if self.0.len == 0 {
            return &[];
        }
        // SAFETY: `ptr` maps `len` readable bytes for as long as `self` lives, and the seals
        // (checked in `new`) keep them from changing or going away.
        unsafe { std::slice::from_raw_parts(self.0.ptr as *const u8, self.0.len) }
    }
}

/// A memfd of `len` bytes sealed against shrinking, growing and further sealing, but not
/// writing: a buffer shared with a peer through [`SharedMap`]. Close-on-exec, never executable.
pub fn shared_memfd(name: &str, len: u64) -> io::Result<OwnedFd> {
    let fd = memfd(name, MFD_NOEXEC_SEAL)?;
    std::fs::File::from(fd.try_clone()?).set_len(len)?;
    add_seals(fd.as_fd(), libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL)?;
    Ok(fd)
}

/// A mapping of a memfd that two processes share, one filling it, the other passing its bytes
/// on: F_SEAL_SHRINK and F_SEAL_GROW (checked) keep its size, so neither side can make the
/// other's accesses fault (SIGBUS). Its bytes may change at any time, so this process never
/// makes a Rust reference to them: [`SharedMap::put`] copies in through a pointer and
/// [`SharedMap::write_to`] hands the kernel a pointer. Unmapped on drop.
#[derive(Debug)]
pub struct SharedMap {
    map: Mapping,
    writable: bool,
}

// SAFETY: the handle owns its mapping; `put` needs `&mut self`, so within this process only
// one thread writes through it at a time, and `write_to` only hands the kernel a pointer.
unsafe impl Send for SharedMap {}

impl SharedMap {
    /// Maps `fd`, which must be exactly `len` bytes (`EINVAL`) and carry F_SEAL_SHRINK and
    /// F_SEAL_GROW (`EPERM`); read-write when `writable`, else read-only.
    pub fn new(fd: BorrowedFd<'_>, len: usize, writable: bool) -> io::Result<SharedMap> {
        let need = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
        if seals(fd)? & need != need {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        if memfd_len(fd, u64::MAX)? != len {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let prot = if writable { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_READ };
        Ok(SharedMap { map: Mapping::new(fd, len, prot)?, writable })
    }

    pub fn len(&self) -> usize {
        self.map.len
    }

    pub fn is_empty(&self) -> bool {
        self.map.len == 0
    }

    /// `off..off + len` if it lies inside the mapping.
    fn span(&self, off: usize, len: usize) -> io::Result<*mut u8> {
        match off.checked_add(len) {
            Some(end) if end <= self.map.len && len > 0 => {
                // SAFETY: `off < end <= len`: the result stays inside the mapping.
                Ok(unsafe { self.map.ptr.cast::<u8>().add(off) })
            }
            _ if len == 0 => Ok(std::ptr::null_mut()),
            _ => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }

    /// Copies `bytes` in at `off`: `EINVAL` past the end, `EACCES` on a read-only mapping.
    pub fn put(&mut self, off: usize, bytes: &[u8]) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::from_raw_os_error(libc::EACCES));
        }
        let dst = self.span(off, bytes.len())?;
        if !bytes.is_empty() {
            // SAFETY: `dst` has room for `bytes.len()` writable bytes (`span`, `writable`);
            // `bytes` is ours and cannot overlap the shared mapping's pages as a `&[u8]` of
            // them is never made.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) };
        }
        Ok(())
    }

    /// Writes bytes `off..off + len` to `out`, all of them (EINTR retried; a write of 0 is
    /// `WriteZero`); `EINVAL` past the end. The kernel reads them: no reference is made here.
    pub fn write_to(&self, off: usize, len: usize, out: BorrowedFd<'_>) -> io::Result<()> {
        let src = self.span(off, len)?;
        let mut done = 0;
        while done < len {
            // SAFETY: `src + done .. src + len` lies inside the mapping (`span`), readable for
            // as long as `self` lives; write(2) only reads it.
            let n = unsafe { libc::write(out.as_raw_fd(), src.add(done).cast(), len - done) };
            match check(n as libc::c_long) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n as usize,
            }
        }
        Ok(())
    }
}
