//! Hostile mode: a driver of our own that attacks each device through its registers and rings
//! (docs/vmm.md, "Hostile guests"). Every attack is followed by a well-formed request that must
//! succeed: the device is still alive. Each attack names the refusal the device should count;
//! the test compares them with brig-vmm's figures.

use core::ptr::{addr_of_mut, read_volatile, write_volatile};
use core::sync::atomic::{fence, Ordering};

use brig_vmm_abi::{Boot, MAX_DEVICES};

use crate::{println, Report};

const QSIZE: u16 = 16;
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
const F_INDIRECT: u16 = 4;
// Status bits.
const ACK: u32 = 1;
const DRIVER: u32 = 2;
const DRIVER_OK: u32 = 4;
const FEATURES_OK: u32 = 8;
const NEEDS_RESET: u32 = 0x40;
const VERSION_1: u64 = 1 << 32;
const INDIRECT: u64 = 1 << 28;

/// Per device: one page of rings (descriptors at 0, avail at 0x100, used at 0x200) and 16 KiB
/// of buffers.
#[repr(C, align(4096))]
struct Area([u8; 0x5000]);
static mut AREAS: [Area; MAX_DEVICES] = [const { Area([0; 0x5000]) }; MAX_DEVICES];

struct Raw {
    base: u64,
    blk: bool,
    ring: u64,
    buf: u64,
    avail: u16,
    used: u16,
    mem_size: u64,
}

fn r32(a: u64) -> u32 {
    // SAFETY: an identity-mapped address of a device window or of our own area (the callers').
    unsafe { read_volatile(a as *const u32) }
}
fn w32(a: u64, v: u32) {
    // SAFETY: as for `r32`.
    unsafe { write_volatile(a as *mut u32, v) }
}
fn w16(a: u64, v: u16) {
    // SAFETY: as for `r32`.
    unsafe { write_volatile(a as *mut u16, v) }
}
fn w64(a: u64, v: u64) {
    // SAFETY: as for `r32`.
    unsafe { write_volatile(a as *mut u64, v) }
}
fn r8(a: u64) -> u8 {
    // SAFETY: as for `r32`.
    unsafe { read_volatile(a as *const u8) }
}

impl Raw {
    fn reg(&self, off: u64) -> u32 {
        r32(self.base + off)
    }
    fn set(&self, off: u64, v: u32) {
        w32(self.base + off, v)
    }

    /// Reset, negotiate `features`, set the queue up, DRIVER_OK. False if the device refused.
    fn setup(&mut self, features: u64) -> bool {
        self.set(0x70, 0);
        for i in 0..0x300 {
            // SAFETY: our own ring page.
            unsafe { write_volatile((self.ring + i) as *mut u8, 0) };
        }
        (self.avail, self.used) = (0, 0);
        self.set(0x70, ACK | DRIVER);
        self.set(0x24, 0);
        self.set(0x20, features as u32);
        self.set(0x24, 1);
        self.set(0x20, (features >> 32) as u32);
        self.set(0x70, ACK | DRIVER | FEATURES_OK);
        if self.reg(0x70) & FEATURES_OK == 0 {
            return false;
        }
        self.set(0x30, 0);
        self.set(0x38, QSIZE as u32);
        for (off, addr) in [(0x80, self.ring), (0x90, self.ring + 0x100), (0xa0, self.ring + 0x200)]
        {
            self.set(off, addr as u32);
            self.set(off + 4, (addr >> 32) as u32);
        }
        self.set(0x44, 1);
        self.set(0x70, ACK | DRIVER | FEATURES_OK | DRIVER_OK);
        self.reg(0x44) == 1
    }

    fn desc(&self, i: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let d = self.ring + i as u64 * 16;
        w64(d, addr);
        w32(d + 8, len);
        w16(d + 12, flags);
        w16(d + 14, next);
    }

    /// An indirect table entry at `table`.
    fn idesc(&self, table: u64, i: u64, addr: u64, len: u32, flags: u16, next: u16) {
        let d = table + i * 16;
        w64(d, addr);
        w32(d + 8, len);
        w16(d + 12, flags);
        w16(d + 14, next);
    }

