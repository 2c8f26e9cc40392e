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

use std::cell::RefCell;
use std::rc::Rc;

use crate::bus::{Carrier, Restarter, Slot};
use crate::device::{compromised, process};

pub const PROTOCOL: &str = "vmm/1";

/// The VMM's prison: beyond the devices' [`process::RUNTIME`], `ioctl` (KVM's interface: the
/// VM, its memory slot, the vCPU, ioeventfds, KVM_RUN; once the machine is built its last
/// filter keeps only KVM_RUN and reading registers) and `seccomp` for that filter.
pub const VMM: Entry = Entry {
    name: "vmm",
    protocol: PROTOCOL,
    serve: |ch| serve(ch, false),
    syscalls: &["ioctl", "seccomp"],
    limits: brig_ipc::Limits { max_bytes: abi::TABLE_SIZE + 512, max_fds: 4 },
};

/// The VMM with the tests' exploit hook (`--compromised vmm`), in the same prison.
pub const VMM_COMPROMISED: Entry =
    Entry { name: "vmm-compromised", serve: |ch| serve(ch, true), ..VMM };

/// The launcher to the VMM.
#[derive(Debug)]
pub enum ToVmm {
    /// Device `name`, in table order: its ioeventfd and the channel to its prison.
    Device { name: String, notify: OwnedFd, channel: OwnedFd },
    /// The machine: `/dev/kvm`, the guest ELF, guest memory (`size` bytes), the device table;
    /// and, with `--restart`, a channel on which to ask the launcher for replacement devices.
    Run {
        kvm: OwnedFd,
        guest: OwnedFd,
        memory: OwnedFd,
        size: u64,
        table: Vec<u8>,
        restarts: Option<OwnedFd>,
    },
}

/// The VMM to the launcher, on the restart channel: a replacement for device `n` (table order).
#[derive(Debug)]
pub enum ToLauncher {
    Restart(u32),
}

/// The launcher's answer: the replacement's channel (set up, not yet restored).
#[derive(Debug)]
pub enum FromLauncher {
    Restarted(OwnedFd),
}

impl Wire for ToLauncher {
    fn encode(self, e: &mut Enc) {
        let ToLauncher::Restart(n) = self;
        e.u32(n);
    }

    fn decode(d: &mut Dec<'_>) -> Result<Self, IpcError> {
        Ok(ToLauncher::Restart(d.u32()?))
    }
}

impl Wire for FromLauncher {
    fn encode(self, e: &mut Enc) {
        let FromLauncher::Restarted(fd) = self;
        e.fd(fd);
    }

    fn decode(d: &mut Dec<'_>) -> Result<Self, IpcError> {
        Ok(FromLauncher::Restarted(d.fd(FdKind::Socket)?))
    }
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
            ToVmm::Run { kvm, guest, memory, size, table, restarts } => {
                e.u8(1);
                e.u64(size);
                e.bytes(&table);
                e.bool(restarts.is_some());
                e.fd(kvm);
                e.fd(guest);
                e.fd(memory);
                if let Some(r) = restarts {
                    e.fd(r);
                }
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
            1 => {
                let (size, table) = (d.u64()?, d.bytes(abi::TABLE_SIZE)?.to_vec());
                let has_restarts = d.bool()?;
                let (kvm, guest, memory) =
                    (d.fd(FdKind::Other)?, d.fd(FdKind::File)?, d.fd(FdKind::Shared)?);
                let restarts = if has_restarts { Some(d.fd(FdKind::Socket)?) } else { None };
                ToVmm::Run { kvm, guest, memory, size, table, restarts }
            }
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
fn serve(mut ch: Channel, compromised: bool) -> i32 {
    let mut devices = Vec::new();
    let mut notify = Vec::new();
    loop {
        let Ok(r) = ch.next_request::<ToVmm>(Duration::from_secs(60)) else { return 1 };
        match r.msg {
            ToVmm::Device { name, notify: n, channel } => {
                devices.push((name, Channel::new(channel, process::LIMITS)));
                notify.push(n);
                if ch.reply(r.id, Ok(FromVmm::Added)).is_err() {
                    return 1;
                }
            }
            ToVmm::Run { kvm, guest, memory, size, table, restarts } => {
                let launcher = restarts
                    .map(|fd| Rc::new(RefCell::new(Channel::new(fd, brig_ipc::Limits::DEFAULT))));
                let slots = std::mem::take(&mut devices)
                    .into_iter()
                    .enumerate()
                    .map(|(i, (name, ch))| {
                        let restarter = launcher
                            .clone()
                            .map(|launcher| Restarter { index: i as u32, launcher });
                        Slot::new(name, Carrier::Process(ch), restarter)
                    })
                    .collect::<Vec<_>>();
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
                            |vm, memory| {
                                for (i, n) in notify.iter().enumerate() {
                                    vm.notify(i, std::os::fd::AsFd::as_fd(n))?;
                                }
                                let why =
                                    |e| crate::Error::io("seccomp", "the VMM's last filter", e);
                                crate::lockdown::vmm().map_err(why)?;
                                if compromised {
                                    compromised::attack(&memory.fd, size);
                                    let vm =
                                        kvm.create_vm().map(drop).map_err(std::io::Error::from);
                                    compromised::say("create another VM", vm);
                                }
                                Ok(slots)
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
