//! Test helper: simulates a kernel that lacks a feature, by installing a seccomp filter that
//! makes chosen syscalls fail, then exec'ing a command (normally `brig run --best-effort ...`).
//!
//! Usage: knockout NR[&ARG0MASK]=ERRNO [...] -- COMMAND [ARGS...]
//!   knockout 444=38 -- brig run ...            landlock_create_ruleset -> ENOSYS
//!   knockout 56&0x40000000=22 -- brig run ...   clone with CLONE_NEWNET -> EINVAL
//! It is how the tests prove that each layer's negative test can fail when the layer is off.

use std::os::unix::process::CommandExt;

use brig_sys::seccomp::{install, SockFilter};

const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
const ALLOW: u32 = 0x7fff_0000;
const ERRNO: u32 = 0x0005_0000;

fn ins(code: u16, jt: u8, jf: u8, k: u32) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

fn parse(spec: &str) -> Option<(u32, Option<u32>, u32)> {
    let (lhs, errno) = spec.split_once('=')?;
    let num = |s: &str| match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    };
    let (nr, mask) = match lhs.split_once('&') {
        Some((n, m)) => (num(n)?, Some(num(m)?)),
        None => (num(lhs)?, None),
    };
    Some((nr, mask, num(errno)?))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(split) = args.iter().position(|a| a == "--") else {
        eprintln!("usage: knockout NR[&ARG0MASK]=ERRNO... -- COMMAND [ARGS...]");
        std::process::exit(2);
    };
    let mut prog = vec![ins(LD_W_ABS, 0, 0, 0)];
    for spec in &args[..split] {
        let Some((nr, mask, errno)) = parse(spec) else {
            eprintln!("knockout: bad rule {spec:?}");
            std::process::exit(2);
        };
        match mask {
            None => {
                prog.push(ins(JEQ_K, 0, 1, nr));
                prog.push(ins(RET_K, 0, 0, ERRNO | errno));
            }
            Some(m) => {
                prog.push(ins(JEQ_K, 0, 4, nr));
                prog.push(ins(LD_W_ABS, 0, 0, 16));
                prog.push(ins(JSET_K, 0, 1, m));
                prog.push(ins(RET_K, 0, 0, ERRNO | errno));
                prog.push(ins(LD_W_ABS, 0, 0, 0));
            }
        }
    }
    prog.push(ins(RET_K, 0, 0, ALLOW));
    if let Err(e) = brig_sys::process::prctl(libc_nnp(), 1).and_then(|_| install(&prog)) {
        eprintln!("knockout: cannot install filter: {e}");
        std::process::exit(2);
    }
    let err = std::process::Command::new(&args[split + 1]).args(&args[split + 2..]).exec();
    eprintln!("knockout: exec {}: {err}", args[split + 1]);
    std::process::exit(127);
}

/// PR_SET_NO_NEW_PRIVS (38), spelled out to keep libc out of this helper's dependencies.
fn libc_nnp() -> i32 {
    38
}
