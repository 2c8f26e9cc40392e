//! The cost of starting and of restarting a component (benches/components.sh): N times, a
//! component is stopped (SIGKILL of its brig, as after a crash) and the next call restarts it
//! (a new brig, prison, exec and hello) and gets its answer. Prints p50 and p99 in µs of a
//! first start and of a restart followed by one call.
//!
//!   restart N

use std::time::{Duration, Instant};

use brig_component::{Component, Entry, Restart, Spec};
use brig_ipc::Channel;

fn echo(mut ch: Channel) -> i32 {
    while let Ok(r) = ch.next_request::<u64>(Duration::from_secs(3600)) {
        if ch.reply(r.id, Ok(r.msg)).is_err() {
            return 1;
        }
    }
    0
}

const ECHO: Entry = Entry {
    name: "echo",
    protocol: "echo/1",
    serve: echo,
    syscalls: &[],
    limits: brig_ipc::Limits::DEFAULT,
};

fn percentiles(mut t: Vec<u64>) -> (u64, u64) {
    t.sort_unstable();
    (t[t.len() / 2], t[t.len() * 99 / 100])
}

fn main() {
    brig_component::dispatch(&[ECHO]);
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(50);
    let restart = Restart::OnFailure {
        backoff: Duration::ZERO,
        max: u32::MAX,
        within: Duration::from_secs(1),
    };
    let spec = Spec { restart, memory: None, ..Spec::new(ECHO) };
    let mut starts = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let c = Component::start(spec.clone()).expect("start");
        starts.push(t.elapsed().as_micros() as u64);
        drop(c);
    }
    let mut c = Component::start(spec).expect("start");
    let mut restarts = Vec::new();
    for i in 0..n as u64 {
        c.kill("bench".into());
        let t = Instant::now();
        let v = c.call::<u64, u64>(i, Duration::from_secs(10)).expect("call");
        restarts.push(t.elapsed().as_micros() as u64);
        assert_eq!(v.verify(|v| if v == i { Ok(v) } else { Err(v) }), Ok(i));
    }
    let (s50, s99) = percentiles(starts);
    let (r50, r99) = percentiles(restarts);
    println!("start p50 {s50} p99 {s99}");
    println!("restart+call p50 {r50} p99 {r99}");
}
