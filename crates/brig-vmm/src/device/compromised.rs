//! A compromised device or VMM, for the tests only (`brig-vmm --compromised NAME|vmm`): the
//! process's own code, holding its real resources and under its last filter, runs an attacker's
//! first moves before it goes on, and says what each did. Its prison must refuse them all; the
//! test fails on any `ESCAPED`.

use std::fs::File;
use std::time::Duration;

pub fn say(what: &str, r: std::io::Result<()>) {
    let how = match r {
        Ok(()) => "ESCAPED".to_string(),
        Err(e) => format!("refused ({e})"),
    };
    eprintln!("compromised: {what}: {how}");
}

/// The attacker's moves, from inside a device that holds `memory` (guest memory, `size` bytes).
pub fn attack(memory: &File, size: u64) {
    say("open /etc/passwd", File::open("/etc/passwd").map(drop));
    say("list the host's processes (/proc)", std::fs::read_dir("/proc").map(drop));
    say("read another process's memory (/proc/1/mem)", std::fs::read("/proc/1/mem").map(drop));
    let mut peer = [0u8; 8];
    for pid in [1, 2, 3] {
        let r = brig_sys::notify::read_mem(pid, 0x40_0000, &mut peer).map(drop);
        say(&format!("process_vm_readv of pid {pid} (another device, the VMM)"), r);
    }
    say(
        "connect to 1.1.1.1:53",
        std::net::TcpStream::connect_timeout(&([1, 1, 1, 1], 53).into(), Duration::from_secs(1))
            .map(drop),
    );
    say("signal every process it can (kill -1)", brig_sys::process::kill(-1, libc::SIGKILL));
    say("signal pid 1 (its supervisor)", brig_sys::process::kill(1, libc::SIGKILL));
    say("grow guest memory", memory.set_len(size * 2));
    let again = memory.try_clone().map(|f| vm_memory::FileOffset::new(f, 0));
    let remap = again.and_then(|fo| {
        vm_memory::MmapRegion::<()>::from_file(fo, size as usize)
            .map(drop)
            .map_err(std::io::Error::other)
    });
    say("map guest memory a second time", remap);
    let exec = vm_memory::MmapRegion::<()>::build(
        None,
        4096,
        libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
    );
    say("map executable memory", exec.map(drop).map_err(std::io::Error::other));
    say("spawn a shell", std::process::Command::new("/bin/sh").status().map(drop));
    // The control: what the device itself needs still works under the same filters.
    let private = vm_memory::MmapRegion::<()>::build(
        None,
        4 << 20,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
    );
    let how = if private.is_ok() { "allowed" } else { "REFUSED" };
    eprintln!("compromised: control: map 4 MiB of private anonymous memory: {how}");
}
