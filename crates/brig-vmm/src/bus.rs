//! The VMM's side of its devices: which window belongs to which device, and the carrier of a
//! register access (a call over the device's channel, or a lock). A device process that dies,
//! hangs or breaks the protocol is cut off (its channel closed: one that still listens exits;
//! one that hangs is ended by the launcher when the VM ends) and reported; from then on the
//! guest sees a failed device (Status reads DEVICE_NEEDS_RESET, other reads 0, writes dropped)
//! and the VM goes on.

use std::time::Duration;

use brig_ipc::Channel;

use crate::device::process::{FromDevice, Local, ToDevice};
use crate::device::{Stats, NEEDS_RESET, STATUS_OFFSET};

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

/// One device: its name (`blk0`) and carrier.
#[derive(Debug)]
pub struct Slot {
    pub name: String,
    pub carrier: Carrier,
}

impl Slot {
    fn call(&mut self, q: ToDevice) -> Option<FromDevice> {
        match &mut self.carrier {
            Carrier::Local(l) => l.access(q).ok(),
            Carrier::Failed(_) => None,
            Carrier::Process(c) => match c.call::<ToDevice, FromDevice>(q, ACCESS_WAIT) {
                Ok(a) => Some(a),
                Err(e) => {
                    self.fail(e.to_string());
                    None
                }
            },
        }
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
        match self.call(ToDevice::Write {
            offset: offset as u32,
            len,
            value: u64::from_le_bytes(v),
        }) {
            Some(FromDevice::Done) | None => {}
            Some(other) => self.fail(format!("answered {other:?} to a write")),
        }
    }

    /// What the device served and refused, or why it has none to give.
    pub fn stats(&mut self) -> Result<Stats, String> {
        match self.call(ToDevice::Stats) {
            Some(FromDevice::Stats(s)) => Ok(s),
            _ => match &self.carrier {
                Carrier::Failed(why) => Err(format!("failed: {why}")),
                _ => Err("no statistics".into()),
            },
        }
    }
}
