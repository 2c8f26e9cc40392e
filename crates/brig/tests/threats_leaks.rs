//! Information leaks (THREATS.md): environment, host pids, hostname, /sys, kernel logs, identity.

mod common;
use common::*;
use std::process::Command;

#[test]
fn environment_is_scrubbed() {
    for who in everyone() {
        let mut c = command(who, &brig_bin(), &["run", "--", "env"]);
        let o = c.env("BRIG_SECRET", "hunter2").output().expect("brig");
        assert!(!stdout(&o).contains("hunter2"), "{who:?}: {}", stdout(&o));
        let names: Vec<String> =
            stdout(&o).lines().filter_map(|l| l.split('=').next().map(String::from)).collect();
        for n in &names {
            assert!(
                ["PATH", "HOME", "LANG", "TERM"].contains(&n.as_str()),
                "unexpected variable {n}"
            );
        }
        let mut c = command(who, &brig_bin(), &["run", "--env", "BRIG_SECRET", "--", "env"]);
        let o = c.env("BRIG_SECRET", "hunter2").output().expect("brig");
        assert!(stdout(&o).contains("hunter2"), "control: --env passes it");
    }
}

#[test]
fn host_pids_are_invisible() {
    let probe = format!("[ -e /proc/{}/status ] && echo ESCAPED; [ $(ls -d /proc/[0-9]* | wc -l) -le 8 ] || echo ESCAPED many; true", std::process::id());
    for who in everyone() {
        assert_blocked(&run(who, &["--", "/bin/sh", "-c", &probe]), "host pids");
        let bare =
            command(who, std::path::Path::new("/bin/sh"), &["-c", &probe]).output().expect("bare");
        assert_escaped(&bare, "control: bare");
    }
}

#[test]
fn hostname_is_private() {
    let host =
        std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname").trim().to_string();
    let probe =
        format!("[ \"$(cat /proc/sys/kernel/hostname)\" = '{host}' ] && echo ESCAPED; true");
    for who in everyone() {
        assert_blocked(&run(who, &["--", "/bin/sh", "-c", &probe]), "hostname");
        assert_escaped(
            &run_knocked_out(who, &["56&0x04000000=22"], &["--", "/bin/sh", "-c", &probe]),
            "control: no uts ns",
        );
    }
}

#[test]
fn sys_and_kernel_logs_are_closed() {
    let probe = "ls /sys/kernel >/dev/null 2>&1 && echo ESCAPED sys; dmesg >/dev/null 2>&1 && echo ESCAPED dmesg; \
                 head -c1 /dev/kmsg >/dev/null 2>&1 && echo ESCAPED kmsg; true";
    for who in everyone() {
        assert_blocked(&run(who, &["--", "/bin/sh", "-c", probe]), "sys/logs");
    }
    if brig_sys::process::ids().0 == 0 {
        let o = Command::new("/bin/sh").args(["-c", probe]).output().expect("bare root");
        assert_escaped(&o, "control: bare root");
    }
}

#[test]
fn program_is_never_host_root_and_has_no_capabilities() {
    for who in everyone() {
        let marker = format!("brig-uid-{}", std::process::id());
        let mut c = command(
            who,
            &brig_bin(),
            &[
                "run",
                "--",
                "/bin/bash",
                "-c",
                &format!("grep Cap /proc/self/status; exec -a {marker} sleep 3"),
            ],
        );
        let child = c.stdout(std::process::Stdio::piped()).spawn().expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(700));
        let pids =
            Command::new("pgrep").args(["-f", &format!("^{marker}")]).output().expect("pgrep");
        let pid = stdout(&pids).lines().next().unwrap_or("").trim().to_string();
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status of the program");
        let uid_line = status.lines().find(|l| l.starts_with("Uid:")).expect("Uid");
        let o = child.wait_with_output().expect("wait");
        assert!(
            !uid_line.split_whitespace().skip(1).any(|u| u == "0"),
            "{who:?}: program is host root: {uid_line}"
        );
        let caps = stdout(&o);
        for l in caps.lines() {
            assert!(l.ends_with("0000000000000000"), "{who:?}: capability left: {l}");
        }
    }
}

#[test]
fn host_cgroup_path_is_hidden() {
    // The cgroup namespace is rooted at the prison's own cgroup: /proc/self/cgroup shows "/".
    let probe = "grep -v ':/$' /proc/self/cgroup | grep -q . && echo ESCAPED; true";
    let host = std::fs::read_to_string("/proc/self/cgroup").expect("cgroup");
    assert!(
        host.lines().any(|l| !l.ends_with(":/")),
        "this host's own cgroups are all at the root; the control cannot show a leak:\n{host}"
    );
    for who in everyone() {
        assert_blocked(&run(who, &["--", "/bin/sh", "-c", probe]), "cgroup path");
        // The control needs a cgroup of brig's own (--mem) to show its path.
        if !mem_limit_works(who) {
            continue;
        }
        let o = run_knocked_out(
            who,
            &["272&0x02000000=22"],
            &["--mem", "64MiB", "--", "/bin/sh", "-c", probe],
        );
        assert_escaped(&o, "control: no cgroup namespace");
    }
}
