//! The encoding: little-endian integers, length-prefixed bytes and strings, a tag byte per enum
//! variant, and fds beside the bytes in the order they are written. Our own, small, rather
//! than serde with a binary format: every length is checked against the bytes actually
//! received before anything is allocated (a peer cannot make us allocate more than the one
//! message it sent, itself capped by the channel), every fd is checked for its kind where it is
//! taken, and a message is refused unless it was read to its last byte and fd.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;

use crate::Error;

/// What kind of file an fd of a message must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    /// A regular file (not a memfd).
    File,
    Dir,
    Socket,
    /// A memfd sealed against writing, shrinking and growing: what it holds cannot change
    /// under the receiver.
    Sealed,
    /// A memfd sealed against shrinking and growing but still writable: a buffer both ends map
    /// (`brig_sys::fdpass::SharedMap`), whose size cannot change under either.
    Shared,
    /// An anonymous inode with no file type (what an eventfd is; without /proc, `fstat` cannot
    /// tell an eventfd from other anonymous inodes, so the receiver only uses it as one).
    Event,
    /// Anything else (a pipe, a device, an unsealed memfd).
    Other,
}

const KEEP_SIZE: i32 = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
const MUST_SEAL: i32 = libc::F_SEAL_WRITE | KEEP_SIZE;

/// The kind of `fd`, by `fstat` and, for regular files, its seals.
pub fn kind_of(fd: &OwnedFd) -> FdKind {
    let Ok(file) = fd.try_clone().map(File::from) else { return FdKind::Other };
    let Ok(meta) = file.metadata() else { return FdKind::Other };
    let ty = meta.file_type();
    match () {
        _ if ty.is_dir() => FdKind::Dir,
        _ if ty.is_socket() => FdKind::Socket,
        _ if ty.is_file() => match brig_sys::fdpass::seals(fd.as_fd()) {
            Ok(s) if s & MUST_SEAL == MUST_SEAL => FdKind::Sealed,
            Ok(s) if s & KEEP_SIZE == KEEP_SIZE => FdKind::Shared,
            Ok(_) => FdKind::Other, // a memfd that could still change
            Err(_) => FdKind::File,
        },
        _ if std::os::unix::fs::MetadataExt::mode(&meta) & libc::S_IFMT == 0 => FdKind::Event,
        _ => FdKind::Other,
    }
}

/// A message being written.
#[derive(Debug, Default)]
pub struct Enc {
    pub(crate) bytes: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
}

impl Enc {
    pub fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bool(&mut self, v: bool) {
        self.u8(v as u8);
    }
    /// Bytes with their length (u32).
    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.bytes.extend_from_slice(v);
    }
    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    /// An fd, sent beside the bytes.
    /// The bytes written and the fds to send beside them.
    pub fn into_parts(self) -> (Vec<u8>, Vec<OwnedFd>) {
        (self.bytes, self.fds)
    }
    pub fn fd(&mut self, fd: OwnedFd) {
        self.fds.push(fd);
    }
    /// Bulk data: a sealed memfd holding `data` (read-only, cannot change).
    pub fn blob(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.fd(brig_sys::fdpass::sealed_memfd("brig-ipc-blob", data)?);
        Ok(())
    }
}

/// A received message being read: untrusted bytes and fds.
#[derive(Debug)]
pub struct Dec<'a> {
    bytes: &'a [u8],
    at: usize,
    fds: VecDeque<OwnedFd>,
}

