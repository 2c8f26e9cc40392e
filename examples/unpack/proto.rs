//! The `unpack/1` protocol between the caller and its decompression component.

use std::os::fd::OwnedFd;

use brig_ipc::{Dec, Enc, Error, FdKind, Wire};

/// The longest path or link target an entry may name.
pub const MAX_PATH: usize = 4096;
/// The most data one inline chunk carries.
pub const INLINE: usize = 1 << 20;
/// The channel's limits: a chunk and its header; the fds of the largest message (one).
pub const LIMITS: brig_ipc::Limits = brig_ipc::Limits { max_bytes: INLINE + 64, max_fds: 4 };
/// The output buffer the caller shares with the component: two slots of [`INLINE`] bytes. Read
/// request number k (counted from the `Open`) is answered in slot k % 2; the caller asks for
/// k + 2 only after it has written slot k out, so the component fills one slot while the
/// caller writes the other.
pub const SLOTS: usize = 2;
/// The most data one sealed-memfd chunk may hold.
pub const MAX_BLOB: u64 = 16 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tar,
    Gzip,
    Zstd,
    Xz,
}

#[derive(Debug)]
pub enum Request {
    /// The archive's bytes in a sealed memfd and the shared output buffer ([`SLOTS`]);
    /// `attempt` counts the caller's starts of the component (the hostile variant picks its
    /// attack by it).
    Open { format: Format, attempt: u32, archive: OwnedFd, out: OwnedFd },
    /// The next entry's header.
    Next,
    /// The current entry's next bytes.
    Read,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
}

#[derive(Debug)]
pub struct Entry {
    pub path: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    pub size: u64,
    pub link: Vec<u8>,
}

#[derive(Debug)]
pub enum Reply {
    Opened,
    Entry(Entry),
    End,
    /// Bytes inline (empty: the entry's end).
    Data(Vec<u8>),
    /// Bytes in a sealed memfd.
    Blob(Vec<u8>),
    /// This many bytes in the output buffer's slot for this request.
    Shared(u32),
}

impl Wire for Request {
    fn encode(self, e: &mut Enc) {
        match self {
            Request::Open { format, attempt, archive, out } => {
                e.u8(0);
                e.u8(format as u8);
                e.u32(attempt);
                e.fd(archive);
                e.fd(out);
            }
            Request::Next => e.u8(1),
            Request::Read => e.u8(2),
        }
    }
    fn decode(d: &mut Dec<'_>) -> Result<Self, Error> {
        Ok(match d.u8()? {
            0 => {
                let format = match d.u8()? {
                    0 => Format::Tar,
                    1 => Format::Gzip,
                    2 => Format::Zstd,
                    3 => Format::Xz,
                    _ => return Err(Error::Garbage("a format")),
                };
                let attempt = d.u32()?;
                let archive = d.fd(FdKind::Sealed)?;
                Request::Open { format, attempt, archive, out: d.fd(FdKind::Shared)? }
            }
            1 => Request::Next,
            2 => Request::Read,
            _ => return Err(Error::Garbage("a request")),
        })
    }
}

impl Wire for Reply {
    fn encode(self, e: &mut Enc) {
        match self {
            Reply::Opened => e.u8(0),
            Reply::Entry(x) => {
                e.u8(1);
                e.bytes(&x.path);
                e.u8(x.kind as u8);
                e.u32(x.mode);
                e.u64(x.size);
                e.bytes(&x.link);
            }
            Reply::End => e.u8(2),
            Reply::Data(b) => {
                e.u8(3);
                e.bytes(&b);
            }
            Reply::Blob(b) => {
                e.u8(4);
                // A failed memfd is sent as no fd: the receiver refuses the message.
                let _ = e.blob(&b);
            }
            Reply::Shared(n) => {
                e.u8(5);
                e.u32(n);
            }
        }
    }
    fn decode(d: &mut Dec<'_>) -> Result<Self, Error> {
        Ok(match d.u8()? {
            0 => Reply::Opened,
            1 => Reply::Entry(Entry {
                path: d.bytes(MAX_PATH)?.to_vec(),
                kind: match d.u8()? {
                    0 => Kind::File,
                    1 => Kind::Dir,
                    2 => Kind::Symlink,
                    3 => Kind::Hardlink,
                    _ => return Err(Error::Garbage("an entry kind")),
                },
                mode: d.u32()?,
                size: d.u64()?,
                link: d.bytes(MAX_PATH)?.to_vec(),
            }),
            2 => Reply::End,
            3 => Reply::Data(d.bytes(INLINE)?.to_vec()),
            4 => Reply::Blob(d.blob(MAX_BLOB)?),
            5 => Reply::Shared(d.u32()?),
            _ => return Err(Error::Garbage("a reply")),
        })
    }
}
