//! brig-vmm: a small KVM VMM, on the host side of the guest boundary, whose every virtio
//! device runs in its own brig prison (docs/vmm.md). The VMM loads a 64-bit ELF guest, enters
//! it in long mode, gives it a serial console and virtio-mmio devices (rng, blk), and forwards
//! each device's register accesses to the device's process; the data path is shared guest
//! memory and an ioeventfd per device.
#![forbid(unsafe_code)]

mod bus;
mod device;
mod jail;
mod lockdown;
mod vm;

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use brig_component::Component;
use brig_vmm_abi as abi;
use clap::{Parser, ValueEnum};

use bus::{Carrier, Slot};
use device::process::{FromDevice, Kind, Local, ToDevice};
use jail::{FromLauncher, FromVmm, ToLauncher, ToVmm};

/// Guest RAM ends below the first device window.
const MAX_MEM_MIB: u64 = abi::MMIO_BASE >> 20;

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
    #[arg(long, value_name = "FILE", required_unless_present = "print_policy")]
    guest: Option<PathBuf>,
    /// Print the seccomp allow-list of each prison (the VMM's, each device type's) and exit.
    #[arg(long)]
    print_policy: bool,
    /// Guest memory in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(4..=MAX_MEM_MIB))]
    mem: u64,
    /// Each device prison's memory limit in MiB. The page cache of a blk image counts against
    /// it: a limit below the working set slows the device (docs/vmm.md, "Figures").
    #[arg(long, value_name = "MIB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(16..))]
    device_mem: u64,
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
    /// How many times each device's prison is replaced when its process fails, the replacement
    /// taking the queue up where the used ring says (devices in prisons only).
    #[arg(long, value_name = "N", default_value_t = 0)]
    restart: u32,
    /// Tests only: run the named device (`blk0`), or the VMM (`vmm`), with an exploit hook that
    /// attacks its prison.
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

impl Want {
    fn read_only(&self) -> bool {
        self.image.as_ref().is_some_and(|(_, ro)| *ro)
    }
}

fn wants(cli: &Cli) -> Result<Vec<Want>, Error> {
    let mut v: Vec<Want> = (0..cli.rng).map(|_| Want { kind: Kind::Rng, image: None }).collect();
    let blks = cli.blk.iter().map(|p| (p, false)).chain(cli.blk_ro.iter().map(|p| (p, true)));
    for (path, ro) in blks {
        let f = std::fs::OpenOptions::new().read(true).write(!ro).open(path);
        let f = f.map_err(|e| Error::io("open the image", path.display().to_string(), e))?;
        v.push(Want { kind: Kind::Blk, image: Some((f, ro)) });
    }
    if v.len() > abi::MAX_DEVICES {
        return Err(Error::Guest(format!("at most {} devices", abi::MAX_DEVICES)));
    }
    Ok(v)
}

/// Device names as the guest counts them: by kind, from 0 (`rng0`, `blk1`).
fn names(kinds: impl Iterator<Item = Kind>) -> Vec<String> {
    let mut counts = std::collections::HashMap::<&str, usize>::new();
    let mut name = |k: Kind| {
        let n = counts.entry(k.name()).or_default();
        *n += 1;
        format!("{}{}", k.name(), *n - 1)
    };
    kinds.map(&mut name).collect()
}

fn names_of(boot: &abi::Boot) -> Vec<String> {
    names(boot.devices[..boot.ndev].iter().map(|d| Kind::of_id(d.kind)))
}

/// `/dev/kvm`: the inherited `--kvm-fd`, or opened.
fn kvm_fd(cli: &Cli) -> Result<OwnedFd, Error> {
    match cli.kvm_fd {
        // A close-on-exec copy: the inherited one would reach every brig the launcher starts.
        Some(fd) => brig_sys::fdpass::claim_inherited(fd)
            .and_then(|f| f.try_clone())
            .map_err(|e| Error::io("claim --kvm-fd", fd.to_string(), e)),
        None => std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .map(OwnedFd::from)
            .map_err(|e| Error::io("open", "/dev/kvm", e)),
    }
}

