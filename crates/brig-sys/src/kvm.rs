//! KVM's one unsafe call: `KVM_SET_USER_MEMORY_REGION` hands the kernel a range of this
//! process's address space, which the guest then reads and writes. [`Machine`] owns the
//! mapping and the VM together; when it is dropped it first takes every slot away from the VM
//! (a vCPU fd that outlives it then reaches no memory of ours), and only then unmaps, so the
//! kernel can never touch the range after it is unmapped (and perhaps reused).

use std::io;
use std::sync::Arc;

use std::os::fd::{BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

use kvm_ioctls::{IoEventAddress, Kvm, NoDatamatch, VcpuFd, VmFd};
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};
use vmm_sys_util::eventfd::EventFd;

/// A VM with its guest memory and vCPUs.
#[derive(Debug)]
pub struct Machine {
    vcpus: Vec<VcpuFd>,
    vm: VmFd,
    memory: Arc<GuestMemoryMmap>,
    /// The slots given to the VM: (slot, guest address).
    slots: Vec<(u32, u64)>,
}

impl Machine {
    /// A VM on `kvm` whose guest-physical memory is `memory`, one slot per region.
    pub fn new(kvm: &Kvm, memory: Arc<GuestMemoryMmap>) -> io::Result<Machine> {
        let vm = kvm.create_vm().map_err(io::Error::from)?;
        let mut slots = Vec::new();
        for (slot, region) in memory.iter().enumerate() {
            let host = memory
                .get_host_address(region.start_addr())
                .map_err(|e| io::Error::other(e.to_string()))?;
            let r = kvm_bindings::kvm_userspace_memory_region {
                slot: slot as u32,
                flags: 0,
                guest_phys_addr: region.start_addr().0,
                memory_size: region.len(),
                userspace_addr: host as u64,
            };
            // SAFETY: `host..host+len` is the live mapping of `region`, owned by `memory`, which
            // this Machine holds (an Arc) until its Drop has deleted the slot, so the kernel
            // never uses the range once it can be unmapped.
            unsafe { vm.set_user_memory_region(r) }.map_err(io::Error::from)?;
            slots.push((slot as u32, region.start_addr().0));
        }
        Ok(Machine { vcpus: Vec::new(), vm, memory, slots })
    }

    /// Makes vCPU `id`; it stays owned by the Machine ([`vcpu`](Self::vcpu)).
    pub fn add_vcpu(&mut self, id: u64) -> io::Result<usize> {
        self.vcpus.push(self.vm.create_vcpu(id).map_err(io::Error::from)?);
        Ok(self.vcpus.len() - 1)
    }

    pub fn vcpu(&mut self, i: usize) -> &mut VcpuFd {
        &mut self.vcpus[i]
    }

    /// Has KVM signal `evt` (an eventfd) when the guest writes, with any width and value, to
    /// the MMIO address `addr`: the write does not leave the kernel.
    pub fn ioeventfd(&self, evt: BorrowedFd<'_>, addr: u64) -> io::Result<()> {
        let own = evt.try_clone_to_owned()?;
        // SAFETY: `into_raw_fd` gives up ownership of the duplicate, so the EventFd is its only
        // owner (KVM keeps its own reference; closing ours does not unregister).
        let evt = unsafe { EventFd::from_raw_fd(own.into_raw_fd()) };
        self.vm
            .register_ioevent(&evt, &IoEventAddress::Mmio(addr), NoDatamatch)
            .map_err(io::Error::from)
    }

    pub fn memory(&self) -> &Arc<GuestMemoryMmap> {
        &self.memory
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        for &(slot, guest_phys_addr) in &self.slots {
            let r = kvm_bindings::kvm_userspace_memory_region {
                slot,
                guest_phys_addr,
                memory_size: 0,
                ..Default::default()
            };
            // SAFETY: a region of size 0 deletes the slot: the kernel is given no memory.
            if unsafe { self.vm.set_user_memory_region(r) }.is_err() {
                // The VM may still use the range (a seccomp filter may forbid the deletion, as
                // brig-vmm's VMM does once it runs): never unmap it, then.
                std::mem::forget(Arc::clone(&self.memory));
            }
        }
    }
}

/// `/dev/kvm` is character device 10:232.
const KVM_RDEV: libc::dev_t = (10 << 8) | 232;

/// KVM from an fd of `/dev/kvm` handed over as a capability (a jailed VMM opens no path);
/// refused unless it is that device.
pub fn kvm_from_fd(fd: OwnedFd) -> io::Result<Kvm> {
    let meta = std::fs::File::from(fd.try_clone()?).metadata()?;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    if !meta.file_type().is_char_device() || meta.rdev() != KVM_RDEV {
        return Err(io::Error::other("not /dev/kvm (character device 10:232)"));
    }
    // SAFETY: `into_raw_fd` gives up ownership, so `Kvm` becomes the fd's only owner.
    Ok(unsafe { Kvm::from_raw_fd(fd.into_raw_fd()) })
}
