//! Bench mode: sequential blk writes and reads and rng draws of `arg` MiB each, through
//! `virtio-drivers`, between marks whose host times brig-vmm prints (the guest has no clock of
//! its own here). Marks: 10/11 around the writes, 20/21 the reads, 30/31 the entropy.

use core::ptr::addr_of_mut;

use brig_vmm_abi::Boot;
use virtio_drivers::device::blk::{VirtIOBlk, SECTOR_SIZE};
use virtio_drivers::device::rng::VirtIORng;
use virtio_drivers::transport::{DeviceType, Transport};

use crate::check::transport;
use crate::hal::IdentityHal;
use crate::io::mark;
use crate::{println, Report};

/// One request's worth: 256 KiB.
const CHUNK: usize = 256 << 10;
/// The most one entropy request gets (brig-vmm's rng serves at most 64 KiB).
const DRAW: usize = 64 << 10;
static mut BUF: [u8; CHUNK] = [0; CHUNK];

pub fn run(boot: &Boot, r: &mut Report) {
    let bytes = boot.arg as usize * (1 << 20);
    // SAFETY: the only reference to BUF, for the whole run.
    let buf = unsafe { &mut *addr_of_mut!(BUF) };
    for d in &boot.devices[..boot.ndev] {
        let Some(t) = transport(d.base, d.size) else { continue };
        match t.device_type() {
            DeviceType::Block => {
                let Ok(mut blk) = VirtIOBlk::<IdentityHal, _>::new(t) else { continue };
                if blk.readonly() || (blk.capacity() as usize) * SECTOR_SIZE < bytes {
                    println!("bench: blk needs a writable image of {} MiB", boot.arg);
                    r.check(format_args!("bench: a big enough writable blk"), false);
                    continue;
                }
                buf.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
                let per = CHUNK / SECTOR_SIZE;
                mark(10);
                let wrote = (0..bytes / CHUNK).all(|k| blk.write_blocks(k * per, buf).is_ok());
                mark(11);
                mark(20);
                let read = (0..bytes / CHUNK).all(|k| blk.read_blocks(k * per, buf).is_ok());
                mark(21);
                r.check(format_args!("bench: blk wrote and read {} MiB", boot.arg), wrote && read);
            }
            DeviceType::EntropySource => {
                let Ok(mut rng) = VirtIORng::<IdentityHal, _>::new(t) else { continue };
                mark(30);
                let drew =
                    (0..bytes / DRAW).all(|_| rng.request_entropy(&mut buf[..DRAW]) == Ok(DRAW));
                mark(31);
                r.check(format_args!("bench: rng drew {} MiB", boot.arg), drew);
            }
            _ => {}
        }
    }
}
