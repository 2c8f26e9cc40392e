//! The VMM's own prison: a brig-component entry (`vmm`) that gets everything as fds from the
//! launcher (the `brig-vmm` the user ran) over its channel: `/dev/kvm`, the guest ELF, guest
//! memory, and per device its ioeventfd and the channel to the device's prison. It opens no
//! path, writes no cgroup and needs no privilege; it builds the VM and runs it.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::time::Duration;

use brig_component::Entry;
use brig_ipc::{Channel, Dec, Enc, Error as IpcError, FdKind, Wire};
use brig_vmm_abi as abi;

use crate::bus::{Carrier, Slot};
use crate::device::process;

pub const PROTOCOL: &str = "vmm/1";

/// The VMM's prison: beyond the devices' [`process::RUNTIME`], `ioctl` (KVM's whole interface:
/// the VM, its memory slot, the vCPU, ioeventfds, KVM_RUN).
pub const VMM: Entry = Entry {
    name: "vmm",
    protocol: PROTOCOL,
    serve,
    syscalls: &["ioctl"],
    limits: brig_ipc::Limits { max_bytes: abi::TABLE_SIZE + 512, max_fds: 3 },
};

/// The launcher to the VMM.
#[derive(Debug)]
pub enum ToVmm {
    /// Device `name`, in table order: its ioeventfd and the channel to its prison.
    Device { name: String, notify: OwnedFd, channel: OwnedFd },
    /// The machine: `/dev/kvm`, the guest ELF, guest memory (`size` bytes), the device table.
    Run { kvm: OwnedFd, guest: OwnedFd, memory: OwnedFd, size: u64, table: Vec<u8> },
}

/// How the VM ended: the guest's status, or why it stopped without one.
#[derive(Debug, PartialEq, Eq)]
pub enum FromVmm {
    Added,
    Exit(u32),
    Stopped(String),
}

impl Wire for ToVmm {
    fn encode(self, e: &mut Enc) {
        match self {
            ToVmm::Device { name, notify, channel } => {
                e.u8(0);
                e.str(&name);
                e.fd(notify);
                e.fd(channel);
            }
            ToVmm::Run { kvm, guest, memory, size, table } => {
                e.u8(1);
                e.u64(size);
                e.bytes(&table);
                e.fd(kvm);
                e.fd(guest);
                e.fd(memory);
            }
        }
    }

    fn decode(d: &mut Dec<'_>) -> Result<Self, IpcError> {
        Ok(match d.u8()? {
            0 => ToVmm::Device {
                name: d.str(16)?.to_string(),
                notify: d.fd(FdKind::Event)?,
                channel: d.fd(FdKind::Socket)?,
            },
            1 => ToVmm::Run {
                size: d.u64()?,
                table: d.bytes(abi::TABLE_SIZE)?.to_vec(),
                kvm: d.fd(FdKind::Other)?,
                guest: d.fd(FdKind::File)?,
                memory: d.fd(FdKind::Shared)?,
            },
            _ => return Err(IpcError::Garbage("a request of unknown kind")),
        })
    }
}

impl Wire for FromVmm {
    fn encode(self, e: &mut Enc) {
        match self {
            FromVmm::Added => e.u8(0),
            FromVmm::Exit(s) => {
                e.u8(1);
                e.u32(s);
            }
            FromVmm::Stopped(why) => {
                e.u8(2);
                e.str(&why);
            }
        }
    }

    fn decode(d: &mut Dec<'_>) -> Result<Self, IpcError> {
        Ok(match d.u8()? {
            0 => FromVmm::Added,
            1 => FromVmm::Exit(d.u32()?),
            2 => FromVmm::Stopped(d.str(4096)?.to_string()),
            _ => return Err(IpcError::Garbage("an answer of unknown kind")),
        })
    }
}

/// The VMM prison's serve loop: devices, then one run, answered with how it ended (or, if the
/// machine could not be built, the reason as a failure reply).
fn serve(mut ch: Channel) -> i32 {
    let mut slots = Vec::new();
    let mut notify = Vec::new();
    loop {
        let Ok(r) = ch.next_request::<ToVmm>(Duration::from_secs(60)) else { return 1 };
        match r.msg {
            ToVmm::Device { name, notify: n, channel } => {
                let carrier = Carrier::Process(Channel::new(channel, process::LIMITS));
                slots.push(Slot { name, carrier });
                notify.push(n);
                if ch.reply(r.id, Ok(FromVmm::Added)).is_err() {
                    return 1;
                }
            }
            ToVmm::Run { kvm, guest, memory, size, table } => {
                let answer = match abi::Boot::decode(&table) {
                    None => Err("a device table that does not decode".to_string()),
                    Some(boot) => match brig_sys::kvm::kvm_from_fd(kvm) {
                        Err(e) => Err(format!("the KVM fd: {e}")),
                        Ok(kvm) => crate::boot_and_run(
                            &kvm,
                            File::from(memory),
                            size,
                            File::from(guest),
                            &boot,
                            |vm, _| {
                                for (i, n) in notify.iter().enumerate() {
                                    vm.notify(i, std::os::fd::AsFd::as_fd(n))?;
                                }
                                Ok(std::mem::take(&mut slots))
                            },
                        )
                        .map(|end| match end {
                            crate::vm::End::Exit(s) => FromVmm::Exit(s),
                            crate::vm::End::Stopped(why) => FromVmm::Stopped(why),
                        })
                        .map_err(|e| e.to_string()),
                    },
                };
                let _ = ch.reply(r.id, answer);
                return 0;
            }
        }
    }
}
