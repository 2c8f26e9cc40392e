//! The cost of an empty RPC (benches/components.sh): a child process answers over a seqpacket
//! socketpair (its stdin), first as a raw one-byte ping-pong, then as brig-ipc's `call` with an
//! empty request and reply. Prints p50 and p99 in ns of each, N round trips. Then 64 MiB
//! answers in sealed memfds (the child writes and seals one per request, the caller checks,
//! maps and reads every byte of it): p50 and p99 in ns per transfer, and GB/s at the p50.
//!
//!   pingpong N        (the child is this program again, with `--child MODE`)

use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use brig_ipc::{Channel, Dec, Enc, Limits, Wire};

const WAIT: Duration = Duration::from_secs(10);
const BLOB: usize = 64 << 20;
const BLOBS: usize = 30;

/// Bulk data in a sealed memfd: received as a read-only mapping, sent from a slice.
struct Blob(brig_sys::fdpass::SealedMap);
struct BlobRef<'a>(&'a [u8]);

impl Wire for BlobRef<'_> {
    fn encode(self, e: &mut Enc) {
        e.blob(self.0).expect("memfd");
    }
    fn decode(_: &mut Dec<'_>) -> Result<Self, brig_ipc::Error> {
        Err(brig_ipc::Error::Garbage("sent only"))
    }
}

impl Wire for Blob {
    fn encode(self, e: &mut Enc) {
        BlobRef(self.0.as_slice()).encode(e)
    }
    fn decode(d: &mut Dec<'_>) -> Result<Blob, brig_ipc::Error> {
        d.sealed(BLOB as u64).map(Blob)
    }
}

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
    let data = vec![7u8; BLOB];
    while let Ok(r) = c.next_request::<()>(WAIT) {
        let answer =
            if mode == "blob" { c.reply(r.id, Ok(BlobRef(&data))) } else { c.reply(r.id, Ok(())) };
        if answer.is_err() {
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
    for mode in ["raw", "rpc", "blob"] {
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
        } else if mode == "blob" {
            let mut c = Channel::new(ours.try_clone().expect("dup"), Limits::default());
            c.hello("pingpong", 1, WAIT).expect("hello");
            for _ in 0..BLOBS {
                let t = Instant::now();
                let b = c.call::<(), Blob>((), WAIT).expect("call");
                // Read every byte, as a receiver that validates it would.
                let sum: u64 = b.0.as_slice().iter().map(|&x| x as u64).sum();
                assert_eq!(sum, 7 * BLOB as u64);
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
        match mode {
            "blob" => {
                println!("blob64MiB p50 {p50} p99 {p99} GB/s {:.2}", BLOB as f64 / p50 as f64)
            }
            _ => println!("{mode} p50 {p50} p99 {p99}"),
        }
        let _ = kid.kill();
        let _ = kid.wait();
    }
}
