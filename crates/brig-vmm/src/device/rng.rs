//! virtio-rng: every buffer of a request is filled from the kernel's `getrandom`.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::chain::{Refusal, Seg};
use super::Backend;

/// The most bytes one request gets.
pub const MAX_REQUEST: u64 = 64 << 10;

#[derive(Debug, Default)]
pub struct Rng {
    buf: Vec<u8>,
}

impl Backend for Rng {
    fn kind(&self) -> u32 {
        super::process::Kind::Rng.id()
    }

    fn features(&self) -> u64 {
        0
    }

    fn config(&self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn max_bytes(&self) -> u64 {
        MAX_REQUEST
    }

    fn serve(&mut self, mem: &GuestMemoryMmap, segs: &[Seg]) -> (u32, Option<Refusal>) {
        if segs.is_empty() || segs.iter().any(|s| !s.write) {
            return (0, Some(Refusal::Direction));
        }
        let mut done = 0u32;
        for s in segs {
            self.buf.resize(s.len as usize, 0);
            if brig_sys::getrandom(&mut self.buf).is_err() {
                return (done, Some(Refusal::BadRequest));
            }
            if mem.write_slice(&self.buf, GuestAddress(s.addr)).is_err() {
                return (done, Some(Refusal::OutsideMemory));
            }
            done += s.len;
        }
        (done, None)
    }
}
