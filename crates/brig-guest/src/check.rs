//! The checklist, as a well-behaved driver: every device through `virtio-drivers`.

use core::ptr::NonNull;

use brig_vmm_abi::{pattern_byte, Boot, PATTERN_SECTORS};
use virtio_drivers::device::blk::{VirtIOBlk, SECTOR_SIZE};
use virtio_drivers::device::rng::VirtIORng;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};

use crate::hal::IdentityHal;
use crate::{println, Report};

const ENTROPY: usize = 64;
const BYTES: usize = PATTERN_SECTORS as usize * SECTOR_SIZE;

/// The transport of the device at `base`.
pub fn transport(base: u64, size: u64) -> Option<MmioTransport<'static>> {
    let header = NonNull::new(base as *mut VirtIOHeader)?;
    // SAFETY: the VMM's table says a virtio-mmio region of `size` bytes is at `base`, mapped
    // (identity) for the guest's whole life, and nothing else in the guest touches it.
    match unsafe { MmioTransport::new(header, size as usize) } {
        Ok(t) => Some(t),
        Err(e) => {
            println!("device at {base:#x}: {e}");
            None
        }
    }
}

/// Devices are named as brig-vmm names them: by kind, counted from 0 (`rng0`, `blk1`).
pub fn run(boot: &Boot, r: &mut Report) {
    let (mut rngs, mut blks) = (0, 0);
    for (i, d) in boot.devices[..boot.ndev].iter().enumerate() {
        let Some(t) = transport(d.base, d.size) else {
            r.check(format_args!("device {i}: transport"), false);
            continue;
        };
        match t.device_type() {
            DeviceType::EntropySource => {
                rng(rngs, t, r);
                rngs += 1;
            }
            DeviceType::Block => {
                blk(blks, t, r);
                blks += 1;
            }
            other => println!("device {i}: {other:?}, not checked"),
        }
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ *b as u64).wrapping_mul(0x100_0000_01b3))
}

fn rng(i: usize, t: MmioTransport<'static>, r: &mut Report) {
    let mut rng = match VirtIORng::<IdentityHal, _>::new(t) {
        Ok(d) => d,
        Err(e) => return r.check(format_args!("rng{i}: init: {e}"), false),
    };
    let (mut a, mut b) = ([0u8; ENTROPY], [0u8; ENTROPY]);
    let got = (rng.request_entropy(&mut a), rng.request_entropy(&mut b));
    let full = matches!(got, (Ok(ENTROPY), Ok(ENTROPY)));
    r.check(format_args!("rng{i}: {ENTROPY} bytes twice: {got:?}"), full);
    r.check(format_args!("rng{i}: not all equal"), a.iter().any(|x| *x != a[0]));
    r.check(format_args!("rng{i}: the two draws differ"), a != b);
    println!("rng{i}: entropy {:016x}", fnv(&a));
}

fn blk(i: usize, t: MmioTransport<'static>, r: &mut Report) {
    let mut blk = match VirtIOBlk::<IdentityHal, _>::new(t) {
        Ok(d) => d,
        Err(e) => return r.check(format_args!("blk{i}: init: {e}"), false),
    };
    let sectors = blk.capacity();
    println!(
        "blk{i}: {sectors} sectors, {}",
        if blk.readonly() { "read-only" } else { "read-write" }
    );
    if sectors < PATTERN_SECTORS {
        return r.check(format_args!("blk{i}: at least {PATTERN_SECTORS} sectors"), false);
    }
    let mut pattern = [0u8; BYTES];
    for (n, b) in pattern.iter_mut().enumerate() {
        *b = pattern_byte((n / SECTOR_SIZE) as u64, n % SECTOR_SIZE);
    }
    let mut back = [0u8; BYTES];
    let mut before = [0u8; BYTES];
    r.check(format_args!("blk{i}: read"), blk.read_blocks(0, &mut before).is_ok());
    if blk.readonly() {
        let wrote = blk.write_blocks(0, &pattern);
        r.check(format_args!("blk{i}: a write is refused: {wrote:?}"), wrote.is_err());
        let read = blk.read_blocks(0, &mut back);
        r.check(
            format_args!("blk{i}: unchanged after the refused write"),
            read.is_ok() && back == before,
        );
    } else {
        let wrote = blk.write_blocks(0, &pattern);
        r.check(format_args!("blk{i}: write the pattern: {wrote:?}"), wrote.is_ok());
        let read = blk.read_blocks(0, &mut back);
        r.check(format_args!("blk{i}: read it back: {read:?}"), read.is_ok() && back == pattern);
        let flushed = blk.flush();
        r.check(format_args!("blk{i}: flush: {flushed:?}"), flushed.is_ok());
        println!("blk{i}: checksum {:016x}", fnv(&back));
    }
    let mut one = [0u8; SECTOR_SIZE];
    let past = blk.read_blocks(sectors as usize, &mut one);
    r.check(format_args!("blk{i}: a read past the end is refused: {past:?}"), past.is_err());
}
