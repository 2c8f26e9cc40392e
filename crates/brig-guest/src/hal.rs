//! virtio-drivers' `Hal` for brig-vmm's boot state: memory is identity-mapped, so a physical
//! address is its virtual address; DMA buffers come from a static pool and are never freed (the
//! drivers allocate their queues once).

use core::ptr::{addr_of_mut, NonNull};
use core::sync::atomic::{AtomicUsize, Ordering};

use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

const POOL_PAGES: usize = 256;

#[repr(C, align(4096))]
struct Pool([u8; POOL_PAGES * PAGE_SIZE]);

static mut POOL: Pool = Pool([0; POOL_PAGES * PAGE_SIZE]);
static NEXT_PAGE: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug)]
pub struct IdentityHal;

// SAFETY: every address handed out is identity-mapped guest RAM (the pool, in .bss), each page
// handed out at most once, and shared buffers are the caller's own memory at its own address.
unsafe impl Hal for IdentityHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let first = NEXT_PAGE.fetch_add(pages, Ordering::Relaxed);
        if first + pages > POOL_PAGES {
            crate::fail("the DMA pool is exhausted");
        }
        // SAFETY: pages first..first+pages of the pool are handed out only here, once.
        let p = unsafe { (addr_of_mut!(POOL) as *mut u8).add(first * PAGE_SIZE) };
        // SAFETY: p..p+pages*PAGE_SIZE lies inside the pool (checked above).
        unsafe { p.write_bytes(0, pages * PAGE_SIZE) };
        (p as PhysAddr, NonNull::new(p).unwrap())
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(paddr as *mut u8).unwrap()
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.as_ptr() as *mut u8 as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}
