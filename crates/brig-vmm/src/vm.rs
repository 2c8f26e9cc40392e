//! The virtual machine: guest memory in a sealed memfd, the boot state of docs/vmm.md (page
//! tables, GDT, long mode, the device table), the ELF guest, and the vCPU loop that routes
//! port I/O (serial, exit, marks) and MMIO (device windows) exits.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Instant;

use brig_vmm_abi as abi;
use kvm_bindings::{kvm_fpu, kvm_segment};
use kvm_ioctls::{Kvm, VcpuExit};
use linux_loader::loader::{elf::Elf, KernelLoader};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vm_superio::serial::NoEvents;
use vm_superio::{Serial, Trigger};

use crate::bus::Slot;
use crate::Error;

/// The guest's memory: the memfd (sealed against shrinking and growing, so devices can map it
/// as `Shared`) and the VMM's own mapping of it.
#[derive(Debug)]
pub struct Memory {
    pub fd: File,
    pub size: u64,
    pub map: Arc<GuestMemoryMmap>,
}

impl Memory {
    /// A memfd of `size` bytes, sealed against shrinking and growing.
    pub fn memfd(size: u64) -> Result<File, Error> {
        let step = |s: &'static str| move |e| Error::io(s, "guest memory", e);
        let fd = File::from(
            brig_sys::fdpass::memfd("brig-vmm guest", brig_sys::fdpass::MFD_NOEXEC_SEAL)
                .map_err(step("memfd_create"))?,
        );
        fd.set_len(size).map_err(step("ftruncate"))?;
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        brig_sys::fdpass::add_seals(fd.as_fd(), seals).map_err(step("seal"))?;
        Ok(fd)
    }

    /// Maps `fd` (from [`memfd`](Self::memfd)) as the VMM's guest memory.
    pub fn map(fd: File, size: u64) -> Result<Memory, Error> {
        let dup = fd.try_clone().map_err(|e| Error::io("dup", "guest memory", e))?;
        let map = crate::device::map_memory(dup, size)
            .map_err(|e| Error::io("mmap", "guest memory", e))?;
        Ok(Memory { fd, size, map })
    }
}

/// The serial port raises no interrupt (the guest polls nothing; it only writes).
struct NoIrq;
impl Trigger for NoIrq {
    type E = ();
    fn trigger(&self) -> Result<(), ()> {
        Ok(())
    }
}

/// The console's output: vm-superio flushes after every byte; this writes whole lines.
struct Lines(Vec<u8>);
impl Write for Lines {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.0.ends_with(b"\n") || self.0.len() >= 4096 {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&self.0).and_then(|_| out.flush());
            self.0.clear();
        }
        Ok(())
    }
}

/// How the VM ended.
#[derive(Debug)]
pub enum End {
    /// The guest wrote its status to the exit port.
    Exit(u32),
    /// It stopped another way (halt, triple fault, an exit KVM could not handle): why.
    Stopped(String),
}

/// The vCPU's registers at entry: 64-bit long mode as docs/vmm.md says.
fn enter(vcpu: &kvm_ioctls::VcpuFd, entry: u64) -> Result<(), kvm_ioctls::Error> {
    let mut s = vcpu.get_sregs()?;
    let code = kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: 0x8,
        type_: 0xb,
        present: 1,
        s: 1,
        l: 1,
        g: 1,
        ..Default::default()
    };
    let data = kvm_segment { selector: 0x10, type_: 0x3, l: 0, db: 1, ..code };
    s.cs = code;
    (s.ds, s.es, s.fs, s.gs, s.ss) = (data, data, data, data, data);
    s.gdt.base = abi::GDT_ADDR;
    s.gdt.limit = 3 * 8 - 1;
    s.cr3 = abi::PML4_ADDR;
    s.cr4 = 0x20 | 0x200 | 0x400; // PAE, OSFXSR, OSXMMEXCPT (the guest's code uses SSE)
    s.cr0 = 0x1 | 0x2 | 0x10 | 0x20 | 0x1_0000 | 0x8000_0000; // PE MP ET NE WP PG
    s.efer = 0x100 | 0x400; // LME, LMA
    vcpu.set_sregs(&s)?;
    vcpu.set_fpu(&kvm_fpu { fcw: 0x37f, mxcsr: 0x1f80, ..Default::default() })?;
    let regs = kvm_bindings::kvm_regs {
        rip: entry,
        rsp: abi::STACK_TOP - 8,
        rdi: abi::TABLE_ADDR,
        rflags: 2,
        ..Default::default()
    };
    vcpu.set_regs(&regs)
}