    /// Makes `head` available and notifies.
    fn post(&mut self, head: u16) {
        w16(self.ring + 0x104 + (self.avail % QSIZE) as u64 * 2, head);
        fence(Ordering::SeqCst);
        self.avail = self.avail.wrapping_add(1);
        w16(self.ring + 0x102, self.avail);
        fence(Ordering::SeqCst);
        self.set(0x50, 0);
    }

    /// Waits for the next used element: its length, or None if the device failed.
    fn wait(&mut self) -> Option<u32> {
        let mut polls = 0u64;
        loop {
            fence(Ordering::SeqCst);
            // SAFETY: the used ring's idx in our own ring page.
            let idx = unsafe { read_volatile((self.ring + 0x202) as *const u16) };
            if idx != self.used {
                let slot = self.ring + 0x204 + (self.used % QSIZE) as u64 * 8;
                self.used = self.used.wrapping_add(1);
                return Some(r32(slot + 4));
            }
            polls += 1;
            if polls & 0xffff == 0 && self.reg(0x70) & NEEDS_RESET != 0 {
                return None;
            }
            core::hint::spin_loop();
        }
    }

    /// A register read: the device has handled every notification before it answers.
    fn sync(&self) {
        let _ = self.reg(0x70);
    }

    fn b(&self, off: u64) -> u64 {
        self.buf + off
    }

    /// A blk header (type, sector) at buf+0 and a status byte at buf+0x800 (set to 0xff).
    fn header(&self, kind: u32, sector: u64) {
        w32(self.b(0), kind);
        w32(self.b(4), 0);
        w64(self.b(8), sector);
        // SAFETY: our own buffer.
        unsafe { write_volatile(self.b(0x800) as *mut u8, 0xff) };
    }

    /// A well-formed request; true when the device answered it properly.
    fn good(&mut self) -> bool {
        if self.blk {
            self.header(0, 0);
            self.desc(0, self.b(0), 16, F_NEXT, 1);
            self.desc(1, self.b(0x1000), 512, F_NEXT | F_WRITE, 2);
            self.desc(2, self.b(0x800), 1, F_WRITE, 0);
            self.post(0);
            self.wait() == Some(513) && r8(self.b(0x800)) == 0
        } else {
            self.desc(0, self.b(0x1000), 32, F_WRITE, 0);
            self.post(0);
            self.wait() == Some(32)
        }
    }

    /// A blk request around `data` descriptors 1..: header, the data, the status last.
    fn blk_request(&mut self, kind: u32, sector: u64, data: &[(u64, u32, u16)]) {
        self.header(kind, sector);
        self.desc(0, self.b(0), 16, F_NEXT, 1);
        for (i, (addr, len, flags)) in data.iter().enumerate() {
            self.desc(1 + i as u16, *addr, *len, *flags | F_NEXT, 2 + i as u16);
        }
        self.desc(1 + data.len() as u16, self.b(0x800), 1, F_WRITE, 0);
        self.post(0);
    }
}

/// One attack: its name, the refusal the device should count (None: none expected), and
/// whether a used element comes back (a refused chain is returned with length 0).
struct Attack {
    name: &'static str,
    expect: Option<&'static str>,
    run: fn(&mut Raw) -> bool,
}

/// Posts a one-descriptor chain and expects it back with nothing written.
fn refused_chain(d: &mut Raw, addr: u64, len: u32, flags: u16) -> bool {
    d.desc(0, addr, len, flags, 0);
    d.post(0);
    d.wait() == Some(0)
}

