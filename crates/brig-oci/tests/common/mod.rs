//! Helpers of brig-oci's integration tests: busybox bundles owned by the uid under test, the
//! uids to test as (root and BRIG_TEST_UID, default 1000), a base config.
#![allow(dead_code)]

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn test_uid() -> u32 {
    std::env::var("BRIG_TEST_UID").ok().and_then(|u| u.parse().ok()).unwrap_or(1000)
}

/// Root (when the tests run as root) and the test uid.
pub fn everyone() -> Vec<u32> {
    let me = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    match me {
        Ok(0) => vec![0, test_uid()],
        Ok(u) => vec![u],
        Err(_) => vec![],
    }
}

pub struct Bundle(pub PathBuf);

impl Bundle {
    /// A bundle with a busybox root (bin/ with busybox and its applets as links, empty proc,
    /// dev, tmp and etc) and `config` as config.json, owned by `uid`.
    pub fn new(uid: u32, name: &str, config: &serde_json::Value) -> Bundle {
        let d =
            std::env::temp_dir().join(format!("brig-oci-run-{}-{uid}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for sub in ["bin", "proc", "dev", "tmp", "etc"] {
            std::fs::create_dir_all(d.join("rootfs").join(sub)).expect("mkdir");
        }
        std::fs::copy("/bin/busybox", d.join("rootfs/bin/busybox")).expect("busybox-static");
        for applet in [
            "sh", "echo", "cat", "id", "hostname", "touch", "ls", "grep", "pwd", "unshare", "sleep",
        ] {
            symlink("busybox", d.join("rootfs/bin").join(applet)).expect("link");
        }
        std::fs::write(d.join("config.json"), config.to_string()).expect("config");
        chown(&d, uid);
        Bundle(d)
    }

    /// A `--root` state directory inside the bundle, owned by `uid`.
    pub fn state_root(&self, uid: u32) -> PathBuf {
        let root = self.0.join("state");
        std::fs::create_dir(&root).expect("mkdir state");
        chown(&root, uid);
        root
    }

    pub fn run(&self, uid: u32) -> Output {
        let exe = env!("CARGO_BIN_EXE_brig-oci");
        let b = self.0.to_str().expect("utf-8");
        let mut c = Command::new("setpriv");
        c.args([&format!("--reuid={uid}"), &format!("--regid={uid}"), "--clear-groups", exe]);
        c.args(["run", "--bundle", b, "test"]).current_dir("/");
        c.output().expect("run brig-oci")
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn chown(p: &Path, uid: u32) {
    let ok = Command::new("chown").args(["-hR", &format!("{uid}:{uid}")]).arg(p).status();
    assert!(ok.expect("chown").success());
}

pub fn config(script: &str, readonly: bool) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.2.0",
        "process": {
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/sh", "-c", script],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": readonly},
        "hostname": "box",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}
        ],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                                 {"type": "uts"}, {"type": "mount"}, {"type": "user"}]}
    })
}

pub fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into(), String::from_utf8_lossy(&o.stderr).into())
}

/// `brig-oci --root ROOT ARGS` as `uid`. stdout and stderr go to `out` and `out.err` (a
/// created container keeps its stdio open, so pipes would never close); returns the status and
/// both texts.
pub fn oci(uid: u32, root: &Path, args: &[&str], out: &Path) -> (Option<i32>, String, String) {
    let err = out.with_extension("err");
    let f = |p: &Path| std::fs::File::create(p).expect("output file");
    let mut c = Command::new("setpriv");
    c.args([&format!("--reuid={uid}"), &format!("--regid={uid}"), "--clear-groups"]);
    c.arg(env!("CARGO_BIN_EXE_brig-oci")).arg("--root").arg(root).args(args);
    let st = c.current_dir("/").stdout(f(out)).stderr(f(&err)).status().expect("brig-oci");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    (st.code(), read(out), read(&err))
}

/// Polls `cond` every 10 ms for up to `secs` seconds.
pub fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    cond()
}