/// Page tables (the first 4 GiB identity-mapped in 2 MiB pages), the GDT and the device table.
fn boot_state(mem: &GuestMemoryMmap, boot: &abi::Boot) -> Result<(), vm_memory::GuestMemoryError> {
    mem.write_obj(abi::PDPT_ADDR | 3, GuestAddress(abi::PML4_ADDR))?;
    let dirs = abi::IDENTITY_MAPPED >> 30;
    for i in 0..dirs {
        let pd = abi::PD_ADDR + i * 0x1000;
        mem.write_obj(pd | 3, GuestAddress(abi::PDPT_ADDR + i * 8))?;
        for j in 0..512u64 {
            let page = ((i << 30) + (j << 21)) | 0x83; // present, writable, 2 MiB
            mem.write_obj(page, GuestAddress(pd + j * 8))?;
        }
    }
    let gdt: [u64; 3] = [0, 0x00af_9b00_0000_ffff, 0x00cf_9300_0000_ffff];
    for (i, g) in gdt.iter().enumerate() {
        mem.write_obj(*g, GuestAddress(abi::GDT_ADDR + i as u64 * 8))?;
    }
    let mut table = vec![0u8; abi::TABLE_SIZE];
    boot.encode(&mut table);
    mem.write_slice(&table, GuestAddress(abi::TABLE_ADDR))
}

/// A machine ready to run: KVM's VM with its memory, one vCPU at the guest's entry.
pub struct Vm {
    machine: brig_sys::kvm::Machine,
    serial: Serial<NoIrq, NoEvents, Lines>,
    /// Host times of the guest's marks: bench mode only, at most [`MAX_MARKS`].
    pub marks: Vec<(u32, Instant)>,
    bench: bool,
}

/// The most marks kept: a guest cannot grow the VMM's memory by marking.
const MAX_MARKS: usize = 1024;

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm").field("machine", &self.machine).finish()
    }
}

impl Vm {
    /// Loads `guest` (an ELF) into `memory`, writes the boot state with `boot`'s table, and
    /// sets the vCPU at the guest's entry.
    pub fn new(
        kvm: &Kvm,
        memory: &Memory,
        guest: &mut File,
        boot: &abi::Boot,
    ) -> Result<Vm, Error> {
        let kvm_err =
            |s: &'static str| move |e: kvm_ioctls::Error| Error::io(s, "/dev/kvm", e.into());
        let mut machine = brig_sys::kvm::Machine::new(kvm, memory.map.clone())
            .map_err(|e| Error::io("KVM_CREATE_VM", "/dev/kvm", e))?;
        let loaded = Elf::load(&*memory.map, None, guest, Some(GuestAddress(abi::LOAD_MIN)))
            .map_err(|e| Error::Guest(format!("cannot load the guest ELF: {e}")))?;
        boot_state(&memory.map, boot)
            .map_err(|e| Error::Guest(format!("cannot write the boot state: {e}")))?;
        let i = machine.add_vcpu(0).map_err(|e| Error::io("KVM_CREATE_VCPU", "/dev/kvm", e))?;
        let cpuid = kvm
            .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
            .map_err(kvm_err("KVM_GET_SUPPORTED_CPUID"))?;
        machine.vcpu(i).set_cpuid2(&cpuid).map_err(kvm_err("KVM_SET_CPUID2"))?;
        enter(machine.vcpu(i), loaded.kernel_load.0)
            .map_err(kvm_err("set the vCPU's registers"))?;
        let bench = boot.mode == abi::Mode::Bench;
        Ok(Vm { machine, serial: Serial::new(NoIrq, Lines(Vec::new())), marks: Vec::new(), bench })
    }

