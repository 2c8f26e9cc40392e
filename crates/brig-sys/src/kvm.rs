//! KVM's one unsafe call: `KVM_SET_USER_MEMORY_REGION` hands the kernel a range of this
//! process's address space, which the guest then reads and writes. [`Machine`] owns the
//! mapping, the VM and its vCPUs together, and drops them vCPUs first, VM next, memory last, so
//! the kernel can never touch the range after it is unmapped (and perhaps reused).

use std::io;
use std::sync::Arc;

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

use kvm_ioctls::{IoEventAddress, Kvm, NoDatamatch, VcpuFd, VmFd};
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};
use vmm_sys_util::eventfd::EventFd;

/// A VM with its guest memory and vCPUs. Field order is drop order.
#[derive(Debug)]
pub struct Machine {
    vcpus: Vec<VcpuFd>,
    vm: VmFd,
    memory: Arc<GuestMemoryMmap>,
}

impl Machine {
    /// A VM on `kvm` whose guest-physical memory is `memory`, one slot per region.
    pub fn new(kvm: &Kvm, memory: Arc<GuestMemoryMmap>) -> io::Result<Machine> {
        let vm = kvm.create_vm().map_err(io::Error::from)?;
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
            // this Machine holds (an Arc) and drops only after the VM and every vCPU it made
            // (field order), so the kernel never uses the range once it can be unmapped.
            unsafe { vm.set_user_memory_region(r) }.map_err(io::Error::from)?;
        }
        Ok(Machine { vcpus: Vec::new(), vm, memory })
    }

    /// Makes vCPU `id`; it stays owned by the Machine ([`vcpu`](Self::vcpu)).
    pub fn add_vcpu(&mut self, id: u64) -> io::Result<usize> {
        self.vcpus.push(self.vm.create_vcpu(id).map_err(io::Error::from)?);
        Ok(self.vcpus.len() - 1)
    }

    pub fn vcpu(&mut self, i: usize) -> &mut VcpuFd {
        &mut self.vcpus[i]
    }

    /// An eventfd that KVM signals when the guest writes (any width, any value) to the MMIO
    /// address `addr`: the write does not leave the kernel.
    pub fn ioeventfd(&self, addr: u64) -> io::Result<OwnedFd> {
        let evt = EventFd::new(libc::EFD_CLOEXEC)?;
        self.vm
            .register_ioevent(&evt, &IoEventAddress::Mmio(addr), NoDatamatch)
            .map_err(io::Error::from)?;
        // SAFETY: `evt` stays open for the whole borrow; the clone is a new fd of our own (KVM
        // holds its own reference to the eventfd, so closing `evt` after does not unregister).
        unsafe { BorrowedFd::borrow_raw(evt.as_raw_fd()) }.try_clone_to_owned()
    }

    pub fn vm(&self) -> &VmFd {
        &self.vm
    }

    pub fn memory(&self) -> &Arc<GuestMemoryMmap> {
        &self.memory
    }
}

/// KVM from an fd of `/dev/kvm` handed over as a capability (a jailed VMM opens no path).
pub fn kvm_from_fd(fd: OwnedFd) -> Kvm {
    // SAFETY: `into_raw_fd` gives up ownership, so `Kvm` becomes the fd's only owner.
    unsafe { Kvm::from_raw_fd(fd.into_raw_fd()) }
}
