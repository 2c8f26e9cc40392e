//! Where a device runs: its own prison (a brig-component entry: this binary re-executed by
//! `brig run` with an allow-list written for its type) or a thread of the VMM. Either way it
//! waits on its queue's ioeventfd and serves register accesses; only the carrier differs (the
//! `vmm-device/1` channel, or a lock).

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brig_component::Entry;
use brig_ipc::{Channel, Dec, Enc, Error, FdKind, Wire};

use super::{blk::Blk, rng::Rng, Backend, Mmio, Stats};

pub const PROTOCOL: &str = "vmm-device/1";
pub const LIMITS: brig_ipc::Limits = brig_ipc::Limits { max_bytes: 512, max_fds: 3 };

/// The VMM to a device.
#[derive(Debug)]
pub enum ToDevice {
    /// Once, first: guest memory (a memfd sealed against resizing), the queue's ioeventfd, and
    /// for blk the image (opened read-only when `read_only`). `resume`: this device replaces
    /// one that failed; it serves no notification until `Restore`.
    Setup {
        memory: OwnedFd,
        size: u64,
        notify: OwnedFd,
        image: Option<OwnedFd>,
        read_only: bool,
        resume: bool,
    },
    /// A guest read of `len` bytes (1, 2, 4 or 8) at `offset` in the device's window.
    Read { offset: u32, len: u8 },
    /// A guest write.
    Write { offset: u32, len: u8, value: u64 },
    /// What the device has served and refused.
    Stats,
    /// After the VMM replayed the failed device's register writes: take the queue up where the
    /// used ring says the old one was (chains it had taken but not answered are served again).
    Restore,
}

/// A device's answers.
#[derive(Debug, PartialEq, Eq)]
pub enum FromDevice {
    Ready,
    Value(u64),
    Done,
    Stats(Stats),
}

impl Wire for ToDevice {
    fn encode(self, e: &mut Enc) {
        match self {
            ToDevice::Setup { memory, size, notify, image, read_only, resume } => {
                e.u8(0);
                e.u64(size);
                e.bool(read_only);
                e.bool(resume);
                e.bool(image.is_some());
                e.fd(memory);
                e.fd(notify);
                if let Some(i) = image {
                    e.fd(i);
                }
            }
            ToDevice::Read { offset, len } => {
                e.u8(1);
                e.u32(offset);
                e.u8(len);
            }
            ToDevice::Write { offset, len, value } => {
                e.u8(2);
                e.u32(offset);
                e.u8(len);
                e.u64(value);
            }
            ToDevice::Stats => e.u8(3),
            ToDevice::Restore => e.u8(4),
        }
    }

    fn decode(d: &mut Dec<'_>) -> Result<Self, Error> {
        let width = |n: u8| {
            if matches!(n, 1 | 2 | 4 | 8) {
                Ok(n)
            } else {
                Err(Error::Garbage("an access width"))
            }
        };
        Ok(match d.u8()? {
            0 => {
                let (size, read_only, resume, has_image) =
                    (d.u64()?, d.bool()?, d.bool()?, d.bool()?);
                let memory = d.fd(FdKind::Shared)?;
                let notify = d.fd(FdKind::Event)?;
                let image = if has_image { Some(d.fd(FdKind::File)?) } else { None };
                ToDevice::Setup { memory, size, notify, image, read_only, resume }
            }
            1 => ToDevice::Read { offset: d.u32()?, len: width(d.u8()?)? },
            2 => ToDevice::Write { offset: d.u32()?, len: width(d.u8()?)?, value: d.u64()? },
            3 => ToDevice::Stats,
            4 => ToDevice::Restore,
            _ => return Err(Error::Garbage("a request of unknown kind")),
        })
    }
}

impl Wire for FromDevice {
    fn encode(self, e: &mut Enc) {
        match self {
            FromDevice::Ready => e.u8(0),
            FromDevice::Value(v) => {
                e.u8(1);
                e.u64(v);
            }
            FromDevice::Done => e.u8(2),
            FromDevice::Stats(s) => {
                e.u8(3);
                e.u64(s.served);
                e.u64(s.notifies);
                for n in s.refused {
                    e.u64(n);
                }
            }
        }
    }

    fn decode(d: &mut Dec<'_>) -> Result<Self, Error> {
        Ok(match d.u8()? {
            0 => FromDevice::Ready,
            1 => FromDevice::Value(d.u64()?),
            2 => FromDevice::Done,
            3 => {
                let mut s = Stats { served: d.u64()?, notifies: d.u64()?, ..Stats::default() };
                for n in s.refused.iter_mut() {
                    *n = d.u64()?;
                }
                FromDevice::Stats(s)
            }
            _ => return Err(Error::Garbage("an answer of unknown kind")),
        })
    }
}

