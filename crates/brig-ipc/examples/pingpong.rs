//! The cost of an empty RPC (benches/components.sh): a child process answers over a seqpacket
//! socketpair (its stdin), first as a raw one-byte ping-pong, then as brig-ipc's `call` with an
//! empty request and reply. Prints p50 and p99 in ns of each, N round trips.
//!
//!   pingpong N        (the child is this program again, with `--child MODE`)

use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use brig_ipc::{Channel, Limits};

const WAIT: Duration = Duration::from_secs(10);

fn child(mode: &str) {
    let sock = std::io::stdin().as_fd().try_clone_to_owned().expect("stdin");
    let mut buf = [0u8; 64];
    if mode == "raw" {
        while let Ok(r) = brig_sys::fdpass::recv_msg(sock.as_fd(), &mut buf, false) {
            if r.len == 0 || brig_sys::fdpass::send_msg(sock.as_fd(), &buf[..r.len], &[]).is_err() {
                return;
            }
        }
        return;
    }
    let mut c = Channel::new(sock, Limits::default());
    c.hello("pingpong", 1, WAIT).expect("hello");
    while let Ok(r) = c.next_request::<()>(WAIT) {
        if c.reply(r.id, Ok(())).is_err() {
            return;
        }
    }
}

fn percentiles(mut t: Vec<u64>) -> (u64, u64) {
    t.sort_unstable();
    (t[t.len() / 2], t[t.len() * 99 / 100])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        return child(&args[2]);
    }
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let me = std::env::current_exe().expect("exe");
    for mode in ["raw", "rpc"] {
        let (ours, theirs) = brig_sys::fdpass::seqpacket_pair().expect("pair");
        let mut kid = Command::new(&me)
            .args(["--child", mode])
            .stdin(Stdio::from(theirs))
            .spawn()
            .expect("spawn");
        let mut times = Vec::with_capacity(n);
        if mode == "raw" {
            let mut buf = [0u8; 64];
            for _ in 0..n {
                let t = Instant::now();
                brig_sys::fdpass::send_msg(ours.as_fd(), b"p", &[]).expect("send");
                brig_sys::fdpass::recv_msg(ours.as_fd(), &mut buf, false).expect("recv");
                times.push(t.elapsed().as_nanos() as u64);
            }
        } else {
            let mut c = Channel::new(ours.try_clone().expect("dup"), Limits::default());
            c.hello("pingpong", 1, WAIT).expect("hello");
            for _ in 0..n {
                let t = Instant::now();
                c.call::<(), ()>((), WAIT).expect("call");
                times.push(t.elapsed().as_nanos() as u64);
            }
        }
        drop(ours);
        let (p50, p99) = percentiles(times);
        println!("{mode} p50 {p50} p99 {p99}");
        let _ = kid.kill();
        let _ = kid.wait();
    }
}
