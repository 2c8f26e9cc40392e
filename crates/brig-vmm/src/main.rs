//! brig-vmm: a small KVM VMM, on the host side of the guest boundary, whose every virtio
//! device runs in its own brig prison (docs/vmm.md). The VMM loads a 64-bit ELF guest, enters
//! it in long mode, gives it a serial console and virtio-mmio devices (rng, blk), and forwards
//! each device's register accesses to the device's process; the data path is shared guest
//! memory and an ioeventfd per device.
#![forbid(unsafe_code)]

mod bus;
mod device;
mod vm;

use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;

use brig_component::{Component, Spec};
use brig_vmm_abi as abi;
use clap::{Parser, ValueEnum};

use bus::{Carrier, Slot};
use device::process::{FromDevice, Kind, Local, ToDevice};

/// Exit status when brig-vmm could not set the VM up (nothing ran).
const SETUP_FAILED: u8 = 125;
/// Exit status when the VM stopped without the guest writing its status.
const VM_STOPPED: u8 = 120;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{step} ({what}): {source}")]
    Io { step: &'static str, what: String, source: std::io::Error },
    #[error("{0}")]
    Guest(String),
    #[error("device {name}: {why}")]
    Device { name: String, why: String },
}

impl Error {
    pub fn io(step: &'static str, what: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { step, what: what.into(), source }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Devices {
    /// Each device in its own brig prison (the default).
    Process,
    /// Each device on a thread of the VMM (to measure what isolation costs).
    InProcess,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Check,
    Hostile,
    Bench,
}

/// Run a 64-bit ELF guest with virtio devices, each in its own prison.
#[derive(Debug, Parser)]
#[command(name = "brig-vmm", version)]
struct Cli {
    /// The guest: a 64-bit ELF entered in long mode (docs/vmm.md, "Boot state").
    #[arg(long, value_name = "FILE")]
    guest: PathBuf,
    /// Guest memory in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(4..=4096))]
    mem: u64,
    /// virtio-rng devices.
    #[arg(long, value_name = "N", default_value_t = 0)]
    rng: u32,
    /// A virtio-blk device on a raw image, read-write.
    #[arg(long, value_name = "IMAGE")]
    blk: Vec<PathBuf>,
    /// A virtio-blk device on a raw image, read-only (opened read-only).
    #[arg(long, value_name = "IMAGE")]
    blk_ro: Vec<PathBuf>,
    /// Where the devices run.
    #[arg(long, value_enum, default_value_t = Devices::Process)]
    devices: Devices,
    /// What the guest is asked to do (the table's mode).
    #[arg(long, value_enum, default_value_t = Mode::Check)]
    mode: Mode,
    /// `/dev/kvm` as an inherited fd (3 or more) instead of opening it: for a caller that may
    /// not open it itself (not in the kvm group) but is handed it by one that may.
    #[arg(long, value_name = "FD")]
    kvm_fd: Option<i32>,
    /// Tests only: run the named device (`blk0`) with an exploit hook that attacks its prison.
    #[arg(long, value_name = "DEVICE", hide = true)]
    compromised: Option<String>,
    /// The mode's argument (check: soak rounds after the checklist; bench: MiB per measurement).
    #[arg(long, default_value_t = 0)]
    arg: u32,
}

/// What one device is given.
struct Want {
    kind: Kind,
    image: Option<(File, bool)>,
}

fn wants(cli: &Cli) -> Result<Vec<Want>, Error> {
    let mut v: Vec<Want> = (0..cli.rng).map(|_| Want { kind: Kind::Rng, image: None }).collect();
    for (path, ro) in cli.blk.iter().map(|p| (p, false)).chain(cli.blk_ro.iter().map(|p| (p, true)))
    {
        let f = std::fs::OpenOptions::new().read(true).write(!ro).open(path);
        let f = f.map_err(|e| Error::io("open the image", path.display().to_string(), e))?;
        v.push(Want { kind: Kind::Blk, image: Some((f, ro)) });
    }
    if v.len() > abi::MAX_DEVICES {
        return Err(Error::Guest(format!("at most {} devices", abi::MAX_DEVICES)));
    }
    Ok(v)
}

/// Starts a device where `--devices` says and hands it memory, its ioeventfd and resource.
fn start(
    name: String,
    w: Want,
    devices: Devices,
    compromised: bool,
    mem: &vm::Memory,
    notify: std::os::fd::OwnedFd,
) -> Result<Slot, Error> {
    let fail = |why: String| Error::Device { name: name.clone(), why };
    let read_only = w.image.as_ref().is_some_and(|(_, ro)| *ro);
    let carrier = match devices {
        Devices::InProcess => {
            let backend = w
                .kind
                .backend(w.image.map(|(f, _)| f), read_only)
                .map_err(|e| fail(e.to_string()))?;
            let mmio = device::Mmio::new(backend, mem.map.clone());
            Carrier::Local(Local::start(mmio, File::from(notify)).map_err(|e| fail(e.to_string()))?)
        }
        Devices::Process => {
            let mut c = Component::start(Spec::new(w.kind.entry(compromised)))
                .map_err(|e| fail(e.to_string()))?;
            let memory = mem.fd.try_clone().map_err(|e| fail(e.to_string()))?.into();
            let image = w.image.map(|(f, _)| f.into());
            let setup = ToDevice::Setup { memory, size: mem.size, notify, image, read_only };
            let ready = c.call::<ToDevice, FromDevice>(setup, std::time::Duration::from_secs(10));
            let ready = ready.map_err(|e| fail(e.to_string()))?;
            ready.verify(|a| match a {
                FromDevice::Ready => Ok(()),
                a => Err(fail(format!("answered {a:?} to its setup"))),
            })?;
            Carrier::Process(Box::new(c))
        }
    };
    Ok(Slot { name, carrier })
}

fn run(cli: Cli) -> Result<vm::End, Error> {
    let wants = wants(&cli)?;
    if cli.compromised.is_some() && cli.devices != Devices::Process {
        return Err(Error::Guest(
            "--compromised attacks a device's prison: it needs --devices process".into(),
        ));
    }
    let mut guest = File::open(&cli.guest)
        .map_err(|e| Error::io("open the guest", cli.guest.display().to_string(), e))?;
    let kvm = match cli.kvm_fd {
        Some(fd) => brig_sys::fdpass::claim_inherited(fd)
            .map(brig_sys::kvm::kvm_from_fd)
            .map_err(|e| Error::io("claim --kvm-fd", fd.to_string(), e))?,
        None => kvm_ioctls::Kvm::new().map_err(|e| Error::io("open", "/dev/kvm", e.into()))?,
    };
    if kvm.get_api_version() != 12 {
        return Err(Error::Guest("the KVM fd does not answer as /dev/kvm (API version 12)".into()));
    }
    let memory = vm::Memory::new(cli.mem << 20)?;
    let mut seed = [0u8; 8];
    brig_sys::getrandom(&mut seed).map_err(|e| Error::io("getrandom", "the boot seed", e))?;
    let mut boot = abi::Boot {
        mode: match cli.mode {
            Mode::Check => abi::Mode::Check,
            Mode::Hostile => abi::Mode::Hostile,
            Mode::Bench => abi::Mode::Bench,
        },
        mem_size: memory.size,
        seed: u64::from_le_bytes(seed),
        arg: cli.arg,
        ndev: wants.len(),
        devices: [abi::Device::default(); abi::MAX_DEVICES],
    };
    for (i, w) in wants.iter().enumerate() {
        let base = abi::MMIO_BASE + i as u64 * abi::MMIO_SIZE;
        let kind = if w.kind == Kind::Blk { 2 } else { 4 };
        boot.devices[i] = abi::Device { base, size: abi::MMIO_SIZE, kind, irq: 0 };
    }
    let mut vm = vm::Vm::new(&kvm, &memory, &mut guest, &boot)?;
    let mut counts = std::collections::HashMap::<&str, usize>::new();
    let mut slots = Vec::new();
    for (i, w) in wants.into_iter().enumerate() {
        let n = counts.entry(w.kind.name()).or_default();
        let name = format!("{}{}", w.kind.name(), n);
        *n += 1;
        let notify =
            vm.ioeventfd(abi::MMIO_BASE + i as u64 * abi::MMIO_SIZE + device::NOTIFY_OFFSET)?;
        let compromised = cli.compromised.as_deref() == Some(name.as_str());
        slots.push(start(name, w, cli.devices, compromised, &memory, notify)?);
    }
    if let Some(c) = cli.compromised.as_deref().filter(|c| !slots.iter().any(|s| s.name == *c)) {
        return Err(Error::Guest(format!("--compromised {c}: no such device")));
    }
    let end = vm.run(&mut slots);
    for s in &mut slots {
        match s.stats() {
            Ok(st) => eprintln!("brig-vmm: {}: {}", s.name, st.describe()),
            Err(why) => eprintln!("brig-vmm: {}: {why}", s.name),
        }
    }
    if let Some((_, t0)) = vm.marks.first() {
        for (label, t) in &vm.marks {
            eprintln!("brig-vmm: mark {label} at {:.3} ms", (*t - *t0).as_secs_f64() * 1e3);
        }
    }
    Ok(end)
}

fn main() -> ExitCode {
    brig_component::dispatch(&device::process::ENTRIES);
    let cli = Cli::parse();
    match run(cli) {
        Ok(vm::End::Exit(status)) => ExitCode::from(status.min(119) as u8),
        Ok(vm::End::Stopped(why)) => {
            eprintln!("brig-vmm: the VM stopped: {why}");
            ExitCode::from(VM_STOPPED)
        }
        Err(e) => {
            eprintln!("brig-vmm: {e}");
            ExitCode::from(SETUP_FAILED)
        }
    }
}