const CHAIN_ATTACKS: &[Attack] = &[
    Attack {
        name: "a loop of two descriptors",
        expect: Some("loop"),
        run: |d| {
            d.desc(0, d.b(0x1000), 16, F_NEXT | F_WRITE, 1);
            d.desc(1, d.b(0x1100), 16, F_NEXT | F_WRITE, 0);
            d.post(0);
            d.wait() == Some(0)
        },
    },
    Attack {
        name: "a next index past the table",
        expect: Some("bad-index"),
        run: |d| {
            d.desc(0, d.b(0x1000), 16, F_NEXT | F_WRITE, 99);
            d.post(0);
            d.wait() == Some(0)
        },
    },
    Attack {
        name: "a head index past the table",
        expect: Some("bad-index"),
        run: |d| {
            d.post(99);
            d.sync();
            true // no used element can name head 99: the device returns none
        },
    },
    Attack {
        name: "a buffer past the end of guest memory",
        expect: Some("outside-memory"),
        run: |d| {
            let past = d.mem_size + 0x1000;
            refused_chain(d, past, 16, F_WRITE)
        },
    },
    Attack {
        name: "a buffer whose end overflows",
        expect: Some("outside-memory"),
        run: |d| refused_chain(d, u64::MAX - 8, 16, F_WRITE),
    },
    Attack {
        name: "a buffer over the descriptor table",
        expect: Some("into-rings"),
        run: |d| {
            let ring = d.ring;
            refused_chain(d, ring, 64, F_WRITE)
        },
    },
    Attack {
        name: "a buffer over the used ring",
        expect: Some("into-rings"),
        run: |d| {
            let used = d.ring + 0x200;
            refused_chain(d, used, 8, F_WRITE)
        },
    },
    Attack {
        name: "two writable buffers that overlap",
        expect: Some("overlap"),
        run: |d| {
            d.desc(0, d.b(0x1000), 64, F_NEXT | F_WRITE, 1);
            d.desc(1, d.b(0x1020), 64, F_WRITE, 0);
            d.post(0);
            d.wait() == Some(0)
        },
    },
    Attack {
        name: "a 4 GiB length",
        expect: Some("too-long"),
        run: |d| {
            let b = d.b(0x1000);
            refused_chain(d, b, 0xffff_f000, F_WRITE)
        },
    },
    Attack {
        name: "a readable buffer after a writable one",
        expect: Some("direction"),
        run: |d| {
            d.desc(0, d.b(0x1000), 16, F_NEXT | F_WRITE, 1);
            d.desc(1, d.b(0x1100), 16, 0, 0);
            d.post(0);
            d.wait() == Some(0)
        },
    },
    Attack {
        name: "an indirect table inside an indirect table",
        expect: Some("indirect-nested"),
        run: |d| {
            let t = d.b(0x2000);
            d.idesc(t, 0, d.b(0x2800), 32, F_INDIRECT, 0);
            refused_chain(d, t, 32, F_INDIRECT)
        },
    },
    Attack {
        name: "an indirect table of 1000 entries",
        expect: Some("indirect-bad"),
        run: |d| {
            let t = d.b(0x2000);
            refused_chain(d, t, 16 * 1000, F_INDIRECT)
        },
    },
    Attack {
        name: "an indirect table of 24 bytes",
        expect: Some("indirect-bad"),
        run: |d| {
            let t = d.b(0x2000);
            refused_chain(d, t, 24, F_INDIRECT)
        },
    },
    Attack {
        name: "an indirect descriptor with NEXT",
        expect: Some("indirect-bad"),
        run: |d| {
            d.desc(1, d.b(0x1000), 16, F_WRITE, 0);
            let t = d.b(0x2000);
            d.idesc(t, 0, d.b(0x1000), 16, F_WRITE, 0);
            refused_chain(d, t, 16, F_INDIRECT | F_NEXT)
        },
    },
    Attack {
        name: "an indirect table pointing outside memory",
        expect: Some("outside-memory"),
        run: |d| {
            let t = d.b(0x2000);
            let past = d.mem_size + 0x10000;
            d.idesc(t, 0, past, 16, F_WRITE, 0);
            refused_chain(d, t, 16, F_INDIRECT)
        },
    },
    Attack {
        name: "the available index 100 ahead",
        expect: Some("bad-index"),
        run: |d| {
            let true_idx = d.avail;
            w16(d.ring + 0x102, true_idx.wrapping_add(100));
            d.set(0x50, 0);
            d.sync();
            w16(d.ring + 0x102, true_idx);
            true
        },
    },
    Attack {
        name: "the queue size changed while ready",
        expect: Some("queue-config"),
        run: |d| {
            d.set(0x38, 8);
            d.sync();
            true
        },
    },
    Attack {
        name: "the descriptor table moved while ready",
        expect: Some("queue-config"),
        run: |d| {
            d.set(0x80, d.b(0x3000) as u32);
            d.sync();
            true
        },
    },
    Attack {
        name: "features written after FEATURES_OK",
        expect: Some("features"),
        run: |d| {
            d.set(0x24, 0);
            d.set(0x20, 0);
            d.sync();
            true
        },
    },
    Attack {
        name: "a register that does not exist",
        expect: Some("register"),
        run: |d| {
            let _ = d.reg(0xb0);
            true
        },
    },
    Attack {
        name: "a byte-wide read of a register",
        expect: Some("register"),
        run: |d| {
            let _ = r8(d.base);
            true
        },
    },
    Attack {
        name: "100000 notifications with nothing new",
        expect: None,
        run: |d| {
            for _ in 0..100_000 {
                d.set(0x50, 0);
            }
            d.sync();
            true
        },
    },
];

