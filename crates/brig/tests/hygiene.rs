//! The host stays clean: after many runs (normal, ended by every limit, and brig itself killed
//! with SIGKILL) no process, mount, cgroup or temp file is left, and brig's own fd count is
//! unchanged. BRIG_HYGIENE_RUNS sets the count (default 1000).

mod common;
use common::*;
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

fn mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo")
}

fn cgroups() -> BTreeSet<String> {
    let out = Command::new("find")
        .args(["/sys/fs/cgroup", "-maxdepth", "4", "-type", "d", "-name", "brig.*"])
        .output()
        .expect("find");
    stdout(&out).lines().map(String::from).collect()
}

fn tmp_entries() -> BTreeSet<String> {
    std::fs::read_dir("/tmp")
        .expect("tmp")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("brig-test-"))
        .collect()
}

fn brig_procs() -> Vec<String> {
    let o = Command::new("pgrep").args(["-a", "-f", "^brig-hygiene"]).output().expect("pgrep");
    stdout(&o).lines().map(String::from).collect()
}

#[test]
fn thousand_runs_leave_nothing_behind() {
    let n: usize =
        std::env::var("BRIG_HYGIENE_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let (m0, c0, t0) = (mounts(), cgroups(), tmp_entries());
    let who = everyone();
    let cases: &[&[&str]] = &[
        &["--", "/bin/bash", "-c", "exec -a brig-hygiene-ok true"],
        &["--wall", "100ms", "--", "/bin/bash", "-c", "exec -a brig-hygiene-wall sleep 5"],
        &["--cpu", "1s", "--", "/bin/sh", "-c", "while :; do :; done"],
        &["--mem", "64MiB", "--", "python3", "-c", "b=bytearray(200<<20)"],
        &[
            "--procs",
            "8",
            "--",
            "/bin/sh",
            "-c",
            "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 1 & done; wait",
        ],
        &["--fsize", "64k", "--", "/bin/sh", "-c", "head -c 1000000 /dev/zero > /tmp/f"],
        &[
            "--nofile",
            "8",
            "--",
            "/bin/sh",
            "-c",
            "exec 3</dev/null 4</dev/null 5</dev/null 6</dev/null 7</dev/null 8</dev/null",
        ],
        &["--", "no-such-program"],
        &["--ro", "/no/such/path", "--", "true"],
        // capabilities: the unix socket file must be gone after each run
        &[
            "--listen",
            "h=unix:/tmp/brig-hygiene-caps.sock",
            "--dir",
            "d=/usr/share",
            "--data",
            "x=/etc/hostname",
            "--",
            "true",
        ],
    ];
    for i in 0..n {
        let w = who[i % who.len()];
        // every 50th run, after the first few: slow or heavy cases; otherwise the plain run
        let case = if i % 50 < cases.len() && i >= 50 { cases[i % 50] } else { cases[0] };
        // every 5th plain run, the capability case instead (cheap, and it has state to leak)
        let case = if case == cases[0] && i % 5 == 4 { cases[cases.len() - 1] } else { case };
        let _ = run(w, case);
    }
    // brig itself SIGKILLed, a few times, with a prison running.
    for w in &who {
        for _ in 0..3 {
            let mut c = command(
                *w,
                &brig_bin(),
                &[
                    "run",
                    "--mem",
                    "64MiB",
                    "--",
                    "/bin/bash",
                    "-c",
                    "exec -a brig-hygiene-victim sleep 30",
                ],
            );
            let mut child = c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
            std::thread::sleep(Duration::from_millis(300));
            child.kill().expect("kill");
            child.wait().expect("wait");
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(brig_procs().is_empty(), "processes left: {:?}", brig_procs());
    assert_eq!(mounts(), m0, "mounts changed");
    assert_eq!(tmp_entries(), t0, "temp files left");
    // A killed brig cannot remove its cgroup: its reaper does, without waiting for another run.
    let end = std::time::Instant::now() + Duration::from_secs(3);
    while cgroups() != c0 && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(cgroups(), c0, "cgroups left");
}

#[test]
fn runner_fd_count_is_unchanged() {
    // brig's fd table while a prison runs, compared with a plain process spawned the same way
    // (which inherits the same fds from the test harness): brig adds only its pidfd, signalfd,
    // report pipe, go pipe and the broker's seccomp listener, and the same number every run.
    for who in everyone() {
        let count =
            |pid: u32| std::fs::read_dir(format!("/proc/{pid}/fd")).expect("fd dir").count();
        let mut base = command(who, std::path::Path::new("/bin/sleep"), &["1"])
            .stdout(Stdio::null())
            .spawn()
            .expect("sleep");
        std::thread::sleep(Duration::from_millis(100));
        let base_n = count(base.id());
        base.kill().expect("kill");
        base.wait().expect("wait");
        let mut extra = Vec::new();
        for _ in 0..3 {
            let mut c = command(who, &brig_bin(), &["run", "--", "/bin/sleep", "1"]);
            let mut child = c.stdout(Stdio::null()).spawn().expect("spawn");
            std::thread::sleep(Duration::from_millis(400));
            extra.push(count(child.id()) - base_n);
            child.wait().expect("wait");
        }
        assert!(
            extra.iter().all(|&n| n == extra[0]),
            "{who:?}: fd count changed between runs: {extra:?}"
        );
        assert!(extra[0] <= 5, "{who:?}: supervisor holds {} fds of its own", extra[0]);
    }
}