/// The device table the guest finds at `rdi`.
fn table(cli: &Cli, wants: &[Want]) -> Result<abi::Boot, Error> {
    let mut seed = [0u8; 8];
    brig_sys::getrandom(&mut seed).map_err(|e| Error::io("getrandom", "the boot seed", e))?;
    let mut boot = abi::Boot {
        mode: match cli.mode {
            Mode::Check => abi::Mode::Check,
            Mode::Hostile => abi::Mode::Hostile,
            Mode::Bench => abi::Mode::Bench,
        },
        mem_size: cli.mem << 20,
        seed: u64::from_le_bytes(seed),
        arg: cli.arg,
        ndev: wants.len(),
        devices: [abi::Device::default(); abi::MAX_DEVICES],
    };
    for (i, w) in wants.iter().enumerate() {
        let base = abi::MMIO_BASE + i as u64 * abi::MMIO_SIZE;
        boot.devices[i] = abi::Device { base, size: abi::MMIO_SIZE, kind: w.kind.id(), irq: 0 };
    }
    Ok(boot)
}

/// Builds the machine on `memory` and runs it; `devices` makes the device slots once the VM
/// exists (their ioeventfds need it, in-process devices its memory). Prints, after the
/// guest's serial output, each device's figures and the guest's marks. The same in the VMM's
/// prison and in-process.
pub fn boot_and_run(
    kvm: &kvm_ioctls::Kvm,
    memory: File,
    size: u64,
    mut guest: File,
    boot: &abi::Boot,
    devices: impl FnOnce(&vm::Vm, &vm::Memory) -> Result<Vec<Slot>, Error>,
) -> Result<vm::End, Error> {
    if kvm.get_api_version() != 12 {
        return Err(Error::Guest("the KVM fd does not answer as /dev/kvm (API version 12)".into()));
    }
    let memory = vm::Memory::map(memory, size)?;
    let mut vm = vm::Vm::new(kvm, &memory, &mut guest, boot)?;
    let mut slots = devices(&vm, &memory)?;
    let end = vm.run(&mut slots);
    for s in &mut slots {
        let report = s.report();
        eprintln!("brig-vmm: {}: {report}", s.name);
    }
    if let Some((_, t0)) = vm.marks.first() {
        for (label, t) in &vm.marks {
            eprintln!("brig-vmm: mark {label} at {:.3} ms", (*t - *t0).as_secs_f64() * 1e3);
        }
    }
    Ok(end)
}

/// `--devices in-process`: one process, the VMM with each device on a thread of its own.
fn in_process(
    kvm: OwnedFd,
    memory: File,
    guest: File,
    boot: &abi::Boot,
    wants: Vec<Want>,
) -> Result<vm::End, Error> {
    let names = names_of(boot);
    let kvm = brig_sys::kvm::kvm_from_fd(kvm).map_err(|e| Error::io("check", "the KVM fd", e))?;
    boot_and_run(&kvm, memory, boot.mem_size, guest, boot, |vm, mem| {
        let mut slots = Vec::new();
        for (i, (w, name)) in wants.into_iter().zip(names).enumerate() {
            let fail = |why: String| Error::Device { name: name.clone(), why };
            let evt = brig_sys::fdpass::eventfd().map_err(|e| fail(e.to_string()))?;
            vm.notify(i, std::os::fd::AsFd::as_fd(&evt))?;
            let read_only = w.read_only();
            let backend = w
                .kind
                .backend(w.image.map(|(f, _)| f), read_only)
                .map_err(|e| fail(e.to_string()))?;
            let mmio = device::Mmio::new(backend, mem.map.clone());
            let local = Local::start(mmio, File::from(evt)).map_err(|e| fail(e.to_string()))?;
            slots.push(Slot::new(name, Carrier::Local(local), None));
        }
        Ok(slots)
    })
}

/// What starting device `name` takes, kept for its replacements (`--restart`).
struct Spare {
    name: String,
    spec: brig_component::Spec,
    notify: OwnedFd,
    image: Option<File>,
    read_only: bool,
}

