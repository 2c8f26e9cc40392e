//! Processes and signals (THREATS.md): nothing inside can signal, trace or outlive the prison.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A host process as `uid` (a canary the prison tries to kill).
fn canary(uid: u32) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new("/bin/sleep");
    c.arg("60").stdin(Stdio::null()).stdout(Stdio::null());
    if brig_sys::process::ids().0 == 0 {
        c.uid(uid).gid(uid);
    }
    c.spawn().expect("canary")
}

fn alive(c: &mut std::process::Child) -> bool {
    c.try_wait().expect("try_wait").is_none()
}

fn host_uid(who: Who) -> u32 {
    match who {
        Who::Root => 65534,
        Who::User(u) => u,
    }
}

#[test]
fn host_processes_cannot_be_signalled() {
    for who in everyone() {
        let mut c = canary(host_uid(who));
        let probe = format!(
            "kill -9 {0} 2>/dev/null; kill -9 -1 2>/dev/null; kill -STOP {0} 2>/dev/null; true",
            c.id()
        );
        let o = run(who, &["--", "/bin/sh", "-c", &probe]);
        std::thread::sleep(Duration::from_millis(100));
        assert!(alive(&mut c), "{who:?}: host canary killed from inside: {}", stderr(&o));
        // Control: the same kill, bare, as the same uid.
        let bare = format!("kill -9 {}", c.id());
        let _ = command(who, std::path::Path::new("/bin/sh"), &["-c", &bare]).status();
        std::thread::sleep(Duration::from_millis(100));
        let _ = c.kill();
        let st = c.wait().expect("wait");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(9), "control: bare kill should have killed the canary");
    }
}

#[test]
fn ptrace_and_process_vm_refused() {
    let probe = r#"
import ctypes, os, time, sys
l = ctypes.CDLL(None, use_errno=True)
pid = os.fork()
if pid == 0:
    time.sleep(5); os._exit(0)
if l.ptrace(16, pid, 0, 0) == 0:
    print("ESCAPED ptrace attach", flush=True)
buf = ctypes.create_string_buffer(8)
class iov(ctypes.Structure):
    _fields_ = [("b", ctypes.c_void_p), ("n", ctypes.c_size_t)]
a = iov(ctypes.addressof(buf), 8); b = iov(id(sys), 8)
if l.process_vm_readv(pid, ctypes.byref(a), 1, ctypes.byref(b), 1, 0) == 8:
    print("ESCAPED process_vm_readv", flush=True)
os.kill(pid, 9)
"#;
    for who in everyone() {
        assert_blocked(&run(who, &["--", "python3", "-c", probe]), "ptrace");
        assert_escaped(
            &run(who, &["--allow-syscalls", "@debug", "--", "python3", "-c", probe]),
            "control: @debug",
        );
    }
}

#[test]
fn host_namespaces_cannot_be_joined() {
    // The host's /proc/<pid>/ns files are not in the view; the prison's own cannot be re-joined.
    let probe = format!(
        "[ -d /proc/{}/ns ] && echo ESCAPED host pid visible; \
         python3 -c \"import ctypes,os;l=ctypes.CDLL(None);fd=os.open('/proc/1/ns/mnt',os.O_RDONLY);print('ESCAPED setns' if l.setns(fd,0)==0 else '')\" 2>/dev/null; true",
        std::process::id()
    );
    for who in everyone() {
        assert_blocked(&run(who, &["--", "/bin/sh", "-c", &probe]), "setns");
        let bare =
            command(who, std::path::Path::new("/bin/sh"), &["-c", &probe]).output().expect("bare");
        assert_escaped(&bare, "control: bare sees host pids");
    }
}

