//! The device side fuzzed: random descriptor tables, available rings and blk requests, pushed
//! through the same register file, queue and walker a guest reaches (our own harness, on
//! anonymous guest memory). Whatever the input: no panic, one used element per valid head and
//! none for the others, every head counted as served or refused, the descriptor table and
//! available ring never written, the image never grown. `PROPTEST_CASES` sets the count per
//! device type (docs/vmm.md has the figures). A third test drives the register file itself with
//! random access sequences (set-up, resets, ring moves, notifications at random points).

use std::sync::Arc;

use proptest::prelude::*;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::{blk::Blk, rng::Rng, Backend, Mmio};

const MEM: u64 = 1 << 20;
const DESC: u64 = 0x1000;
const AVAIL: u64 = 0x2000;
const USED: u64 = 0x3000;
const BUFS: u64 = 0x10000;
const QSIZE: u16 = 16;

/// A descriptor address: mostly where buffers live, sometimes anywhere that hurts.
fn addr() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => (BUFS..MEM - 0x100).prop_map(|a| a & !0xf),
        1 => Just(DESC),
        1 => Just(USED),
        1 => Just(AVAIL),
        1 => MEM - 64..MEM + 64,
        1 => any::<u64>(),
    ]
}

fn len() -> impl Strategy<Value = u32> {
    prop_oneof![6 => 0u32..2048, 1 => Just(16u32), 1 => Just(1u32), 1 => any::<u32>()]
}

/// (addr, len, flags, next)
fn descriptor() -> impl Strategy<Value = (u64, u32, u16, u16)> {
    (
        addr(),
        len(),
        prop_oneof![4 => 0u16..8, 1 => any::<u16>()],
        prop_oneof![4 => 0u16..QSIZE, 1 => any::<u16>()],
    )
}

/// A blk header somewhere in the buffers: (where, type, sector).
fn header() -> impl Strategy<Value = (u64, u32, u64)> {
    (
        (BUFS..MEM - 16).prop_map(|a| a & !0xf),
        prop_oneof![Just(0u32), Just(1), Just(4), Just(8), any::<u32>()],
        prop_oneof![0u64..200, Just(u64::MAX), any::<u64>()],
    )
}

type Device = (Mmio, Arc<GuestMemoryMmap>, Option<std::fs::File>);

/// A device as the guest first finds it.
fn fresh(blk: bool) -> Device {
    let mem = Arc::new(GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM as usize)]).unwrap());
    let (backend, image): (Box<dyn Backend>, _) = if blk {
        let f = std::fs::File::from(brig_sys::fdpass::memfd("fuzz image", 0).unwrap());
        f.set_len(64 << 10).unwrap();
        (Box::new(Blk::new(f.try_clone().unwrap(), false).unwrap()), Some(f))
    } else {
        (Box::new(Rng::default()), None)
    };
    (Mmio::new(backend, mem.clone()), mem, image)
}

/// A driver's set-up, register by register: features VERSION_1 | INDIRECT, queue 0 of `size`
/// with its rings at `rings`, DRIVER_OK.
fn set_up(size: u32, rings: [u64; 3]) -> Vec<(u64, u32)> {
    vec![
        (0x70, 3),
        (0x24, 0),
        (0x20, 1 << 28),
        (0x24, 1),
        (0x20, 1),
        (0x70, 11),
        (0x30, 0),
        (0x38, size),
        (0x80, rings[0] as u32),
        (0x90, rings[1] as u32),
        (0xa0, rings[2] as u32),
        (0x44, 1),
        (0x70, 15),
    ]
}

/// A device a driver has set up: features VERSION_1 | INDIRECT, one queue of QSIZE at
/// DESC/AVAIL/USED, DRIVER_OK.
fn device(blk: bool) -> Device {
    let (mut m, mem, image) = fresh(blk);
    for (off, v) in set_up(QSIZE as u32, [DESC, AVAIL, USED]) {
        m.write(off, &u32::to_le_bytes(v));
    }
    assert_eq!(m.stats.refusals(), 0, "the harness's own set-up was refused");
    (m, mem, image)
}

