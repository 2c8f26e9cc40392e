//! The VMM's side of its devices: which window belongs to which device, and the carrier of a
//! register access (a call over the device's channel, or a lock). A device process that dies,
//! hangs or breaks the protocol is cut off (its channel closed: one that still listens exits;
//! one that hangs is ended by the launcher when the VM ends) and reported; from then on the
//! guest sees a failed device (Status reads DEVICE_NEEDS_RESET, other reads 0, writes dropped)
//! and the VM goes on.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use brig_ipc::Channel;

use crate::device::process::{FromDevice, Local, ToDevice, LIMITS};
use crate::device::{NEEDS_RESET, NOTIFY_OFFSET, STATUS_OFFSET};
use crate::jail::{FromLauncher, ToLauncher};

/// How long a register access waits for a device process.
const ACCESS_WAIT: Duration = Duration::from_secs(2);

/// Where a device runs.
#[derive(Debug)]
pub enum Carrier {
    /// Its prison, over the channel the launcher handed the VMM.
    Process(Channel),
    Local(Local),
    /// Its process failed: why.
    Failed(String),
}

/// The most register writes kept for a replacement; a guest that writes more (without a reset)
/// gives up its device's restarts.
const MAX_LOG: usize = 1024;

/// Where a failed device's replacement comes from: the launcher, over the VMM's channel to it
/// (`--restart`), for device number `index`.
#[derive(Debug, Clone)]
pub struct Restarter {
    pub index: u32,
    pub launcher: Rc<RefCell<Channel>>,
}

/// One device: its name (`blk0`), carrier, and what a replacement needs.
#[derive(Debug)]
pub struct Slot {
    pub name: String,
    pub carrier: Carrier,
    restarter: Option<Restarter>,
    /// The guest's register writes since its last reset (None once past [`MAX_LOG`]).
    log: Option<Vec<(u32, u8, u64)>>,
    restarts: u32,
}

impl Slot {
    pub fn new(name: String, carrier: Carrier, restarter: Option<Restarter>) -> Slot {
        Slot { name, carrier, restarter, log: Some(Vec::new()), restarts: 0 }
    }

    fn call(&mut self, q: ToDevice) -> Option<FromDevice> {
        let again = match &q {
            ToDevice::Read { offset, len } => Some(ToDevice::Read { offset: *offset, len: *len }),
            ToDevice::Write { offset, len, value } => {
                Some(ToDevice::Write { offset: *offset, len: *len, value: *value })
            }
            _ => None,
        };
        match &mut self.carrier {
            Carrier::Local(l) => l.access(q).ok(),
            Carrier::Failed(_) => None,
            Carrier::Process(c) => match c.call::<ToDevice, FromDevice>(q, ACCESS_WAIT) {
                Ok(a) => Some(a),
                Err(e) => match again.filter(|_| self.replace(&e.to_string())) {
                    Some(q) => self.call(q),
                    None => {
                        self.fail(e.to_string());
                        None
                    }
                },
            },
        }
    }

    /// A replacement for a device process that failed: from the launcher, given the guest's
    /// register writes again, then told to take the queue up from the used ring.
    fn replace(&mut self, why: &str) -> bool {
        let (Some(r), Some(log)) = (self.restarter.clone(), self.log.as_ref()) else {
            return false;
        };
        let asked = r.launcher.borrow_mut().call::<ToLauncher, FromLauncher>(
            ToLauncher::Restart(r.index),
            Duration::from_secs(10),
        );
        let Ok(FromLauncher::Restarted(fd)) = asked else { return false };
        let mut ch = Channel::new(fd, LIMITS);
        for &(offset, len, value) in log {
            let w = ch
                .call::<ToDevice, FromDevice>(ToDevice::Write { offset, len, value }, ACCESS_WAIT);
            if !matches!(w, Ok(FromDevice::Done)) {
                return false;
            }
        }
        if !matches!(
            ch.call::<ToDevice, FromDevice>(ToDevice::Restore, ACCESS_WAIT),
            Ok(FromDevice::Done)
        ) {
            return false;
        }
        self.restarts += 1;
        eprintln!(
            "brig-vmm: device {} failed: {why}; replaced, with its queue state (restart {})",
            self.name, self.restarts
        );
        self.carrier = Carrier::Process(ch);
        true
    }

    /// Marks the device failed (its channel is closed, which ends a device process that still
    /// listens) and says so.
    fn fail(&mut self, why: String) {
        eprintln!("brig-vmm: device {} failed: {why}; the guest sees it as failed", self.name);
        self.carrier = Carrier::Failed(why);
    }

    /// A guest read at `offset` in this device's window.
    pub fn read(&mut self, offset: u64, data: &mut [u8]) {
        let len = data.len() as u8;
        let v = match self.call(ToDevice::Read { offset: offset as u32, len }) {
            Some(FromDevice::Value(v)) => v,
            Some(other) => {
                self.fail(format!("answered {other:?} to a read"));
                0
            }
            None if offset == STATUS_OFFSET => NEEDS_RESET as u64,
            None => 0,
        };
        data.copy_from_slice(&v.to_le_bytes()[..data.len()]);
    }

    /// A guest write at `offset` in this device's window.
    pub fn write(&mut self, offset: u64, data: &[u8]) {
        let mut v = [0u8; 8];
        v[..data.len()].copy_from_slice(data);
        let len = data.len() as u8;
        let value = u64::from_le_bytes(v);
        if let Some(log) = self.log.as_mut() {
            if offset == STATUS_OFFSET && value == 0 {
                log.clear(); // a reset: what came before no longer matters
            }
            if offset != NOTIFY_OFFSET {
                log.push((offset as u32, len, value));
            }
            if log.len() > MAX_LOG {
                self.log = None;
            }
        }
        match self.call(ToDevice::Write { offset: offset as u32, len, value }) {
            Some(FromDevice::Done) | None => {}
            Some(other) => self.fail(format!("answered {other:?} to a write")),
        }
    }

    /// What to say of the device at the end: its figures (since its last restart), or why it
    /// has none.
    pub fn report(&mut self) -> String {
        let restarted = match self.restarts {
            0 => String::new(),
            n => format!(" (restarted {n} times; the figures are the last one's)"),
        };
        match self.call(ToDevice::Stats) {
            Some(FromDevice::Stats(s)) => format!("{}{restarted}", s.describe()),
            _ => match &self.carrier {
                Carrier::Failed(why) => format!("failed: {why}"),
                _ => "no statistics".into(),
            },
        }
    }
}
