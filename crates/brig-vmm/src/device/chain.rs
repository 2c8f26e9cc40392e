//! A descriptor chain, walked strictly: every field of every descriptor is the guest's, so each
//! is checked and a chain that breaks a rule is refused with the rule's name (counted by the
//! device, docs/vmm.md "Hostile guests"). virtio-queue reads the rings; this reads the chains,
//! because its own walker ends a bad chain silently where we want to say why.

use virtio_queue::desc::split::Descriptor;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;
const F_INDIRECT: u16 = 4;
/// The largest indirect table we follow (virtio-drivers' queues are at most 256).
pub const MAX_INDIRECT: u32 = 256;

/// Why a chain, register write or request was refused. The device counts each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Refusal {
    /// A chain that comes back to a descriptor it has visited.
    Loop,
    /// A `next` or head index beyond the table.
    BadIndex,
    /// A buffer or table not wholly in guest memory (or whose end overflows).
    OutsideMemory,
    /// A buffer over one of the device's own rings or descriptor tables.
    IntoRings,
    /// Two buffers of one chain overlap where one of them is written.
    Overlap,
    /// More bytes than a request may carry.
    TooLong,
    /// A buffer in the wrong direction (read-only where the device writes, or the reverse, or
    /// a readable buffer after a writable one).
    Direction,
    /// An indirect table inside an indirect table.
    IndirectNested,
    /// An indirect table of a bad size, or with NEXT set, or not the chain's only descriptor,
    /// or not negotiated.
    IndirectBad,
    /// A request the device does not understand (bad header, size not a multiple of a sector).
    BadRequest,
    /// A request past the end of the image.
    PastEnd,
    /// A write to a read-only image.
    ReadOnly,
    /// A queue's size or addresses changed while it is ready, or a bad queue size.
    QueueConfig,
    /// A queue made ready whose rings do not fit in guest memory or are misaligned.
    QueueInvalid,
    /// A feature the device did not offer, or features changed after FEATURES_OK.
    Features,
    /// A status change the spec forbids (clearing a bit without a reset, DRIVER_OK first).
    Status,
    /// A notification for a queue that is not ready, or before DRIVER_OK.
    Notify,
    /// A register that does not exist, or a bad access width.
    Register,
}

impl Refusal {
    pub const ALL: [Refusal; 18] = [
        Refusal::Loop,
        Refusal::BadIndex,
        Refusal::OutsideMemory,
        Refusal::IntoRings,
        Refusal::Overlap,
        Refusal::TooLong,
        Refusal::Direction,
        Refusal::IndirectNested,
        Refusal::IndirectBad,
        Refusal::BadRequest,
        Refusal::PastEnd,
        Refusal::ReadOnly,
        Refusal::QueueConfig,
        Refusal::QueueInvalid,
        Refusal::Features,
        Refusal::Status,
        Refusal::Notify,
        Refusal::Register,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Refusal::Loop => "loop",
            Refusal::BadIndex => "bad-index",
            Refusal::OutsideMemory => "outside-memory",
            Refusal::IntoRings => "into-rings",
            Refusal::Overlap => "overlap",
            Refusal::TooLong => "too-long",
            Refusal::Direction => "direction",
            Refusal::IndirectNested => "indirect-nested",
            Refusal::IndirectBad => "indirect-bad",
            Refusal::BadRequest => "bad-request",
            Refusal::PastEnd => "past-end",
            Refusal::ReadOnly => "read-only",
            Refusal::QueueConfig => "queue-config",
            Refusal::QueueInvalid => "queue-invalid",
            Refusal::Features => "features",
            Refusal::Status => "status",
            Refusal::Notify => "notify",
            Refusal::Register => "register",
        }
    }

    /// Its place in [`Refusal::ALL`] (declaration order).
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One buffer of a chain: checked to lie in guest memory, off the rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seg {
    pub addr: u64,
    pub len: u32,
    pub write: bool,
}

/// What a walk checks a chain against.
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    /// The queue's descriptor table and size.
    pub table: u64,
    pub size: u16,
    /// VIRTIO_F_RING_INDIRECT_DESC was negotiated.
    pub indirect: bool,
    /// Ranges `(start, end)` no buffer may touch: the device's rings and tables.
    pub forbidden: &'a [(u64, u64)],
    /// The most bytes all buffers together may hold.
    pub max_bytes: u64,
}

fn range(mem: &GuestMemoryMmap, addr: u64, len: u64, l: &Limits) -> Result<u64, Refusal> {
    let end = addr.checked_add(len).ok_or(Refusal::OutsideMemory)?;
    if len > 0 && !mem.check_range(GuestAddress(addr), len as usize) {
        return Err(Refusal::OutsideMemory);
    }
    if l.forbidden.iter().any(|&(s, e)| addr < e && s < end) {
        return Err(Refusal::IntoRings);
    }
    Ok(end)
}

/// The buffers of the chain whose head is `head`, or why it is refused.
pub fn walk(mem: &GuestMemoryMmap, head: u16, l: &Limits) -> Result<Vec<Seg>, Refusal> {
    let (mut table, mut size) = (l.table, l.size as u32);
    let (mut index, mut nested) = (head as u32, false);
    // Descriptors of the current table already visited: a second visit is a loop. Tables are at
    // most 2^16 (the queue) or MAX_INDIRECT entries.
    let mut seen = vec![0u64; (size as usize).div_ceil(64)];
    let mut segs: Vec<Seg> = Vec::new();
    let mut total = 0u64;
    loop {
        if index >= size {
            return Err(Refusal::BadIndex);
        }
        let (word, bit) = (index as usize / 64, 1u64 << (index % 64));
        if seen[word] & bit != 0 {
            return Err(Refusal::Loop);
        }
        seen[word] |= bit;
        let d: Descriptor = mem
            .read_obj(GuestAddress(table + index as u64 * 16))
            .map_err(|_| Refusal::OutsideMemory)?;
        let flags = d.flags();
        if flags & F_INDIRECT != 0 {
            if nested {
                return Err(Refusal::IndirectNested);
            }
            let entries = d.len() / 16;
            if !l.indirect
                || flags & F_NEXT != 0
                || !segs.is_empty()
                || d.len() % 16 != 0
                || entries == 0
                || entries > MAX_INDIRECT
            {
                return Err(Refusal::IndirectBad);
            }
            range(mem, d.addr().0, d.len() as u64, l)?;
            (table, size, index, nested) = (d.addr().0, entries, 0, true);
            seen = vec![0u64; (size as usize).div_ceil(64)];
            continue;
        }
        total += d.len() as u64;
        if total > l.max_bytes {
            return Err(Refusal::TooLong);
        }
        let write = flags & F_WRITE != 0;
        let end = range(mem, d.addr().0, d.len() as u64, l)?;
        if !write && segs.last().is_some_and(|s| s.write) {
            return Err(Refusal::Direction);
        }
        let seg = Seg { addr: d.addr().0, len: d.len(), write };
        if segs
            .iter()
            .any(|s| (s.write || write) && s.addr < end && seg.addr < s.addr + s.len as u64)
        {
            return Err(Refusal::Overlap);
        }
        segs.push(seg);
        if flags & F_NEXT == 0 {
            return Ok(segs);
        }
        index = d.next() as u32;
    }
}
