//! The virtio devices, on the device side of the guest boundary: the virtio-mmio register file
//! ([`Mmio`]) and the device types behind it ([`Backend`]: [`blk`], [`rng`]). The same code runs
//! in a device's own prison (`process`) or on a thread of the VMM (`--devices in-process`).
//! Everything the guest wrote is hostile: registers, rings and requests are checked, and each
//! refusal is counted by kind ([`Stats`]).

pub mod blk;
pub mod chain;
pub mod compromised;
#[cfg(test)]
mod fuzz;
pub mod process;
pub mod rng;

use std::sync::Arc;

use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use chain::{Refusal, Seg};

/// VIRTIO_F_RING_INDIRECT_DESC and VIRTIO_F_VERSION_1, offered by every device.
const FEATURE_INDIRECT: u64 = 1 << 28;
const VERSION_1: u64 = 1 << 32;
const COMMON_FEATURES: u64 = VERSION_1 | FEATURE_INDIRECT;
/// The most chains one call of [`Mmio::notified`] serves before it lets register accesses in.
const BATCH: usize = 64;
/// The one queue each device has, and its largest size.
pub const QUEUE_MAX: u16 = 256;

const MAGIC: u32 = 0x7472_6976; // "virt"
const VENDOR: u32 = u32::from_le_bytes(*b"BRIG");
const ACKNOWLEDGE: u32 = 1;
const DRIVER: u32 = 2;
const DRIVER_OK: u32 = 4;
const FEATURES_OK: u32 = 8;
/// The device has failed: what the VMM shows for a device whose process died.
pub const NEEDS_RESET: u32 = 0x40;
const FAILED: u32 = 0x80;
/// The QueueNotify register (the VMM's ioeventfd sits on it).
pub const NOTIFY_OFFSET: u64 = 0x50;
/// The Status register.
pub const STATUS_OFFSET: u64 = 0x70;
const CONFIG_OFFSET: u64 = 0x100;

/// What a device does with the requests its queue carries.
pub trait Backend: Send {
    /// The virtio device id (2 block, 4 entropy).
    fn kind(&self) -> u32;
    /// Device-specific feature bits.
    fn features(&self) -> u64;
    /// Byte `offset` on of the config space into `data` (zeros past its end).
    fn config(&self, offset: u64, data: &mut [u8]);
    /// The most bytes one request's buffers may hold.
    fn max_bytes(&self) -> u64;
    /// Serves one checked chain: how many bytes it wrote into the chain, and the refusal if the
    /// request broke a rule.
    fn serve(&mut self, mem: &GuestMemoryMmap, segs: &[Seg]) -> (u32, Option<Refusal>);
}

/// What a device did: requests served, notifications, and refusals by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub served: u64,
    pub notifies: u64,
    pub refused: [u64; Refusal::ALL.len()],
}

impl Stats {
    pub fn refuse(&mut self, r: Refusal) {
        self.refused[r.index()] += 1;
    }

    pub fn refusals(&self) -> u64 {
        self.refused.iter().sum()
    }

    /// `served 3, notifies 4, refused 2 (loop 1, overlap 1)`.
    pub fn describe(&self) -> String {
        let kinds: Vec<String> = Refusal::ALL
            .iter()
            .filter(|r| self.refused[r.index()] > 0)
            .map(|r| format!("{} {}", r.name(), self.refused[r.index()]))
            .collect();
        let mut s = format!(
            "served {}, notifies {}, refused {}",
            self.served,
            self.notifies,
            self.refusals()
        );
        if !kinds.is_empty() {
            s += &format!(" ({})", kinds.join(", "));
        }
        s
    }
}

/// A virtio-mmio (version 2) device: its registers, its queue, its backend.
pub struct Mmio {
    backend: Box<dyn Backend>,
    mem: Arc<GuestMemoryMmap>,
    queue: Queue,
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    interrupt_status: u32,
    pub stats: Stats,
}

impl std::fmt::Debug for Mmio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mmio")
            .field("kind", &self.backend.kind())
            .field("stats", &self.stats)
            .finish()
    }
}

fn u32_of(data: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(data.try_into().ok()?))
}

impl Mmio {
    pub fn new(backend: Box<dyn Backend>, mem: Arc<GuestMemoryMmap>) -> Mmio {
        Mmio {
            backend,
            mem,
            queue: Queue::new(QUEUE_MAX).expect("QUEUE_MAX is a power of two"),
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            interrupt_status: 0,
            stats: Stats::default(),
        }
    }

    fn offered(&self) -> u64 {
        self.backend.features() | COMMON_FEATURES
    }

    fn reset(&mut self) {
        self.queue.reset();
        self.status = 0;
        self.driver_features = 0;
        self.interrupt_status = 0;
        (self.queue_sel, self.device_features_sel, self.driver_features_sel) = (0, 0, 0);
    }

