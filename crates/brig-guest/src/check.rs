//! The checklist, as a well-behaved driver: every device through `virtio-drivers`.

use core::ptr::NonNull;

use brig_vmm_abi::{pattern_byte, Boot, MAX_DEVICES, PATTERN_SECTORS};
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk, SECTOR_SIZE};
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

type Blk = VirtIOBlk<IdentityHal, MmioTransport<'static>>;
type Rng = VirtIORng<IdentityHal, MmioTransport<'static>>;

/// Devices are named as brig-vmm names them: by kind, counted from 0 (`rng0`, `blk1`). After
/// the checklist, `boot.arg` soak rounds exercise every device (see [`soak`]).
pub fn run(boot: &Boot, r: &mut Report) {
    let mut rngs: [Option<(u64, Rng)>; MAX_DEVICES] = [const { None }; MAX_DEVICES];
    let mut blks: [Option<(u64, Blk)>; MAX_DEVICES] = [const { None }; MAX_DEVICES];
    let (mut nr, mut nb) = (0, 0);
    for (i, d) in boot.devices[..boot.ndev].iter().enumerate() {
        let Some(t) = transport(d.base, d.size) else {
            r.check(format_args!("device {i}: transport"), false);
            continue;
        };
        match t.device_type() {
            DeviceType::EntropySource => {
                match VirtIORng::<IdentityHal, _>::new(t) {
                    Ok(mut dev) => {
                        rng(nr, &mut dev, r);
                        rngs[nr] = Some((d.base, dev));
                    }
                    Err(e) => r.check(format_args!("rng{nr}: init: {e}"), false),
                }
                nr += 1;
            }
            DeviceType::Block => {
                match VirtIOBlk::<IdentityHal, _>::new(t) {
                    Ok(mut dev) => {
                        blk(nb, &mut dev, r);
                        blks[nb] = Some((d.base, dev));
                    }
                    Err(e) => r.check(format_args!("blk{nb}: init: {e}"), false),
                }
                nb += 1;
            }
            other => println!("device {i}: {other:?}, not checked"),
        }
    }
    if boot.arg > 0 {
        soak(boot.arg, &mut rngs[..nr], &mut blks[..nb]);
    }
}

/// A device whose Status register says DEVICE_NEEDS_RESET (brig-vmm's answer for a device
/// whose process has failed).
fn failed(base: u64) -> bool {
    // SAFETY: `base + 0x70` is the Status register of a device window the table gave; a plain
    // 32-bit load (an MMIO exit).
    let status = unsafe { core::ptr::read_volatile((base + 0x70) as *const u32) };
    status & 0x40 != 0
}

/// One sector read that gives up when the device fails: the request is polled, and every 2^16
/// polls the device's status is read.
fn read_watched(
    base: u64,
    dev: &mut Blk,
    sector: usize,
    buf: &mut [u8],
) -> Result<(), &'static str> {
    let (mut req, mut resp) = (BlkReq::default(), BlkResp::default());
    // SAFETY: `req`, `buf` and `resp` outlive the request: it is completed (or the device
    // given up on, never to be touched again) before this returns.
    let token =
        unsafe { dev.read_blocks_nb(sector, &mut req, buf, &mut resp) }.map_err(|_| "submit")?;
    let mut polls = 0u64;
    while dev.peek_used() != Some(token) {
        polls += 1;
        if polls & 0xffff == 0 && failed(base) {
            return Err("DEVICE_NEEDS_RESET");
        }
        core::hint::spin_loop();
    }
    // SAFETY: the same buffers as the submission, and the token the device used.
    unsafe { dev.complete_read_blocks(token, &req, buf, &mut resp) }.map_err(|_| "I/O error")
}

/// `rounds` rounds of one entropy request per rng and one 4 KiB read per blk. A blk that fails
/// (its process killed, say) is reported and left; the others go on.
fn soak(rounds: u32, rngs: &mut [Option<(u64, Rng)>], blks: &mut [Option<(u64, Blk)>]) {
    println!("soak: {rounds} rounds");
    let mut buf = [0u8; 4096];
    let mut alive = [true; MAX_DEVICES];
    for round in 0..rounds {
        for (i, (_, dev)) in rngs.iter_mut().enumerate().filter_map(|(i, d)| Some((i, d.as_mut()?)))
        {
            if dev.request_entropy(&mut buf[..64]).is_err() {
                println!("soak: rng{i} failed at round {round}");
            }
        }
        for (i, slot) in blks.iter_mut().enumerate() {
            let Some((base, dev)) = slot.as_mut().filter(|_| alive[i]) else { continue };
            if let Err(why) = read_watched(*base, dev, 0, &mut buf) {
                println!("soak: blk{i} failed at round {round}: {why}; going on without it");
                alive[i] = false;
            }
        }
    }
    let live = blks.iter().enumerate().filter(|(i, b)| b.is_some() && alive[*i]).count();
    println!("soak: done, {} rng and {live} blk devices answered to the end", rngs.len());
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ *b as u64).wrapping_mul(0x100_0000_01b3))
}

fn rng(i: usize, rng: &mut Rng, r: &mut Report) {
    let (mut a, mut b) = ([0u8; ENTROPY], [0u8; ENTROPY]);
    let got = (rng.request_entropy(&mut a), rng.request_entropy(&mut b));
    let full = matches!(got, (Ok(ENTROPY), Ok(ENTROPY)));
    r.check(format_args!("rng{i}: {ENTROPY} bytes twice: {got:?}"), full);
    r.check(format_args!("rng{i}: not all equal"), a.iter().any(|x| *x != a[0]));
    r.check(format_args!("rng{i}: the two draws differ"), a != b);
    println!("rng{i}: entropy {:016x}", fnv(&a));
}

fn blk(i: usize, blk: &mut Blk, r: &mut Report) {
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
