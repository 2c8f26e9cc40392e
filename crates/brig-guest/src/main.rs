//! brig-guest: runs *inside* brig-vmm's virtual machine, on the guest side of the boundary. A
//! bare-metal program (no_std, entered in long mode as docs/vmm.md says) that finds the
//! virtio-mmio devices in the VMM's table, drives them with the third-party `virtio-drivers`
//! crate, and reports a checklist on the serial port; or, in hostile mode, attacks them.
#![no_std]
#![no_main]

mod bench;
mod check;
mod hal;
mod hostile;
mod io;

use brig_vmm_abi::{Boot, Mode, TABLE_SIZE};

/// Checks passed and failed, printed as they happen.
#[derive(Debug, Default)]
pub struct Report {
    pub ok: u32,
    pub failed: u32,
}

impl Report {
    pub fn check(&mut self, what: core::fmt::Arguments, good: bool) {
        if good {
            self.ok += 1;
            println!("ok {what}");
        } else {
            self.failed += 1;
            println!("FAILED {what}");
        }
    }
}

/// Ends the VM with a message and status 2 (the guest could not go on).
pub fn fail(why: &str) -> ! {
    println!("brig-guest: {why}");
    io::exit(2)
}

/// The entry point: `rdi` holds the device table's address.
#[no_mangle]
#[link_section = ".text._start"]
pub extern "C" fn _start(table: u64) -> ! {
    // SAFETY: the boot state maps the table's page at `table` (docs/vmm.md); it is only read.
    let page = unsafe { core::slice::from_raw_parts(table as *const u8, TABLE_SIZE) };
    let Some(boot) = Boot::decode(page) else { fail("no device table at rdi") };
    println!("brig-guest: {} devices, mode {:?}", boot.ndev, boot.mode);
    let mut report = Report::default();
    match boot.mode {
        Mode::Check => check::run(&boot, &mut report),
        Mode::Hostile => hostile::run(&boot, &mut report),
        Mode::Bench => bench::run(&boot, &mut report),
    }
    println!("BRIG-GUEST-DONE ok={} failed={}", report.ok, report.failed);
    io::exit(report.failed.min(1))
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    println!("brig-guest: panic: {info}");
    io::exit(3)
}
