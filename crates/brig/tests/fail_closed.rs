//! Fail closed: a layer the policy needs but the kernel refuses makes brig exit 125 naming the
//! layer; --best-effort runs degraded, warns, and says so in the report. The missing features
//! are simulated for real with the `knockout` helper's seccomp filter on the runner.

mod common;
use common::*;

/// (knockout rule, layer name in messages and the report, words of the warning that say what
/// the program can now do)
const LAYERS: &[(&str, &str, &str)] = &[
    ("444=38", "landlock", "limited by the mount view alone"), // landlock_create_ruleset -> ENOSYS
    ("317=22", "seccomp", "whole syscall surface"),            // seccomp(2) -> EINVAL
    ("272&0x40000000=22", "network namespace", "UDP and ICMP reach any address"), // unshare(CLONE_NEWNET)
    ("56&0x08000000=22", "ipc namespace", "System V IPC"), // clone(CLONE_NEWIPC) -> EINVAL
    ("56&0x04000000=22", "uts namespace", "host's hostname"), // clone(CLONE_NEWUTS) -> EINVAL
    ("272&0x02000000=22", "cgroup namespace", "host's cgroup path"), // unshare(CLONE_NEWCGROUP)
];

fn knocked(who: Who, rule: &str, best_effort: bool, extra: &[&str]) -> std::process::Output {
    let b = brig_bin();
    let mut a = vec![rule, "--", b.to_str().expect("utf-8"), "run"];
    if best_effort {
        a.push("--best-effort");
    }
    a.extend_from_slice(extra);
    command(who, &knockout_bin(), &a).output().expect("knockout")
}

#[test]
fn each_missing_layer_is_refused_by_name() {
    for who in everyone() {
        for (rule, layer, _) in LAYERS {
            let o = knocked(who, rule, false, &["--", "/bin/echo", "RAN"]);
            assert_eq!(code(&o), 125, "{who:?} {layer}: {}", stderr(&o));
            assert!(!stdout(&o).contains("RAN"), "{layer}: the program ran");
            assert!(
                stderr(&o).contains(layer),
                "{who:?}: message does not name {layer}: {}",
                stderr(&o)
            );
        }
    }
}

#[test]
fn best_effort_runs_degraded_and_reports() {
    for who in everyone() {
        let s = Scratch::new(who);
        for (rule, layer, can_now) in LAYERS {
            let rep = s.sub("r.json");
            let o = knocked(who, rule, true, &["--report", &rep, "--", "/bin/echo", "RAN"]);
            assert_eq!(code(&o), 0, "{who:?} {layer}: {}", stderr(&o));
            assert_eq!(stdout(&o), "RAN\n");
            assert!(stderr(&o).contains("warning") && stderr(&o).contains(layer), "{}", stderr(&o));
            // The warning says what the program can do now, not only which layer is gone.
            assert!(stderr(&o).contains(can_now), "{layer}: {}", stderr(&o));
            let r = std::fs::read_to_string(&rep).expect("report");
            let v: serde_json::Value = serde_json::from_str(&r).expect("json");
            let l = v["layers"]
                .as_array()
                .expect("layers")
                .iter()
                .find(|l| l["name"] == *layer)
                .expect("layer listed");
            assert_eq!(l["state"], "unavailable", "{layer}: {r}");
        }
    }
}

#[test]
fn best_effort_keeps_the_layers_a_capability_rests_on() {
    for who in everyone() {
        let s = Scratch::new(who);
        let host = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
        let conn = format!("c=tcp://127.0.0.1:{}", host.local_addr().expect("addr").port());
        let listen = format!("l=tcp://127.0.0.1:{}", free_port());
        let rw_dir = format!("d={}:rw", s.s());
        // (rule, layer, capability flag and spec, its name)
        let cases = [
            ("444=38", "landlock", "--connect", conn.as_str(), "`c`"),
            ("317=22", "seccomp", "--connect", conn.as_str(), "`c`"),
            ("444=38", "landlock", "--listen", listen.as_str(), "`l`"),
            ("317=22", "seccomp", "--listen", listen.as_str(), "`l`"),
            ("444=38", "landlock", "--dir", rw_dir.as_str(), "`d`"),
        ];
        for (rule, layer, flag, spec, name) in cases {
            let o = knocked(who, rule, true, &[flag, spec, "--", "/bin/echo", "RAN"]);
            assert_eq!(code(&o), 125, "{who:?} {layer} {flag}: {}", stderr(&o));
            assert!(!stdout(&o).contains("RAN"), "{layer} {flag}: the program ran");
            let e = stderr(&o);
            assert!(e.contains(layer) && e.contains(name) && e.contains("rests on"), "{e}");
        }
        // What does not rest on the missing layer still runs degraded.
        let rwc_dir = format!("d={}:rwc", s.s());
        for (rule, flag, spec) in [
            ("444=38", "--dir", rwc_dir.as_str()),
            ("272&0x40000000=22", "--connect", conn.as_str()),
        ] {
            let o = knocked(who, rule, true, &[flag, spec, "--", "/bin/echo", "RAN"]);
            assert_eq!(code(&o), 0, "{who:?} {rule} {flag}: {}", stderr(&o));
        }
    }
}

#[test]
fn required_namespaces_cannot_be_dropped() {
    for who in everyone() {
        // clone(CLONE_NEWUSER) -> EPERM: no prison at all, even with --best-effort.
        let o = knocked(who, "56&0x10000000=1", true, &["--", "/bin/echo", "RAN"]);
        assert_eq!(code(&o), 125, "{}", stderr(&o));
        assert!(stderr(&o).contains("user, mount and pid namespaces"), "{}", stderr(&o));
    }
}

#[test]
fn full_report_lists_every_layer_enforced() {
    for who in everyone() {
        let s = Scratch::new(who);
        let rep = s.sub("r.json");
        let o = run(who, &["--report", &rep, "--", "true"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&rep).expect("report")).expect("json");
        let layers = v["layers"].as_array().expect("layers");
        for name in [
            "user namespace",
            "mount namespace",
            "pid namespace",
            "network namespace",
            "ipc namespace",
            "uts namespace",
            "cgroup namespace",
            "landlock",
            "seccomp",
            "capabilities",
            "no_new_privs",
        ] {
            let l = layers
                .iter()
                .find(|l| l["name"] == name)
                .unwrap_or_else(|| panic!("{name} missing: {v}"));
            assert_eq!(l["state"], "enforced", "{name}");
        }
        assert_eq!(v["exit"]["cause"], "exited");
        assert!(v["timings"]["total_us"].as_u64().expect("timing") > 0);
    }
}