impl<'a> Dec<'a> {
    pub fn new(bytes: &'a [u8], fds: Vec<OwnedFd>) -> Dec<'a> {
        Dec { bytes, at: 0, fds: fds.into() }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(Error::Garbage(what))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    pub fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1, "a byte")?[0])
    }
    pub fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_le_bytes(self.take(2, "a u16")?.try_into().unwrap_or_default()))
    }
    pub fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.take(4, "a u32")?.try_into().unwrap_or_default()))
    }
    pub fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.take(8, "a u64")?.try_into().unwrap_or_default()))
    }
    pub fn bool(&mut self) -> Result<bool, Error> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(Error::Garbage("a bool")),
        }
    }
    /// Length-prefixed bytes, at most `max` long; borrowed from the message, not copied.
    pub fn bytes(&mut self, max: usize) -> Result<&'a [u8], Error> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(Error::Garbage("bytes longer than allowed"));
        }
        self.take(n, "bytes")
    }
    pub fn str(&mut self, max: usize) -> Result<&'a str, Error> {
        std::str::from_utf8(self.bytes(max)?).map_err(|_| Error::Garbage("a string"))
    }
    /// The next fd, which must be of `kind`.
    pub fn fd(&mut self, kind: FdKind) -> Result<OwnedFd, Error> {
        let fd = self.fds.pop_front().ok_or(Error::Garbage("a missing fd"))?;
        match kind_of(&fd) {
            k if k == kind => Ok(fd),
            got => Err(Error::FdKind { expected: kind, got }),
        }
    }
    /// Bulk data from a sealed memfd, at most `max` bytes (checked before reading).
    pub fn blob(&mut self, max: u64) -> Result<Vec<u8>, Error> {
        let mut f = File::from(self.fd(FdKind::Sealed)?);
        let len = f.metadata().map_err(Error::Io)?.len();
        if len > max {
            return Err(Error::TooBig { max: max as usize });
        }
        let mut out = Vec::with_capacity(len as usize);
        // The seals keep the size: read from the start, whatever the offset was.
        std::io::Seek::rewind(&mut f).map_err(Error::Io)?;
        f.take(len).read_to_end(&mut out).map_err(Error::Io)?;
        Ok(out)
    }
    /// Bulk data from a sealed memfd, at most `max` bytes, mapped read-only rather than
    /// copied: for large data (no allocation, no copy; the seals keep it from changing).
    pub fn sealed(&mut self, max: u64) -> Result<brig_sys::fdpass::SealedMap, Error> {
        let fd = self.fd(FdKind::Sealed)?;
        brig_sys::fdpass::SealedMap::new(fd.as_fd(), max).map_err(|e| match e.raw_os_error() {
            Some(libc::EFBIG) => Error::TooBig { max: max as usize },
            _ => Error::Io(e),
        })
    }
    /// Refuses leftovers: a message is exactly what its type reads.
    pub fn finish(self) -> Result<(), Error> {
        match (self.at == self.bytes.len(), self.fds.is_empty()) {
            (true, true) => Ok(()),
            (false, _) => Err(Error::Garbage("bytes after the message")),
            (_, false) => Err(Error::Garbage("fds after the message")),
        }
    }
}

/// A type that crosses a channel.
pub trait Wire: Sized {
    fn encode(self, e: &mut Enc);
    fn decode(d: &mut Dec<'_>) -> Result<Self, Error>;
}

impl Wire for () {
    fn encode(self, _: &mut Enc) {}
    fn decode(_: &mut Dec<'_>) -> Result<(), Error> {
        Ok(())
    }
}

impl Wire for u64 {
    fn encode(self, e: &mut Enc) {
        e.u64(self);
    }
    fn decode(d: &mut Dec<'_>) -> Result<u64, Error> {
        d.u64()
    }
}

/// The largest string or byte field the built-in impls accept.
pub const MAX_FIELD: usize = 1 << 20;

impl Wire for String {
    fn encode(self, e: &mut Enc) {
        e.str(&self);
    }
    fn decode(d: &mut Dec<'_>) -> Result<String, Error> {
        d.str(MAX_FIELD).map(str::to_string)
    }
}

impl Wire for Vec<u8> {
    fn encode(self, e: &mut Enc) {
        e.bytes(&self);
    }
    fn decode(d: &mut Dec<'_>) -> Result<Vec<u8>, Error> {
        d.bytes(MAX_FIELD).map(<[u8]>::to_vec)
    }
}