    /// Has KVM signal `evt` when the guest writes to device `i`'s QueueNotify register.
    pub fn notify(&self, i: usize, evt: std::os::fd::BorrowedFd<'_>) -> Result<(), Error> {
        let addr = abi::MMIO_BASE + i as u64 * abi::MMIO_SIZE + crate::device::NOTIFY_OFFSET;
        self.machine.ioeventfd(evt, addr).map_err(|e| Error::io("KVM_IOEVENTFD", "/dev/kvm", e))
    }

    /// Runs the vCPU until the guest exits or the VM stops.
    pub fn run(&mut self, slots: &mut [Slot]) -> End {
        let n = slots.len();
        let window = move |addr: u64| {
            let i = addr.checked_sub(abi::MMIO_BASE)? / abi::MMIO_SIZE;
            let i = usize::try_from(i).ok().filter(|i| *i < n)?;
            Some((i, addr - abi::MMIO_BASE - i as u64 * abi::MMIO_SIZE))
        };
        let end = loop {
            let exit = match self.machine.vcpu(0).run() {
                Ok(exit) => exit,
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => continue,
                Err(e) => break End::Stopped(format!("KVM_RUN: {e}")),
            };
            match exit {
                VcpuExit::IoOut(port, data) => match port {
                    abi::EXIT_PORT => break End::Exit(le32(data)),
                    abi::MARK_PORT if self.bench && self.marks.len() < MAX_MARKS => {
                        self.marks.push((le32(data), Instant::now()))
                    }
                    p if (abi::COM1..abi::COM1 + 8).contains(&p) => {
                        let _ = self.serial.write((p - abi::COM1) as u8, data[0]);
                    }
                    _ => {}
                },
                VcpuExit::IoIn(port, data) => {
                    let v = match port {
                        p if (abi::COM1..abi::COM1 + 8).contains(&p) => {
                            self.serial.read((p - abi::COM1) as u8)
                        }
                        _ => 0xff,
                    };
                    data.fill(v);
                }
                VcpuExit::MmioRead(addr, data) => match window(addr) {
                    Some((i, off)) => slots[i].read(off, data),
                    None => data.fill(0xff),
                },
                VcpuExit::MmioWrite(addr, data) => {
                    if let Some((i, off)) = window(addr) {
                        slots[i].write(off, data)
                    }
                }
                VcpuExit::Hlt => {
                    break End::Stopped("the guest halted without writing its status".into())
                }
                VcpuExit::Shutdown => {
                    break End::Stopped("the guest shut down (a triple fault?)".into())
                }
                other => {
                    break End::Stopped(format!("an exit brig-vmm does not handle: {other:?}"))
                }
            }
        };
        let end = match end {
            End::Stopped(why) => End::Stopped(format!("{why}; {}", self.where_())),
            e => e,
        };
        let rest = std::mem::take(&mut self.serial.writer_mut().0);
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&rest).and_then(|_| out.flush());
        end
    }
}

impl Vm {
    /// Where the vCPU stopped: its instruction pointer and the bytes there.
    fn where_(&mut self) -> String {
        let Ok(regs) = self.machine.vcpu(0).get_regs() else { return "no registers".into() };
        let mut code = [0u8; 16];
        let _ = self.machine.memory().read_slice(&mut code, GuestAddress(regs.rip));
        let sr = self.machine.vcpu(0).get_sregs().unwrap_or_default();
        format!(
            "rip {:#x}, code {:02x?}, cr0 {:#x} cr4 {:#x} efer {:#x}",
            regs.rip, code, sr.cr0, sr.cr4, sr.efer
        )
    }
}

fn le32(data: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    let n = data.len().min(4);
    b[..n].copy_from_slice(&data[..n]);
    u32::from_le_bytes(b)
}
