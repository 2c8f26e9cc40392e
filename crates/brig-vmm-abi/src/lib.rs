//! brig-vmm-abi: the boot protocol between brig-vmm and a guest, on both sides of the guest
//! boundary: where things are at entry, the device table's layout, the ports, and the blk test
//! pattern. The VMM encodes, the guest decodes; neither trusts the other's bytes beyond what
//! [`Boot::decode`] checks. `no_std`, no dependencies. Specified in docs/vmm.md, "Boot state".
#![no_std]
#![forbid(unsafe_code)]

/// Guest-physical addresses of the boot state (all in the first MiB, identity-mapped).
pub const GDT_ADDR: u64 = 0x500;
pub const PML4_ADDR: u64 = 0x1000;
pub const PDPT_ADDR: u64 = 0x2000;
/// Four page directories of 2 MiB pages: the first 4 GiB, MMIO included.
pub const PD_ADDR: u64 = 0x3000;
pub const IDENTITY_MAPPED: u64 = 4 << 30;
/// The device table: its address is in `rdi` at entry.
pub const TABLE_ADDR: u64 = 0x7000;
pub const TABLE_SIZE: usize = 0x1000;
/// The stack grows down from here; `rsp` is `STACK_TOP - 8` at entry (as after a `call`).
pub const STACK_TOP: u64 = 0x8_0000;
/// A guest's ELF segments must lie at or above this address, within its memory.
pub const LOAD_MIN: u64 = 0x10_0000;

/// Device `i` is virtio-mmio (version 2) at `MMIO_BASE + i * MMIO_SIZE`.
pub const MMIO_BASE: u64 = 0xd000_0000;
pub const MMIO_SIZE: u64 = 0x1000;

/// COM1: a 16550 UART; what the guest writes goes to brig-vmm's stdout.
pub const COM1: u16 = 0x3f8;
/// A 32-bit write ends the VM; the value is the guest's exit status (0: every check passed).
pub const EXIT_PORT: u16 = 0x501;
/// A 32-bit write asks the VMM to note the host's monotonic time under the value (benchmarks).
pub const MARK_PORT: u16 = 0x502;

pub const MAGIC: u64 = u64::from_le_bytes(*b"BRIGBOOT");
pub const VERSION: u32 = 1;
pub const MAX_DEVICES: usize = 16;
const HEADER: usize = 0x28;
const ENTRY: usize = 24;

/// What the guest is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The checklist: drive every device as a well-behaved driver and report.
    Check = 0,
    /// Attack every device through its rings and registers.
    Hostile = 1,
    /// Measure: blk sequential read and write, rng bytes (`arg` MiB each), with marks.
    Bench = 2,
}

/// One virtio-mmio device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Device {
    pub base: u64,
    pub size: u64,
    /// The virtio device id (2 block, 4 entropy).
    pub kind: u32,
    /// Reserved: 0 (completion is polled from the used ring).
    pub irq: u32,
}

/// The device table at `TABLE_ADDR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boot {
    pub mode: Mode,
    pub mem_size: u64,
    /// Random, different at every boot.
    pub seed: u64,
    pub arg: u32,
    pub ndev: usize,
    pub devices: [Device; MAX_DEVICES],
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    (u32_at(b, at) as u64) | ((u32_at(b, at + 4) as u64) << 32)
}

impl Boot {
    /// Writes the table into `out` (at least `TABLE_SIZE` bytes).
    pub fn encode(&self, out: &mut [u8]) {
        out[..TABLE_SIZE].fill(0);
        out[0..8].copy_from_slice(&MAGIC.to_le_bytes());
        out[8..12].copy_from_slice(&VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&(self.mode as u32).to_le_bytes());
        out[16..24].copy_from_slice(&self.mem_size.to_le_bytes());
        out[24..32].copy_from_slice(&self.seed.to_le_bytes());
        out[32..36].copy_from_slice(&(self.ndev as u32).to_le_bytes());
        out[36..40].copy_from_slice(&self.arg.to_le_bytes());
        for (i, d) in self.devices[..self.ndev].iter().enumerate() {
            let at = HEADER + i * ENTRY;
            out[at..at + 8].copy_from_slice(&d.base.to_le_bytes());
            out[at + 8..at + 16].copy_from_slice(&d.size.to_le_bytes());
            out[at + 16..at + 20].copy_from_slice(&d.kind.to_le_bytes());
            out[at + 20..at + 24].copy_from_slice(&d.irq.to_le_bytes());
        }
    }

    /// Reads a table; `None` unless magic, version, mode and count are right.
    pub fn decode(b: &[u8]) -> Option<Boot> {
        if b.len() < TABLE_SIZE || u64_at(b, 0) != MAGIC || u32_at(b, 8) != VERSION {
            return None;
        }
        let mode = match u32_at(b, 12) {
            0 => Mode::Check,
            1 => Mode::Hostile,
            2 => Mode::Bench,
            _ => return None,
        };
        let ndev = u32_at(b, 32) as usize;
        if ndev > MAX_DEVICES {
            return None;
        }
        let mut devices = [Device::default(); MAX_DEVICES];
        for (i, d) in devices[..ndev].iter_mut().enumerate() {
            let at = HEADER + i * ENTRY;
            *d = Device {
                base: u64_at(b, at),
                size: u64_at(b, at + 8),
                kind: u32_at(b, at + 16),
                irq: u32_at(b, at + 20),
            };
        }
        Some(Boot {
            mode,
            mem_size: u64_at(b, 16),
            seed: u64_at(b, 24),
            arg: u32_at(b, 36),
            ndev,
            devices,
        })
    }
}

/// The blk checklist's pattern: byte `i` of 512-byte sector `sector`. The guest writes sectors
/// `0..PATTERN_SECTORS` of every writable disk with it; a test reads the image afterwards.
pub const PATTERN_SECTORS: u64 = 16;
pub fn pattern_byte(sector: u64, i: usize) -> u8 {
    ((sector.wrapping_mul(251) as usize + i * 7) as u8) ^ 0xa5
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn a_table_reads_back_and_garbage_is_refused() {
        let mut devices = [Device::default(); MAX_DEVICES];
        devices[1] = Device { base: MMIO_BASE + MMIO_SIZE, size: MMIO_SIZE, kind: 2, irq: 0 };
        let boot =
            Boot { mode: Mode::Hostile, mem_size: 64 << 20, seed: 7, arg: 3, ndev: 2, devices };
        let mut page = [0u8; TABLE_SIZE];
        boot.encode(&mut page);
        assert_eq!(Boot::decode(&page), Some(boot));
        page[32] = MAX_DEVICES as u8 + 1;
        assert_eq!(Boot::decode(&page), None);
        page[32] = 2;
        page[0] ^= 1;
        assert_eq!(Boot::decode(&page), None);
    }
}
