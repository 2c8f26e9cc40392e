//! virtio-blk over a raw image fd: read, write, flush, get-id. A request is a 16-byte header
//! (readable), data buffers (all writable for a read, all readable for a write, a multiple of
//! 512 bytes, at most [`MAX_IO`]), and a one-byte status (writable), each its own buffer.

use std::fs::File;
use std::os::unix::fs::FileExt;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::chain::{Refusal, Seg};
use super::Backend;

pub const SECTOR: u64 = 512;
/// The most data one request moves.
pub const MAX_IO: u64 = 1 << 20;
const F_RO: u64 = 1 << 5;
const F_FLUSH: u64 = 1 << 9;
const IN: u32 = 0;
const OUT: u32 = 1;
const FLUSH: u32 = 4;
const GET_ID: u32 = 8;
const S_OK: u8 = 0;
const S_IOERR: u8 = 1;
const S_UNSUPP: u8 = 2;

#[derive(Debug)]
pub struct Blk {
    image: File,
    sectors: u64,
    read_only: bool,
    buf: Vec<u8>,
}

impl Blk {
    /// A disk on `image` (opened read-only when `read_only`); its size is cut to whole sectors.
    pub fn new(image: File, read_only: bool) -> std::io::Result<Blk> {
        let sectors = image.metadata()?.len() / SECTOR;
        Ok(Blk { image, sectors, read_only, buf: Vec::new() })
    }

    fn request(
        &mut self,
        mem: &GuestMemoryMmap,
        kind: u32,
        sector: u64,
        data: &[Seg],
    ) -> Result<u32, (u8, Refusal)> {
        let bytes: u64 = data.iter().map(|s| s.len as u64).sum();
        let io = |_| (S_IOERR, Refusal::BadRequest);
        match kind {
            IN | OUT => {
                let write = kind == OUT;
                if data.iter().any(|s| s.write == write) {
                    return Err((S_IOERR, Refusal::Direction));
                }
                if write && self.read_only {
                    return Err((S_IOERR, Refusal::ReadOnly));
                }
                if bytes % SECTOR != 0 {
                    return Err((S_IOERR, Refusal::BadRequest));
                }
                let end = sector.checked_add(bytes / SECTOR);
                if end.map_or(true, |e| e > self.sectors) {
                    return Err((S_IOERR, Refusal::PastEnd));
                }
                self.buf.resize(bytes as usize, 0);
                let at = sector * SECTOR;
                if write {
                    let mut off = 0;
                    for s in data {
                        let chunk = &mut self.buf[off..off + s.len as usize];
                        mem.read_slice(chunk, GuestAddress(s.addr))
                            .map_err(|_| (S_IOERR, Refusal::OutsideMemory))?;
                        off += s.len as usize;
                    }
                    self.image.write_all_at(&self.buf, at).map_err(io)?;
                    Ok(0)
                } else {
                    self.image.read_exact_at(&mut self.buf, at).map_err(io)?;
                    let mut off = 0;
                    for s in data {
                        let chunk = &self.buf[off..off + s.len as usize];
                        mem.write_slice(chunk, GuestAddress(s.addr))
                            .map_err(|_| (S_IOERR, Refusal::OutsideMemory))?;
                        off += s.len as usize;
                    }
                    Ok(bytes as u32)
                }
            }
            FLUSH if data.is_empty() => {
                if !self.read_only {
                    self.image.sync_data().map_err(io)?;
                }
                Ok(0)
            }
            GET_ID if data.len() == 1 && data[0].write => {
                let mut id = [0u8; 20];
                id[..8].copy_from_slice(b"brig-blk");
                let n = id.len().min(data[0].len as usize);
                mem.write_slice(&id[..n], GuestAddress(data[0].addr))
                    .map_err(|_| (S_IOERR, Refusal::OutsideMemory))?;
                Ok(n as u32)
            }
            FLUSH | GET_ID => Err((S_IOERR, Refusal::BadRequest)),
            _ => Err((S_UNSUPP, Refusal::BadRequest)),
        }
    }
}

impl Backend for Blk {
    fn kind(&self) -> u32 {
        super::process::Kind::Blk.id()
    }

    fn features(&self) -> u64 {
        F_FLUSH | if self.read_only { F_RO } else { 0 }
    }

    fn config(&self, offset: u64, data: &mut [u8]) {
        // capacity (le64) at 0; everything else this device offers no feature for.
        let cap = self.sectors.to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            *b = cap.get(offset as usize + i).copied().unwrap_or(0);
        }
    }

    fn max_bytes(&self) -> u64 {
        16 + MAX_IO + 1
    }

    fn serve(&mut self, mem: &GuestMemoryMmap, segs: &[Seg]) -> (u32, Option<Refusal>) {
        let (Some(head), Some(status)) = (segs.first(), segs.last()) else {
            return (0, Some(Refusal::BadRequest));
        };
        if segs.len() < 2 || head.write || head.len != 16 || !status.write || status.len != 1 {
            return (0, Some(Refusal::BadRequest));
        }
        let mut header = [0u8; 16];
        if mem.read_slice(&mut header, GuestAddress(head.addr)).is_err() {
            return (0, Some(Refusal::OutsideMemory));
        }
        let kind = u32::from_le_bytes(header[0..4].try_into().unwrap());
        let sector = u64::from_le_bytes(header[8..16].try_into().unwrap());
        let (len, code, refusal) = match self.request(mem, kind, sector, &segs[1..segs.len() - 1]) {
            Ok(n) => (n, S_OK, None),
            Err((code, r)) => (0, code, Some(r)),
        };
        match mem.write_slice(&[code], GuestAddress(status.addr)) {
            Ok(()) => (len + 1, refusal),
            Err(_) => (len, Some(Refusal::OutsideMemory)),
        }
    }
}