fn run(
    blk: bool,
    descs: Vec<(u64, u32, u16, u16)>,
    heads: Vec<u16>,
    headers: Vec<(u64, u32, u64)>,
) {
    let (mut m, mem, image) = device(blk);
    for (at, kind, sector) in headers {
        mem.write_obj(kind, GuestAddress(at)).unwrap();
        mem.write_obj(sector, GuestAddress(at + 8)).unwrap();
    }
    for (i, (a, l, f, n)) in descs.iter().enumerate() {
        let d = DESC + i as u64 * 16;
        mem.write_obj(*a, GuestAddress(d)).unwrap();
        mem.write_obj(*l, GuestAddress(d + 8)).unwrap();
        mem.write_obj(*f, GuestAddress(d + 12)).unwrap();
        mem.write_obj(*n, GuestAddress(d + 14)).unwrap();
    }
    for (i, h) in heads.iter().enumerate() {
        mem.write_obj(*h, GuestAddress(AVAIL + 4 + i as u64 * 2)).unwrap();
    }
    mem.write_obj(heads.len() as u16, GuestAddress(AVAIL + 2)).unwrap();
    let mut rings = vec![0u8; (USED - DESC) as usize];
    mem.read_slice(&mut rings, GuestAddress(DESC)).unwrap();

    m.notified();

    let valid = heads.iter().filter(|h| **h < QSIZE).count() as u64;
    let used: u16 = mem.read_obj(GuestAddress(USED + 2)).unwrap();
    assert_eq!(used as u64, valid, "one used element per valid head");
    assert_eq!(m.stats.served + m.stats.refusals(), heads.len() as u64, "every head counted");
    for i in 0..used as u64 {
        let id: u32 = mem.read_obj(GuestAddress(USED + 4 + i * 8)).unwrap();
        assert!(id < QSIZE as u32, "a used element names head {id}");
    }
    let mut after = vec![0u8; rings.len()];
    mem.read_slice(&mut after, GuestAddress(DESC)).unwrap();
    assert!(after == rings, "the device wrote into its descriptor table or available ring");
    if let Some(f) = image {
        assert_eq!(f.metadata().unwrap().len(), 64 << 10, "the image changed size");
    }
}

/// A ring's place: 16-byte aligned, among the random words.
fn ring() -> impl Strategy<Value = u64> {
    (0x100u64..0x900).prop_map(|x| x << 4)
}

/// One register access: (offset, width, value, write). Mostly the registers that exist, with
/// values that mean something to them (sizes, small status and feature words, ring addresses
/// in memory), so that random sequences reach ready queues.
fn access() -> impl Strategy<Value = (u64, usize, u64, bool)> {
    let regs = prop::sample::select(vec![
        0x00u64, 0x10, 0x14, 0x20, 0x24, 0x30, 0x34, 0x38, 0x44, 0x50, 0x60, 0x64, 0x70, 0x80,
        0x84, 0x90, 0x94, 0xa0, 0xa4, 0xfc, 0x100, 0x108,
    ]);
    let offset = prop_oneof![8 => regs, 1 => 0u64..0x200];
    let width =
        prop_oneof![8 => Just(4usize), 1 => Just(1usize), 1 => Just(2usize), 1 => Just(8usize)];
    let value = prop_oneof![
        4 => 0u64..32,
        2 => (1u64..8).prop_map(|k| k << 12),
        1 => Just(1u64 << 28),
        1 => any::<u64>(),
    ];
    (offset, width, value, any::<bool>())
}

/// How far a driver's set-up gets: its first `k` steps, with this queue size and rings.
type Prefix = (usize, u32, [u64; 3]);

/// The first `k` steps of a driver's set-up (random queue size and ring places), then random
/// register sequences, with notifications between them, over guest memory sprinkled with random
/// words (so a queue that becomes ready finds random rings).
fn sequence(
    blk: bool,
    prefix: Prefix,
    ops: Vec<(u64, usize, u64, bool)>,
    every: usize,
    noise: Vec<(u64, u64)>,
) {
    let (mut m, mem, image) = fresh(blk);
    for (at, v) in noise {
        mem.write_obj(v, GuestAddress(at & !7)).unwrap();
    }
    let (k, size, rings) = prefix;
    for (off, v) in set_up(size, rings).into_iter().take(k) {
        m.write(off, &u32::to_le_bytes(v));
    }
    let mut buf = [0u8; 8];
    for (i, (off, w, v, write)) in ops.into_iter().enumerate() {
        if write {
            m.write(off, &v.to_le_bytes()[..w]);
        } else {
            m.read(off, &mut buf[..w]);
        }
        if i % every == 0 {
            m.notified();
        }
    }
    m.notified();
    if let Some(f) = image {
        assert_eq!(f.metadata().unwrap().len(), 64 << 10, "the image changed size");
    }
}

/// 4096 inputs per device type in the test suite, unless `PROPTEST_CASES` says otherwise.
fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 4096;
    }
    c
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn blk_survives_any_queue(
        descs in prop::collection::vec(descriptor(), 0..=QSIZE as usize),
        heads in prop::collection::vec(prop_oneof![6 => 0u16..QSIZE, 1 => any::<u16>()], 0..=QSIZE as usize),
        headers in prop::collection::vec(header(), 0..4),
    ) {
        run(true, descs, heads, headers);
    }

    #[test]
    fn registers_survive_any_sequence(
        blk in any::<bool>(),
        prefix in (prop_oneof![3 => Just(13usize), 1 => 0usize..13], prop_oneof![4 => Just(16u32), 1 => 0u32..300], [ring(), ring(), ring()]),
        ops in prop::collection::vec(access(), 0..64),
        every in 1usize..8,
        noise in prop::collection::vec((0u64..0x9000, any::<u64>()), 0..64),
    ) {
        sequence(blk, prefix, ops, every, noise);
    }

    #[test]
    fn rng_survives_any_queue(
        descs in prop::collection::vec(descriptor(), 0..=QSIZE as usize),
        heads in prop::collection::vec(prop_oneof![6 => 0u16..QSIZE, 1 => any::<u16>()], 0..=QSIZE as usize),
    ) {
        run(false, descs, heads, Vec::new());
    }
}
