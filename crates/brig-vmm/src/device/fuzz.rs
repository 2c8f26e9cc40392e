//! The device side fuzzed: random descriptor tables, available rings and blk requests, pushed
//! through the same register file, queue and walker a guest reaches (our own harness, on
//! anonymous guest memory). Whatever the input: no panic, one used element per valid head and
//! none for the others, every head counted as served or refused, the descriptor table and
//! available ring never written, the image never grown. `PROPTEST_CASES` sets the count per
//! device type (docs/vmm.md has the figures).

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

fn device(blk: bool) -> (Mmio, Arc<GuestMemoryMmap>, Option<std::fs::File>) {
    let mem = Arc::new(GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM as usize)]).unwrap());
    let (backend, image): (Box<dyn Backend>, _) = if blk {
        let f = std::fs::File::from(brig_sys::fdpass::memfd("fuzz image", 0).unwrap());
        f.set_len(64 << 10).unwrap();
        (Box::new(Blk::new(f.try_clone().unwrap(), false).unwrap()), Some(f))
    } else {
        (Box::new(Rng::default()), None)
    };
    let mut m = Mmio::new(backend, mem.clone());
    // A driver's set-up: features VERSION_1 | INDIRECT, one queue of QSIZE at DESC/AVAIL/USED.
    for (off, v) in [
        (0x70, 3),
        (0x24, 0),
        (0x20, 1 << 28),
        (0x24, 1),
        (0x20, 1),
        (0x70, 11),
        (0x30, 0),
        (0x38, QSIZE as u32),
        (0x80, DESC as u32),
        (0x90, AVAIL as u32),
        (0xa0, USED as u32),
        (0x44, 1),
        (0x70, 15),
    ] {
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
    fn rng_survives_any_queue(
        descs in prop::collection::vec(descriptor(), 0..=QSIZE as usize),
        heads in prop::collection::vec(prop_oneof![6 => 0u16..QSIZE, 1 => any::<u16>()], 0..=QSIZE as usize),
    ) {
        run(false, descs, heads, Vec::new());
    }
}