/// The device types, by the entry that serves them in a prison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rng,
    Blk,
}

/// What a device's static Rust runtime and its channel need, measured (brig-component's
/// `BASE_SYSCALLS` less what a device never calls): the start (TLS, signals, the alternate
/// stack std installs), memory, reading brig's capability description, the channel and the fds
/// on it. Each device type adds its own.
pub const RUNTIME: &[&str] = &[
    "arch_prctl",
    "getrandom",
    "poll",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "brk",
    "mmap",
    "munmap",
    "mprotect",
    "futex",
    "recvmsg",
    "sendmsg",
    "setsockopt",
    "read",
    "write",
    "lseek",
    "newfstatat",
    "fcntl",
    "close",
];

/// How brig-vmm starts a prison for `entry`: brig-component's defaults with [`RUNTIME`] as
/// the base of its allow-list, and `memory` (brig's `--mem` syntax).
pub fn spec(entry: Entry, memory: &str) -> brig_component::Spec {
    brig_component::Spec {
        base: RUNTIME,
        memory: Some(memory.into()),
        ..brig_component::Spec::new(entry)
    }
}

/// virtio-rng's prison: beyond [`RUNTIME`] (which has `getrandom`), only
/// `seccomp`, for the device's own last filter ([`crate::lockdown`]).
pub const RNG: Entry = Entry {
    name: "virtio-rng",
    protocol: PROTOCOL,
    serve: |ch| serve(ch, Kind::Rng, false),
    syscalls: &["seccomp"],
    limits: LIMITS,
};
/// virtio-blk's prison: beyond [`RUNTIME`], reading, writing to and flushing its image fd, and
/// `seccomp`.
pub const BLK: Entry = Entry {
    name: "virtio-blk",
    protocol: PROTOCOL,
    serve: |ch| serve(ch, Kind::Blk, false),
    syscalls: &["pread64", "pwrite64", "fdatasync", "seccomp"],
    limits: LIMITS,
};
/// The same devices with the tests' exploit hook ([`super::compromised`]), in the same prisons.
pub const RNG_COMPROMISED: Entry =
    Entry { name: "virtio-rng-compromised", serve: |ch| serve(ch, Kind::Rng, true), ..RNG };
pub const BLK_COMPROMISED: Entry =
    Entry { name: "virtio-blk-compromised", serve: |ch| serve(ch, Kind::Blk, true), ..BLK };
pub const ENTRIES: [Entry; 4] = [RNG, BLK, RNG_COMPROMISED, BLK_COMPROMISED];

impl Kind {
    pub fn entry(self, compromised: bool) -> Entry {
        match (self, compromised) {
            (Kind::Rng, false) => RNG,
            (Kind::Blk, false) => BLK,
            (Kind::Rng, true) => RNG_COMPROMISED,
            (Kind::Blk, true) => BLK_COMPROMISED,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Rng => "rng",
            Kind::Blk => "blk",
        }
    }

    /// The virtio device id, as the device table and the DeviceID register give it.
    pub fn id(self) -> u32 {
        match self {
            Kind::Rng => 4,
            Kind::Blk => 2,
        }
    }

    /// The kind of a device table entry's id (anything but blk's is an rng: brig-vmm makes
    /// only these two).
    pub fn of_id(id: u32) -> Kind {
        if id == Kind::Blk.id() {
            Kind::Blk
        } else {
            Kind::Rng
        }
    }

    /// The backend, from the resources the VMM handed over.
    pub fn backend(
        self,
        image: Option<File>,
        read_only: bool,
    ) -> std::io::Result<Box<dyn Backend>> {
        Ok(match (self, image) {
            (Kind::Rng, None) => Box::new(Rng::default()),
            (Kind::Blk, Some(f)) => Box::new(Blk::new(f, read_only)?),
            _ => return Err(std::io::Error::other("the wrong resources for this device")),
        })
    }
}

/// A device access as the register file takes it: the low `len` bytes of `value`. A second
/// `Setup` is the VMM breaking the protocol, not the guest: refused, not counted.
fn access(mmio: &mut Mmio, q: ToDevice) -> Result<FromDevice, String> {
    Ok(match q {
        ToDevice::Read { offset, len } => {
            let mut b = [0u8; 8];
            mmio.read(offset as u64, &mut b[..len as usize]);
            FromDevice::Value(u64::from_le_bytes(b))
        }
        ToDevice::Write { offset, len, value } => {
            mmio.write(offset as u64, &value.to_le_bytes()[..len as usize]);
            FromDevice::Done
        }
        ToDevice::Stats => FromDevice::Stats(mmio.stats.clone()),
        ToDevice::Restore if mmio.restore() => FromDevice::Done,
        ToDevice::Restore => return Err("no used ring to restore from".into()),
        ToDevice::Setup { .. } => return Err("the device is set up already".into()),
    })
}