impl Spare {
    /// Gives a started device its resources (`resume`: it replaces one that failed) and hands
    /// its channel over, for the VMM.
    fn set_up(
        &self,
        c: &mut Component,
        memory: &File,
        size: u64,
        resume: bool,
    ) -> Result<OwnedFd, String> {
        let dup =
            |f: &dyn std::os::fd::AsFd| f.as_fd().try_clone_to_owned().map_err(|e| e.to_string());
        let setup = ToDevice::Setup {
            memory: dup(memory)?,
            size,
            notify: dup(&self.notify)?,
            image: self.image.as_ref().map(|f| dup(f)).transpose()?,
            read_only: self.read_only,
            resume,
        };
        let ready = c
            .call::<ToDevice, FromDevice>(setup, Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        ready.verify(|a| match a {
            FromDevice::Ready => Ok(()),
            a => Err(format!("answered {a:?} to its setup")),
        })?;
        c.hand_over().map_err(|e| e.to_string())
    }
}

/// The launcher's side of the VMM's restart channel: a replacement prison for a device whose
/// process failed, at most `max` per device (the VMM is not trusted to ask within reason).
fn serve_restarts(
    ours: OwnedFd,
    spares: &[Spare],
    memory: &File,
    size: u64,
    max: u32,
    made: &Mutex<Vec<Component>>,
) {
    let mut ch = brig_ipc::Channel::new(ours, brig_ipc::Limits::DEFAULT);
    let mut count = vec![0u32; spares.len()];
    while let Ok(r) = ch.next_request::<ToLauncher>(Duration::from_secs(365 * 86400)) {
        let ToLauncher::Restart(i) = r.msg;
        let mut replace = || -> Result<FromLauncher, String> {
            let spare = spares.get(i as usize).ok_or("no such device")?;
            if count[i as usize] >= max {
                return Err(format!("{} was restarted {max} times already", spare.name));
            }
            count[i as usize] += 1;
            let mut c = Component::start(spare.spec.clone()).map_err(|e| e.to_string())?;
            let channel = spare.set_up(&mut c, memory, size, true);
            made.lock().unwrap_or_else(|p| p.into_inner()).push(c);
            Ok(FromLauncher::Restarted(channel?))
        };
        let answer = replace();
        if ch.reply(r.id, answer).is_err() {
            return;
        }
    }
}

/// `--devices process`: each device in its own prison, and the VMM in one too. This process,
/// the launcher, opens what the paths name and hands the prisons fds.
fn jailed(
    cli: &Cli,
    kvm: OwnedFd,
    memory: File,
    guest: File,
    boot: &abi::Boot,
    wants: Vec<Want>,
) -> Result<vm::End, Error> {
    let fail = |name: &str, why: String| Error::Device { name: name.to_string(), why };
    let mut spares = Vec::new();
    for (w, name) in wants.into_iter().zip(names_of(boot)) {
        let compromised = cli.compromised.as_deref() == Some(name.as_str());
        let spec =
            device::process::spec(w.kind.entry(compromised), &format!("{}M", cli.device_mem));
        let notify = brig_sys::fdpass::eventfd().map_err(|e| fail(&name, e.to_string()))?;
        let read_only = w.read_only();
        spares.push(Spare { name, spec, notify, image: w.image.map(|(f, _)| f), read_only });
    }
    // Every prison starts at once (each start is mostly waiting for brig to build it).
    let vmm =
        if cli.compromised.as_deref() == Some("vmm") { jail::VMM_COMPROMISED } else { jail::VMM };
    let mut specs = vec![device::process::spec(vmm, &format!("{}M", cli.mem + 64))];
    specs.extend(spares.iter().map(|s| s.spec.clone()));
    let mut started: Vec<Result<Component, brig_component::Error>> = std::thread::scope(|s| {
        let starting: Vec<_> =
            specs.into_iter().map(|spec| s.spawn(|| Component::start(spec))).collect();
        starting.into_iter().map(|t| t.join().expect("a start thread")).collect()
    });
    // Declared before the VMM, so that on every way out the VMM ends first: its end closes the
    // channels handed to it, which ends the devices.
    let replacements = Mutex::new(Vec::new());
    let mut devices = Vec::new();
    let mut vmm = started.remove(0).map_err(|e| fail("vmm", e.to_string()))?;
    let wait = Duration::from_secs(10);
    for (spare, c) in spares.iter().zip(started) {
        let name = &spare.name;
        let mut c = c.map_err(|e| fail(name, e.to_string()))?;
        let channel =
            spare.set_up(&mut c, &memory, boot.mem_size, false).map_err(|e| fail(name, e))?;
        devices.push(c);
        let notify = spare.notify.try_clone().map_err(|e| fail(name, e.to_string()))?;
        let added =
            vmm.call::<ToVmm, FromVmm>(ToVmm::Device { name: name.clone(), notify, channel }, wait);
        added.map_err(|e| fail("vmm", e.to_string()))?.verify(|a| match a {
            FromVmm::Added => Ok(()),
            a => Err(fail("vmm", format!("answered {a:?} to a device"))),
        })?;
    }
    let mut table = vec![0u8; abi::TABLE_SIZE];
    boot.encode(&mut table);
    let (ours, theirs) = match cli.restart {
        0 => (None, None),
        _ => {
            let (a, b) =
                brig_sys::fdpass::seqpacket_pair().map_err(|e| fail("vmm", e.to_string()))?;
            (Some(a), Some(b))
        }
    };
    let dup = memory.try_clone().map_err(|e| fail("vmm", e.to_string()))?;
    let run = ToVmm::Run {
        kvm,
        guest: guest.into(),
        memory: dup.into(),
        size: boot.mem_size,
        table,
        restarts: theirs,
    };
    let end = std::thread::scope(|s| {
        if let Some(ours) = ours {
            let (spares, memory, made) = (&spares, &memory, &replacements);
            s.spawn(move || serve_restarts(ours, spares, memory, boot.mem_size, cli.restart, made));
        }
        let end = match vmm.call::<ToVmm, FromVmm>(run, Duration::from_secs(365 * 86400)) {
            Ok(a) => a.verify(|a| match a {
                FromVmm::Exit(s) => Ok(vm::End::Exit(s)),
                FromVmm::Stopped(why) => Ok(vm::End::Stopped(why)),
                FromVmm::Added => Err(fail("vmm", "answered Added to the run".into())),
            }),
            Err(brig_component::Error::Refused { reason, .. }) => Err(Error::Guest(reason)),
            Err(e) => Err(fail("vmm", e.to_string())),
        };
        // The VMM first: its end closes the devices' channels and the restart channel, which
        // ends the devices and the restart thread.
        drop(vmm);
        end
    });
    // Each device's brig is waited for as it ends: all at once.
    let all =
        devices.into_iter().chain(replacements.into_inner().unwrap_or_else(|p| p.into_inner()));
    std::thread::scope(|s| all.for_each(|c| drop(s.spawn(move || drop(c)))));
    end
}

/// Each prison's allow-list, as brig installs it (with the three calls brig always keeps), and
/// the devices' own last filter.
fn print_policy() {
    let [rng, blk, ..] = device::process::ENTRIES;
    for (what, entry) in [("the VMM", jail::VMM), ("virtio-rng", rng), ("virtio-blk", blk)] {
        let mut list = device::process::spec(entry, "0").syscalls();
        list.extend(["execve", "execveat", "exit_group"]);
        list.sort_unstable();
        println!("{what} ({} syscalls): {}", list.len(), list.join(" "));
    }
    println!(
        "every device, once it has mapped guest memory, and the VMM, once the machine is built, \
         add: mmap with MAP_SHARED or PROT_EXEC, mprotect and pkey_mprotect with PROT_EXEC, and \
         ioctl but (the VMM's) KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS -> EPERM"
    );
}

fn run(cli: Cli) -> Result<vm::End, Error> {
    let wants = wants(&cli)?;
    if cli.restart > 0 && cli.devices != Devices::Process {
        return Err(Error::Guest(
            "--restart replaces device prisons: it needs --devices process".into(),
        ));
    }
    if let Some(c) = cli.compromised.as_deref() {
        if cli.devices != Devices::Process {
            return Err(Error::Guest(
                "--compromised attacks a device's prison: it needs --devices process".into(),
            ));
        }
        if c != "vmm" && !names(wants.iter().map(|w| w.kind)).iter().any(|n| n == c) {
            return Err(Error::Guest(format!("--compromised {c}: no such device")));
        }
    }
    let path = cli.guest.clone().unwrap_or_default();
    let guest = File::open(&path)
        .map_err(|e| Error::io("open the guest", path.display().to_string(), e))?;
    let kvm = kvm_fd(&cli)?;
    let memory = vm::Memory::memfd(cli.mem << 20)?;
    let boot = table(&cli, &wants)?;
    match cli.devices {
        Devices::InProcess => in_process(kvm, memory, guest, &boot, wants),
        Devices::Process => jailed(&cli, kvm, memory, guest, &boot, wants),
    }
}

fn main() -> ExitCode {
    let [rng, blk, rng_c, blk_c] = device::process::ENTRIES;
    brig_component::dispatch(&[jail::VMM, jail::VMM_COMPROMISED, rng, blk, rng_c, blk_c]);
    let cli = Cli::parse();
    if cli.print_policy {
        print_policy();
        return ExitCode::SUCCESS;
    }
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