const RNG_ATTACKS: &[Attack] = &[Attack {
    name: "a read-only buffer for entropy",
    expect: Some("direction"),
    run: |d| {
        let b = d.b(0x1000);
        refused_chain(d, b, 16, 0)
    },
}];

const BLK_ATTACKS: &[Attack] = &[
    Attack {
        name: "a read into a read-only buffer",
        expect: Some("direction"),
        run: |d| {
            d.blk_request(0, 0, &[(d.b(0x1000), 512, 0)]);
            d.wait() == Some(1) && r8(d.b(0x800)) == 1
        },
    },
    Attack {
        name: "a read past the end of the image",
        expect: Some("past-end"),
        run: |d| {
            d.blk_request(0, 1 << 40, &[(d.b(0x1000), 512, F_WRITE)]);
            d.wait() == Some(1) && r8(d.b(0x800)) == 1
        },
    },
    Attack {
        name: "a sector number that overflows",
        expect: Some("past-end"),
        run: |d| {
            d.blk_request(0, u64::MAX, &[(d.b(0x1000), 512, F_WRITE)]);
            d.wait() == Some(1) && r8(d.b(0x800)) == 1
        },
    },
    Attack {
        name: "a read of 100 bytes",
        expect: Some("bad-request"),
        run: |d| {
            d.blk_request(0, 0, &[(d.b(0x1000), 100, F_WRITE)]);
            d.wait() == Some(1) && r8(d.b(0x800)) == 1
        },
    },
    Attack {
        name: "a header of 8 bytes",
        expect: Some("bad-request"),
        run: |d| {
            d.header(0, 0);
            d.desc(0, d.b(0), 8, F_NEXT, 1);
            d.desc(1, d.b(0x800), 1, F_WRITE, 0);
            d.post(0);
            d.wait() == Some(0)
        },
    },
];