/// Reads an ioeventfd's counter; `false` when it is gone.
fn drain(mut notify: impl Read) -> bool {
    let mut n = [0u8; 8];
    notify.read_exact(&mut n).is_ok()
}

/// The device process: set up from the first request (then its own last filter), then serve
/// registers and notifications until the VMM closes the channel (exit 0) or breaks the
/// protocol (exit 1). `compromised`: the tests' exploit hook runs first.
fn serve(mut ch: Channel, kind: Kind, compromised: bool) -> i32 {
    let Ok(first) = ch.next_request::<ToDevice>(Duration::from_secs(10)) else { return 1 };
    let ToDevice::Setup { memory, size, notify, image, read_only, resume } = first.msg else {
        return 1;
    };
    let memory = File::from(memory);
    let made = memory
        .try_clone()
        .and_then(|m| super::map_memory(m, size))
        .and_then(|mem| Ok(Mmio::new(kind.backend(image.map(File::from), read_only)?, mem)))
        .and_then(|m| crate::lockdown::device().map(|()| m));
    let mut mmio = match made {
        Ok(m) => m,
        Err(e) => {
            let _ = ch.reply::<FromDevice>(first.id, Err(e.to_string()));
            return 1;
        }
    };
    if compromised {
        super::compromised::attack(&memory, size);
    }
    drop(memory);
    if ch.reply(first.id, Ok(FromDevice::Ready)).is_err() {
        return 1;
    }
    let notify = File::from(notify);
    // Chains left over from the last batch: serve them once the channel has had its turn.
    let mut more = false;
    // A replacement serves nothing until the VMM has replayed the registers and said Restore.
    let mut waiting = resume;
    loop {
        let wait = if more { Some(Duration::ZERO) } else { None };
        let ready = match brig_sys::process::poll_readable(&[ch.fd(), notify.as_fd()], wait) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return 1,
        };
        if ready[1] && !drain(&notify) {
            return 1;
        }
        if (ready[1] || more) && !waiting {
            more = mmio.notified();
        }
        if ready[0] {
            // poll said a message is there: the wait only bounds a peer that lied to poll.
            match ch.next_request::<ToDevice>(Duration::from_secs(1)) {
                Ok(r) => {
                    let restore = matches!(r.msg, ToDevice::Restore);
                    let answer = access(&mut mmio, r.msg);
                    if restore && answer.is_ok() {
                        (waiting, more) = (false, true);
                    }
                    if ch.reply(r.id, answer).is_err() {
                        return 1;
                    }
                }
                Err(Error::PeerGone) => return 0,
                Err(Error::Timeout) => {}
                Err(_) => return 1,
            }
        }
    }
}

/// A device on a thread of the VMM (`--devices in-process`): the same register file and queue
/// code, behind a lock instead of a channel. The eventfd is read only under the lock, by the
/// thread or by a register access that finds it readable, so a register access always comes
/// after the notifications before it, as it does over a channel (the device process serves
/// its eventfd first).
#[derive(Debug, Clone)]
pub struct Local {
    dev: Arc<Mutex<(Mmio, bool)>>,
    notify: Arc<File>,
}

fn readable(f: &File, wait: Option<Duration>) -> bool {
    matches!(brig_sys::process::poll_readable(&[f.as_fd()], wait).as_deref(), Ok([true]))
}

impl Local {
    /// Starts the thread that serves `notify`.
    pub fn start(mmio: Mmio, notify: File) -> std::io::Result<Local> {
        let dev = Local { dev: Arc::new(Mutex::new((mmio, false))), notify: Arc::new(notify) };
        let d = dev.clone();
        std::thread::Builder::new().name("device".into()).spawn(move || loop {
            if !d.locked(|_| ()).1 {
                readable(&d.notify, None);
            }
        })?;
        Ok(dev)
    }

    /// Runs `f` under the lock, after serving a pending notification or the rest of the last
    /// batch; also says whether chains are still waiting.
    fn locked<R>(&self, f: impl FnOnce(&mut Mmio) -> R) -> (R, bool) {
        let mut g = self.dev.lock().unwrap_or_else(|p| p.into_inner());
        let (m, more) = &mut *g;
        let notified = readable(&self.notify, Some(Duration::ZERO)) && drain(&mut &*self.notify);
        if notified || *more {
            *more = m.notified();
        }
        (f(m), *more)
    }

    pub fn access(&self, q: ToDevice) -> Result<FromDevice, String> {
        self.locked(|m| access(m, q)).0
    }
}
