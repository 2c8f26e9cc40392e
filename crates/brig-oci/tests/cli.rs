//! brig-oci's command line outside any container: `--version`, `spec`, `features`, and errors
//! as the engines read them (`--log --log-format json`).

use std::path::PathBuf;
use std::process::{Command, Output};

fn brig_oci(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_brig-oci")).args(args).output().expect("run brig-oci")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("brig-oci-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

#[test]
fn version_names_the_spec() {
    let o = brig_oci(&["--version"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(out.starts_with("brig-oci version ") && out.contains("\nspec: 1."), "{out}");
}

#[test]
fn spec_writes_a_config_once() {
    let d = scratch("spec");
    let b = d.to_str().expect("utf-8");
    assert!(brig_oci(&["spec", "--bundle", b]).status.success());
    let spec = oci_spec::runtime::Spec::load(d.join("config.json")).expect("a valid config");
    assert_eq!(spec.root().as_ref().map(|r| r.path().clone()), Some("rootfs".into()));
    let again = brig_oci(&["spec", "--bundle", b]);
    assert!(!again.status.success(), "overwrote config.json");
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
    std::fs::remove_file(d.join("config.json")).expect("rm");
    assert!(brig_oci(&["spec", "--rootless", "--bundle", b]).status.success());
    let spec = oci_spec::runtime::Spec::load(d.join("config.json")).expect("a valid config");
    let linux = spec.linux().as_ref().expect("linux");
    let maps = linux.uid_mappings().as_ref().expect("uid mappings");
    let uid = caller_uid();
    assert_eq!((maps[0].container_id(), maps[0].host_id(), maps[0].size()), (0, uid, 1));
    let _ = std::fs::remove_dir_all(&d);
}

/// The caller's uid, from /proc/self/status.
fn caller_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let line = status.lines().find(|l| l.starts_with("Uid:")).expect("Uid line");
    line.split_whitespace().nth(1).and_then(|u| u.parse().ok()).expect("uid")
}

#[test]
fn errors_go_to_the_log_as_json_lines() {
    let d = scratch("log");
    let log = d.join("log.json");
    let o = brig_oci(&[
        "--log",
        log.to_str().expect("utf-8"),
        "--log-format",
        "json",
        "--systemd-cgroup",
        "features",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--systemd-cgroup"));
    let text = std::fs::read_to_string(&log).expect("log written");
    let line: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON object");
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().expect("msg").contains("cgroupfs"), "{line}");
    let time = line["time"].as_str().expect("time");
    assert!(time.len() == 30 && time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn features_is_json() {
    let o = brig_oci(&["features"]);
    assert!(o.status.success());
    let f: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(f["ociVersionMin"], "1.0.0");
}