#[test]
fn nothing_outlives_the_prison() {
    for who in everyone() {
        let marker =
            format!("brig-orphan-{}-{:?}", std::process::id(), who).replace(['(', ')'], "");
        let probe = format!(
            "(setsid bash -c 'exec -a {marker} sleep 60' </dev/null >/dev/null 2>&1 &) ; sleep 0.2"
        );
        let o = run(who, &["--", "/bin/sh", "-c", &probe]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        std::thread::sleep(Duration::from_millis(200));
        let left =
            Command::new("pgrep").args(["-f", &format!("^{marker}")]).output().expect("pgrep");
        assert!(stdout(&left).trim().is_empty(), "{who:?}: {marker} outlived the prison");
        // Control: bare, the daemon survives its parent.
        let _ = command(who, std::path::Path::new("/bin/sh"), &["-c", &probe]).status();
        std::thread::sleep(Duration::from_millis(200));
        let left =
            Command::new("pgrep").args(["-f", &format!("^{marker}")]).output().expect("pgrep");
        assert!(!stdout(&left).trim().is_empty(), "control: bare daemon should survive");
        let _ = Command::new("pkill").args(["-f", &format!("^{marker}")]).status();
    }
}

#[test]
fn grandchildren_holding_stdout_die_at_the_deadline() {
    for who in everyone() {
        let t = Instant::now();
        let o = run(
            who,
            &[
                "--wall",
                "1s",
                "--",
                "/bin/sh",
                "-c",
                "(sleep 30 &) ; (setsid sleep 30 &) ; sleep 30",
            ],
        );
        assert_eq!(code(&o), 124, "{}", stderr(&o));
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{who:?}: stdout held open past the deadline"
        );
        assert!(
            stderr(&o).trim_end().lines().last().unwrap_or("").contains("wall-time limit"),
            "{}",
            stderr(&o)
        );
        // Control: `timeout` alone leaves the grandchild holding stdout.
        let t = Instant::now();
        let _ = command(
            who,
            std::path::Path::new("/usr/bin/timeout"),
            &["1", "/bin/sh", "-c", "(setsid sleep 3 &) ; sleep 30"],
        )
        .output();
        assert!(
            t.elapsed() >= Duration::from_millis(2500),
            "control: grandchild should have held stdout"
        );
    }
}

#[test]
fn core_limit_cannot_be_raised() {
    let probe = "python3 -c \"import resource as r;r.setrlimit(r.RLIMIT_CORE,(r.RLIM_INFINITY,r.RLIM_INFINITY));print('ESCAPED')\" 2>/dev/null; true";
    for who in everyone() {
        assert_blocked(&run(who, &["--", "/bin/sh", "-c", probe]), "core rlimit");
        let bare = command(
            who,
            std::path::Path::new("/bin/sh"),
            &["-c", &format!("ulimit -c unlimited 2>/dev/null; {probe}")],
        )
        .output()
        .expect("bare");
        assert_escaped(&bare, "control: bare");
    }
}

#[test]
fn brig_killed_takes_the_prison_with_it() {
    for who in everyone() {
        let marker = format!("brig-sigkill-{}", std::process::id());
        let script = format!("exec -a {marker} sleep 60");
        let mut c = command(who, &brig_bin(), &["run", "--", "/bin/bash", "-c", &script]);
        let mut child = c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
        let t = Instant::now();
        while Command::new("pgrep")
            .args(["-f", &format!("^{marker}")])
            .output()
            .expect("pgrep")
            .stdout
            .is_empty()
        {
            assert!(t.elapsed() < Duration::from_secs(10), "prison never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().expect("SIGKILL brig");
        child.wait().expect("wait");
        let t = Instant::now();
        loop {
            let left =
                Command::new("pgrep").args(["-f", &format!("^{marker}")]).output().expect("pgrep");
            if left.stdout.is_empty() {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "{who:?}: prison survived brig's SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// pid 1 inside (a copy of brig) keeps no host fds: not the grants, not the runner's pipe ends,
/// not what the caller leaked into brig. Seen from outside, as root.
#[test]
fn pid1_holds_no_host_fds() {
    if brig_sys::process::ids().0 != 0 {
        panic!("this test reads another uid's /proc/PID/fd; run the suite as root (CI does)");
    }
    for who in everyone() {
        let marker = format!("brig-pid1fd-{}", std::process::id());
        let script = format!("exec 7</etc/hostname; exec {} run --ro /etc/hostname:/h -- /bin/bash -c 'exec -a {marker} sleep 2'", brig_bin().display());
        let mut child = command(who, std::path::Path::new("/bin/bash"), &["-c", &script])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn");
        let t = Instant::now();
        let prog = loop {
            let o =
                Command::new("pgrep").args(["-f", &format!("^{marker}")]).output().expect("pgrep");
            if let Some(p) = stdout(&o).lines().next() {
                break p.trim().to_string();
            }
            assert!(t.elapsed() < Duration::from_secs(5), "prison never started");
            std::thread::sleep(Duration::from_millis(20));
        };
        let status = std::fs::read_to_string(format!("/proc/{prog}/status")).expect("status");
        let ppid =
            status.lines().find_map(|l| l.strip_prefix("PPid:")).expect("PPid").trim().to_string();
        let fds: Vec<String> = std::fs::read_dir(format!("/proc/{ppid}/fd"))
            .expect("pid 1 fds")
            .flatten()
            .map(|e| {
                std::fs::read_link(e.path()).map(|l| l.display().to_string()).unwrap_or_default()
            })
            .collect();
        child.wait().expect("wait");
        // 0, 1, 2 and the report pipe; nothing else.
        assert!(fds.len() <= 4, "{who:?}: pid 1 holds {fds:?}");
        assert!(
            !fds.iter().any(|f| f.contains("hostname") || f.starts_with("/usr")),
            "{who:?}: {fds:?}"
        );
    }
}