/// Attacks before the driver is set up: each leaves the device refusing, then a reset.
fn setup_attacks(d: &mut Raw, r: &mut Report, name: &str) {
    d.set(0x70, 0);
    d.set(0x70, ACK | DRIVER);
    d.set(0x24, 1);
    d.set(0x20, 1 << 1); // bit 33: ACCESS_PLATFORM, not offered
    d.set(0x70, ACK | DRIVER | FEATURES_OK);
    let refused = d.reg(0x70) & FEATURES_OK == 0;
    println!("hostile: {name}: a feature it did not offer -> features");
    r.check(format_args!("{name}: FEATURES_OK refused for an unoffered feature"), refused);
    d.set(0x70, 0);
    d.set(0x70, ACK | DRIVER | DRIVER_OK);
    println!("hostile: {name}: DRIVER_OK before FEATURES_OK -> status");
    r.check(
        format_args!("{name}: DRIVER_OK refused before FEATURES_OK"),
        d.reg(0x70) & DRIVER_OK == 0,
    );
    d.set(0x70, 0);
    d.set(0x50, 0);
    d.sync();
    println!("hostile: {name}: a notification before the queue is ready -> notify");
    // A queue set up wrongly: a misaligned table, then rings on top of each other.
    d.set(0x70, ACK | DRIVER);
    d.set(0x24, 1);
    d.set(0x20, 1); // VERSION_1
    d.set(0x70, ACK | DRIVER | FEATURES_OK);
    d.set(0x30, 0);
    d.set(0x38, QSIZE as u32);
    d.set(0x80, d.ring as u32 + 1);
    d.sync();
    println!("hostile: {name}: a misaligned descriptor table -> queue-config");
    for (off, addr) in [(0x80, d.ring), (0x90, d.ring), (0xa0, d.ring + 0x200)] {
        d.set(off, addr as u32);
        d.set(off + 4, (addr >> 32) as u32);
    }
    d.set(0x44, 1);
    println!("hostile: {name}: the available ring on the descriptor table -> queue-invalid");
    r.check(
        format_args!("{name}: a queue with overlapping rings stays not ready"),
        d.reg(0x44) == 0,
    );
    d.set(0x70, 0);
}

pub fn run(boot: &Boot, r: &mut Report) {
    let mut devs: [Option<Raw>; MAX_DEVICES] = [const { None }; MAX_DEVICES];
    let (mut nr, mut nb) = (0, 0);
    let mut names = [""; MAX_DEVICES];
    const RNG_NAMES: [&str; 4] = ["rng0", "rng1", "rng2", "rng3"];
    const BLK_NAMES: [&str; 4] = ["blk0", "blk1", "blk2", "blk3"];
    for (i, dev) in boot.devices[..boot.ndev].iter().enumerate() {
        let blk = dev.kind == 2;
        names[i] =
            if blk { BLK_NAMES.get(nb) } else { RNG_NAMES.get(nr) }.copied().unwrap_or("dev");
        if blk {
            nb += 1
        } else {
            nr += 1
        }
        // SAFETY: area i is used by this device's driver only.
        let area = unsafe { addr_of_mut!(AREAS[i]) } as u64;
        devs[i] = Some(Raw {
            base: dev.base,
            blk,
            ring: area,
            buf: area + 0x1000,
            avail: 0,
            used: 0,
            mem_size: boot.mem_size,
        });
    }
    let n = boot.ndev;
    // Every device is attacked during set-up, then set up properly, before any is attacked
    // through its queue: each attack round ends by checking all the others.
    let mut ready = [false; MAX_DEVICES];
    for i in 0..n {
        let name = names[i];
        let Some(d) = devs[i].as_mut() else { continue };
        setup_attacks(d, r, name);
        ready[i] = d.setup(VERSION_1 | INDIRECT);
        r.check(format_args!("{name}: set up after the set-up attacks"), ready[i]);
        r.check(format_args!("{name}: a good request before the attacks"), ready[i] && d.good());
    }
    for i in (0..n).filter(|i| ready[*i]) {
        let name = names[i];
        let Some(d) = devs[i].as_mut() else { continue };
        let own = if d.blk { BLK_ATTACKS } else { RNG_ATTACKS };
        let mut count = 0;
        for a in CHAIN_ATTACKS.iter().chain(own) {
            let answered = (a.run)(d);
            let alive = d.good();
            println!("hostile: {name}: {} -> {}", a.name, a.expect.unwrap_or("none"));
            r.check(
                format_args!("{name}: {}: refused and the device alive", a.name),
                answered && alive,
            );
            count += 1;
        }
        println!("hostile: {name}: {count} attacks, each followed by a good request");
        // The other devices were not touched by any of it.
        for j in (0..n).filter(|j| *j != i && ready[*j]) {
            if let Some(o) = devs[j].as_mut() {
                let alive = o.good();
                r.check(format_args!("{}: alive after {count} attacks on {name}", names[j]), alive);
            }
        }
    }
}