    /// A guest read of `data.len()` bytes at `offset`.
    pub fn read(&mut self, offset: u64, data: &mut [u8]) {
        if offset >= CONFIG_OFFSET {
            return self.backend.config(offset - CONFIG_OFFSET, data);
        }
        data.fill(0);
        if data.len() != 4 {
            return self.stats.refuse(Refusal::Register);
        }
        let half = |v: u64, sel: u32| match sel {
            0 => v as u32,
            1 => (v >> 32) as u32,
            _ => 0,
        };
        let q = self.queue_sel == 0;
        let v = match offset {
            0x00 => MAGIC,
            0x04 => 2,
            0x08 => self.backend.kind(),
            0x0c => VENDOR,
            0x10 => half(self.offered(), self.device_features_sel),
            0x34 if q => QUEUE_MAX as u32,
            0x44 if q => self.queue.ready() as u32,
            0x60 => self.interrupt_status,
            0x70 => self.status,
            0xfc => 0,
            0x34 | 0x44 => 0, // another queue: none
            _ => {
                self.stats.refuse(Refusal::Register);
                0
            }
        };
        data.copy_from_slice(&v.to_le_bytes());
    }

    /// A guest write of `data` at `offset`.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let Some(v) = u32_of(data).filter(|_| offset < CONFIG_OFFSET) else {
            return self.stats.refuse(Refusal::Register); // the config space is read-only
        };
        let q = self.queue_sel == 0;
        let ready = self.queue.ready();
        let r = match offset {
            0x14 => {
                self.device_features_sel = v;
                Ok(())
            }
            0x20 => self.driver_features(v),
            0x24 => {
                self.driver_features_sel = v;
                Ok(())
            }
            0x30 => {
                self.queue_sel = v;
                Ok(())
            }
            0x38 if q && !ready && v == 0 => Ok(()), // a driver letting the queue go
            0x38 if q && !ready => match u16::try_from(v) {
                Ok(n) => self.queue.try_set_size(n).map_err(|_| Refusal::QueueConfig),
                Err(_) => Err(Refusal::QueueConfig),
            },
            0x44 if q => self.queue_ready(v),
            NOTIFY_OFFSET => {
                self.notified();
                Ok(())
            }
            0x64 => {
                self.interrupt_status &= !v;
                Ok(())
            }
            0x70 => self.set_status(v),
            0x80 | 0x84 | 0x90 | 0x94 | 0xa0 | 0xa4 if q && !ready => self.ring_address(offset, v),
            0x38 | 0x80 | 0x84 | 0x90 | 0x94 | 0xa0 | 0xa4 => Err(Refusal::QueueConfig),
            _ => Err(Refusal::Register),
        };
        if let Err(r) = r {
            self.stats.refuse(r);
        }
    }

    /// Half of a ring's address; refused (the ring stays where it was) if the whole address is
    /// misaligned for its ring.
    fn ring_address(&mut self, offset: u64, v: u32) -> Result<(), Refusal> {
        let q = &mut self.queue;
        let old = match offset & !4 {
            0x80 => q.desc_table(),
            0x90 => q.avail_ring(),
            _ => q.used_ring(),
        };
        let new = if offset & 4 == 0 {
            (old & !0xffff_ffff) | v as u64
        } else {
            (old & 0xffff_ffff) | (v as u64) << 32
        };
        let set = match offset & !4 {
            0x80 => q.try_set_desc_table_address(GuestAddress(new)),
            0x90 => q.try_set_avail_ring_address(GuestAddress(new)),
            _ => q.try_set_used_ring_address(GuestAddress(new)),
        };
        set.map_err(|_| Refusal::QueueConfig)
    }

    fn driver_features(&mut self, v: u32) -> Result<(), Refusal> {
        if self.status & DRIVER == 0 || self.status & FEATURES_OK != 0 {
            return Err(Refusal::Features);
        }
        match self.driver_features_sel {
            0 => self.driver_features = (self.driver_features & !0xffff_ffff) | v as u64,
            1 => self.driver_features = (self.driver_features & 0xffff_ffff) | (v as u64) << 32,
            _ if v == 0 => {}
            _ => return Err(Refusal::Features),
        }
        Ok(())
    }

    fn set_status(&mut self, v: u32) -> Result<(), Refusal> {
        if v == 0 {
            self.reset();
            return Ok(());
        }
        let known = ACKNOWLEDGE | DRIVER | DRIVER_OK | FEATURES_OK | FAILED;
        if v & self.status != self.status || v & !known != 0 {
            return Err(Refusal::Status);
        }
        if v & FEATURES_OK != 0 && self.status & FEATURES_OK == 0 {
            let f = self.driver_features;
            if f & !self.offered() != 0 || f & VERSION_1 == 0 {
                // The driver reads FEATURES_OK back and sees no; DRIVER_OK cannot stand without it.
                self.status = v & !(FEATURES_OK | DRIVER_OK);
                return Err(Refusal::Features);
            }
        }
        if v & DRIVER_OK != 0 && v & FEATURES_OK == 0 {
            return Err(Refusal::Status);
        }
        self.status = v;
        Ok(())
    }

    fn queue_ready(&mut self, v: u32) -> Result<(), Refusal> {
        if v == 0 {
            self.queue.set_ready(false);
            return Ok(());
        }
        if self.status & FEATURES_OK == 0 {
            return Err(Refusal::Status);
        }
        // Rings at 0 (never set) or overlapping each other are refused, as are rings that do
        // not fit in guest memory (virtio-queue checks only a ready queue).
        let r = self.rings();
        let apart = |(a, b): (u64, u64), (c, d): (u64, u64)| b <= c || d <= a;
        if r.iter().any(|(start, _)| *start == 0)
            || !apart(r[0], r[1])
            || !apart(r[0], r[2])
            || !apart(r[1], r[2])
        {
            return Err(Refusal::QueueInvalid);
        }
        self.queue.set_ready(true);
        if !self.queue.is_valid(&*self.mem) {
            self.queue.set_ready(false);
            return Err(Refusal::QueueInvalid);
        }
        Ok(())
    }

    /// The device's rings and table, which no buffer may touch (saturating: before the queue
    /// is ready they are the guest's unchecked values).
    fn rings(&self) -> [(u64, u64); 3] {
        let (q, n) = (&self.queue, self.queue.size() as u64);
        let span = |at: u64, len: u64| (at, at.saturating_add(len));
        [
            span(q.desc_table(), 16 * n),
            span(q.avail_ring(), 6 + 2 * n),
            span(q.used_ring(), 6 + 8 * n),
        ]
    }

    /// A replacement device takes the queue up where the used ring says the failed one was:
    /// what it had taken but not answered is served again.
    pub fn restore(&mut self) -> bool {
        if !self.queue.ready() {
            return true; // the driver had not set the queue up yet: it starts from 0 anyway
        }
        let Ok(idx) = self.queue.used_idx(&*self.mem, std::sync::atomic::Ordering::Acquire) else {
            return false;
        };
        self.queue.set_next_avail(idx.0);
        self.queue.set_next_used(idx.0);
        true
    }

    /// The guest notified the queue: serve the chains it made available, at most [`BATCH`] of
    /// them. True when more are waiting: the caller serves register accesses, then calls again
    /// (so a guest that keeps adding chains, or whose requests are slow, never holds up its
    /// registers, nor, in-process, the vCPU waiting on the lock).
    pub fn notified(&mut self) -> bool {
        self.stats.notifies += 1;
        if self.status & DRIVER_OK == 0 || !self.queue.ready() {
            self.stats.refuse(Refusal::Notify);
            return false;
        }
        let mem = self.mem.clone();
        let forbidden = self.rings();
        let limits = chain::Limits {
            table: self.queue.desc_table(),
            size: self.queue.size(),
            indirect: self.driver_features & FEATURE_INDIRECT != 0,
            forbidden: &forbidden,
            max_bytes: self.backend.max_bytes(),
        };
        let heads: Vec<u16> = match self.queue.iter(&*mem) {
            Ok(it) => it.take(BATCH).map(|c| c.head_index()).collect(),
            Err(_) => {
                self.stats.refuse(Refusal::BadIndex); // the available index ran ahead
                return false;
            }
        };
        for &head in &heads {
            let (len, refusal) = match chain::walk(&mem, head, &limits) {
                Ok(segs) => self.backend.serve(&mem, &segs),
                Err(r) => (0, Some(r)),
            };
            match refusal {
                Some(r) => self.stats.refuse(r),
                None => self.stats.served += 1,
            }
            if head >= self.queue.size() {
                continue; // no used element can name it
            }
            if self.queue.add_used(&*mem, head, len).is_err() {
                self.stats.refuse(Refusal::QueueInvalid);
                return false;
            }
            self.interrupt_status |= 1;
        }
        let next = self.queue.next_avail();
        let avail = self.queue.avail_idx(&*mem, std::sync::atomic::Ordering::Acquire);
        heads.len() == BATCH && avail.is_ok_and(|a| a.0 != next)
    }
}

/// Guest memory as a device maps it: the VMM's memfd, shared, at guest-physical 0.
pub fn map_memory(memfd: std::fs::File, size: u64) -> std::io::Result<Arc<GuestMemoryMmap>> {
    let fo = vm_memory::FileOffset::new(memfd, 0);
    let region =
        vm_memory::MmapRegion::from_file(fo, size as usize).map_err(std::io::Error::other)?;
    let region = vm_memory::GuestRegionMmap::new(region, GuestAddress(0))
        .ok_or_else(|| std::io::Error::other("guest memory: a region that wraps"))?;
    let mem = GuestMemoryMmap::from_regions(vec![region]).map_err(std::io::Error::other)?;
    Ok(Arc::new(mem))
}
