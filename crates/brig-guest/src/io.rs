//! Port I/O: the serial console (COM1, a 16550 in brig-vmm), the exit port and the mark port
//! (docs/vmm.md, "Boot state").

use core::arch::asm;
use core::fmt;

use brig_vmm_abi::{COM1, EXIT_PORT, MARK_PORT};

fn outb(port: u16, v: u8) {
    // SAFETY: port I/O to brig-vmm's serial port: no memory is touched.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") v, options(nomem, nostack, preserves_flags))
    }
}

fn outl(port: u16, v: u32) {
    // SAFETY: port I/O to one of brig-vmm's own ports: no memory is touched.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") v, options(nomem, nostack, preserves_flags))
    }
}

/// Ends the VM with `status`; never returns (the VMM stops running this vCPU).
pub fn exit(status: u32) -> ! {
    outl(EXIT_PORT, status);
    loop {
        // SAFETY: halting with interrupts off only stops this vCPU.
        unsafe { asm!("cli; hlt", options(nomem, nostack)) }
    }
}

/// Notes the host's time under `label` (benchmarks).
pub fn mark(label: u32) {
    outl(MARK_PORT, label);
}

/// The serial console as a `fmt::Write`.
pub struct Serial;

impl fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            outb(COM1, b);
        }
        Ok(())
    }
}

#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::io::Serial, $($arg)*);
    }};
}
