//! The OCI lifecycle through brig-oci's command line, in real prisons, as root and as an
//! unprivileged uid: create parks the container's pid 1 (the program has not run), start runs
//! it, kill reaches the program, state follows the kernel, delete cleans up; the config's
//! seccomp profile, capabilities, rlimits and noNewPrivileges are honoured, and brig's deny-list
//! stays under a profile that allows everything.

mod common;

use std::path::Path;

use common::{chown, config, eventually, everyone, oci, text, Bundle};

fn state(uid: u32, root: &Path, id: &str, out: &Path) -> serde_json::Value {
    let (code, o, e) = oci(uid, root, &["state", id], out);
    assert_eq!(code, Some(0), "state {id}: {o}\n{e}");
    serde_json::from_str(&o).expect("state is JSON")
}

fn pid_alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
}

#[test]
fn create_start_kill_delete() {
    let script = "touch /ran; echo started; trap 'echo got-TERM; exit 3' TERM; sleep 30 & wait";
    for uid in everyone() {
        let b = Bundle::new(uid, "life", &config(script, false));
        let root = b.state_root(uid);
        let (out, ran) = (b.0.join("out"), b.0.join("rootfs/ran"));
        let pid_file = b.0.join("pid");
        let args = [
            "create",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--bundle",
            b.0.to_str().unwrap(),
            "c1",
        ];
        let (code, o, e) = oci(uid, &root, &args, &out);
        assert_eq!(code, Some(0), "uid {uid}: create: {o}\n{e}");
        let s = state(uid, &root, "c1", &b.0.join("s"));
        assert_eq!(s["status"], "created", "uid {uid}: {s}");
        // brig's layers, as pid 1 parked, are annotations of `state`.
        let layer =
            |n: &str| s["annotations"][format!("run.brig.layer.{n}")].as_str().map(String::from);
        for n in ["user_namespace", "landlock", "seccomp", "no_new_privs", "capabilities"] {
            assert!(layer(n).is_some_and(|v| v.starts_with("enforced")), "uid {uid}: {n}: {s}");
        }
        let pid = s["pid"].as_i64().expect("pid");
        assert_eq!(std::fs::read_to_string(&pid_file).expect("pid file"), pid.to_string());
        let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).expect("ns");
        assert_ne!(ns(&pid.to_string()), ns("self"), "uid {uid}: pid 1 in its own pid namespace");
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!ran.exists(), "uid {uid}: the program ran before start");

        let (code, o, e) = oci(uid, &root, &["start", "c1"], &b.0.join("s"));
        assert_eq!(code, Some(0), "uid {uid}: start: {o}\n{e}");
        assert!(eventually(5, || ran.exists()), "uid {uid}: the program did not start");
        assert!(eventually(5, || std::fs::read_to_string(&out)
            .unwrap_or_default()
            .contains("started")));
        assert_eq!(state(uid, &root, "c1", &b.0.join("s"))["status"], "running");
        let (code, ..) = oci(uid, &root, &["start", "c1"], &b.0.join("s"));
        assert_ne!(code, Some(0), "uid {uid}: a running container started twice");

        let (code, o, e) = oci(uid, &root, &["kill", "c1", "TERM"], &b.0.join("s"));
        assert_eq!(code, Some(0), "uid {uid}: kill: {o}\n{e}");
        let stopped = || state(uid, &root, "c1", &b.0.join("s"))["status"] == "stopped";
        assert!(eventually(5, stopped), "uid {uid}: not stopped after TERM");
        assert!(std::fs::read_to_string(&out).unwrap_or_default().contains("got-TERM"));
        assert!(!pid_alive(pid), "uid {uid}: pid 1 still there");
        let report = root.join("c1/report.json");
        assert!(eventually(5, || report.exists()), "uid {uid}: no report");
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("JSON");
        assert_eq!(r["exit"]["status"], 3, "uid {uid}: the program's status: {r}");
        let (code, _, e) = oci(uid, &root, &["kill", "c1", "TERM"], &b.0.join("s"));
        assert!(code != Some(0) && e.contains("not running"), "uid {uid}: kill when stopped: {e}");

        let (code, o, e) = oci(uid, &root, &["delete", "c1"], &b.0.join("s"));
        assert_eq!(code, Some(0), "uid {uid}: delete: {o}\n{e}");
        assert!(!root.join("c1").exists(), "uid {uid}: state left behind");
        let (code, _, e) = oci(uid, &root, &["state", "c1"], &b.0.join("s"));
        assert!(code != Some(0) && e.contains("does not exist"), "uid {uid}: {e}");
    }
}

/// delete kills a created container (runc's behaviour, which containerd relies on), refuses a
/// running one without --force, and kills it with --force; ids are checked and unique; a config
/// brig refuses leaves no state behind.
#[test]
fn delete_rules_and_create_errors() {
    for uid in everyone() {
        let b = Bundle::new(uid, "del", &config("sleep 30", true));
        let root = b.state_root(uid);
        let s = b.0.join("s");
        let bundle = b.0.to_str().unwrap();
        let create =
            |id: &str| oci(uid, &root, &["create", "--bundle", bundle, id], &b.0.join("out"));
        assert_eq!(create("d1").0, Some(0));
        let pid = state(uid, &root, "d1", &s)["pid"].as_i64().expect("pid");
        let (code, _, e) = create("d1");
        assert!(code != Some(0) && e.contains("already exists"), "uid {uid}: {e}");
        assert_eq!(oci(uid, &root, &["delete", "d1"], &s).0, Some(0));
        assert!(eventually(5, || !pid_alive(pid)), "uid {uid}: created container not killed");

        assert_eq!(create("d1").0, Some(0), "uid {uid}: the id is free again");
        let pid = state(uid, &root, "d1", &s)["pid"].as_i64().expect("pid");
        assert_eq!(oci(uid, &root, &["start", "d1"], &s).0, Some(0));
        let (code, _, e) = oci(uid, &root, &["delete", "d1"], &s);
        assert!(code != Some(0) && e.contains("running"), "uid {uid}: {e}");
        assert!(pid_alive(pid), "uid {uid}: a refused delete killed the container");
        assert_eq!(oci(uid, &root, &["delete", "--force", "d1"], &s).0, Some(0));
        assert!(!pid_alive(pid) && !root.join("d1").exists(), "uid {uid}: --force");

        for bad in ["../x", ".hidden", "a b"] {
            let (code, _, e) = create(bad);
            assert!(code != Some(0) && e.contains("container id"), "uid {uid}: {bad:?}: {e}");
        }
        let mut c = config("echo RAN", true);
        c["linux"]["resources"] = serde_json::json!({"memory": {"kernel": 1_000_000}});
        std::fs::write(b.0.join("config.json"), c.to_string()).expect("config");
        let (code, _, e) = create("r1");
        assert!(code != Some(0) && e.contains("memory.kernel"), "uid {uid}: {e}");
        assert!(!root.join("r1").exists(), "uid {uid}: a refused create left state");
    }
}

/// The config's seccomp profile is a second filter: its errno rule holds (control: without the
/// rule, the same call works), and a profile that allows everything leaves brig's deny-list on.
#[test]
fn seccomp_profile_composes_with_brig_deny_list() {
    // busybox hostname prints "?" when uname(2) fails.
    let script = "echo name=$(hostname); unshare -U true && echo UNSHARED";
    for uid in everyone() {
        let mut c = config(script, true);
        c["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
        let b = Bundle::new(uid, "seccomp", &c);
        let (out, err) = text(&b.run(uid));
        assert!(out.contains("name=?"), "uid {uid}: uname not refused: {out}\n{err}");
        assert!(!out.contains("UNSHARED"), "uid {uid}: brig's deny-list loosened: {out}\n{err}");
        c["linux"]["seccomp"]["syscalls"] = serde_json::json!([]);
        let b = Bundle::new(uid, "seccomp-control", &c);
        let (out, err) = text(&b.run(uid));
        assert!(out.contains("name=box"), "uid {uid}: control: {out}\n{err}");
    }
}

/// process.capabilities, rlimits and noNewPrivileges as the config says (in the container's
/// user namespace); control: a config without them gets no capabilities and no_new_privs.
#[test]
fn capabilities_rlimits_and_no_new_privs_follow_the_config() {
    let script = "grep -E '^(CapBnd|CapEff|CapAmb|NoNewPrivs)' /proc/self/status; ulimit -n";
    for uid in everyone() {
        let mut c = config(script, true);
        let caps = serde_json::json!(["CAP_CHOWN", "CAP_KILL"]);
        c["process"]["capabilities"] = serde_json::json!({
            "bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps,
            "ambient": ["CAP_KILL"]
        });
        c["process"]["noNewPrivileges"] = false.into();
        c["process"]["rlimits"] =
            serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]);
        let b = Bundle::new(uid, "caps", &c);
        let (out, err) = text(&b.run(uid));
        for want in [
            "CapBnd:\t0000000000000021",
            "CapEff:\t0000000000000021",
            "CapAmb:\t0000000000000020",
            "NoNewPrivs:\t0",
            "\n123",
        ] {
            assert!(out.contains(want), "uid {uid}: no {want:?} in {out}\n{err}");
        }
        let b = Bundle::new(uid, "caps-control", &config(script, true));
        let (out, err) = text(&b.run(uid));
        for want in ["CapBnd:\t0000000000000000", "CapEff:\t0000000000000000", "NoNewPrivs:\t1"] {
            assert!(out.contains(want), "uid {uid}: control: no {want:?} in {out}\n{err}");
        }
        assert!(!out.contains("\n123"), "uid {uid}: control: {out}");
    }
}

/// Hooks run on the host with the container's state on stdin: createRuntime in create,
/// prestart in start before the program, poststart once it has executed, poststop in delete; a failed
/// poststart or poststop hook is a warning and the next still runs; a failed prestart hook
/// stops and deletes the container, whose program never runs; hooks that would run inside the
/// container are refused.
#[test]
fn hooks_run_in_their_phases() {
    for uid in everyone() {
        let b = Bundle::new(uid, "hooks", &config("touch /ran", false));
        let root = b.state_root(uid);
        let log = b.0.join("hooks.log");
        let hook = |name: &str| {
            let cmd = format!("read s; echo {name} \"$s\" >> {}", log.display());
            serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", cmd]})
        };
        let fail = serde_json::json!({"path": "/bin/false", "args": ["false"]});
        // The poststart hook finds pid 1's children by their stat lines: the program has
        // executed by then (its name is the program's, never brig-oci's).
        let children = b.0.join("children");
        let find = format!(
            "read s; p=$(echo \"$s\" | sed 's/.*\"pid\": *\\([0-9]*\\).*/\\1/'); \
             for f in /proc/[0-9]*/stat; do set -- $(cat $f 2>/dev/null); \
             [ \"$4\" = \"$p\" ] && echo $2 >> {}; done; true",
            children.display()
        );
        let find = serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", find]});
        let mut c = config("touch /ran; sleep 1", false);
        c["hooks"] = serde_json::json!({
            "createRuntime": [hook("createRuntime")],
            "prestart": [hook("prestart")],
            "poststart": [find, fail, hook("poststart")],
            "poststop": [fail, hook("poststop")]
        });
        std::fs::write(b.0.join("config.json"), c.to_string()).expect("config");
        chown(&b.0, uid);
        let s = b.0.join("s");
        let bundle = b.0.to_str().unwrap();
        let (code, o, e) = oci(uid, &root, &["create", "--bundle", bundle, "h1"], &b.0.join("out"));
        assert_eq!(code, Some(0), "uid {uid}: {o}\n{e}");
        let read = || std::fs::read_to_string(&log).unwrap_or_default();
        assert!(read().starts_with("createRuntime {"), "uid {uid}: {}", read());
        let (code, o, e) = oci(uid, &root, &["start", "h1"], &s);
        assert_eq!(code, Some(0), "uid {uid}: {o}\n{e}");
        assert!(e.contains("poststart") && e.contains("/bin/false"), "uid {uid}: no warning: {e}");
        let found = std::fs::read_to_string(&children).unwrap_or_default();
        let ok = found == "(sh)\n" || found == "(sleep)\n"; // busybox sh execs its last command
        assert!(ok, "uid {uid}: pid 1's children at poststart: {found:?}");
        assert!(eventually(5, || b.0.join("rootfs/ran").exists()), "uid {uid}: program");
        let stopped = || state(uid, &root, "h1", &s)["status"] == "stopped";
        assert!(eventually(5, stopped));
        let (code, _, e) = oci(uid, &root, &["delete", "h1"], &s);
        assert_eq!(code, Some(0), "uid {uid}: {e}");
        let phases: Vec<String> =
            read().lines().map(|l| l.split(' ').next().unwrap_or("").to_string()).collect();
        assert_eq!(phases, ["createRuntime", "prestart", "poststart", "poststop"], "uid {uid}");
        let prestart = read().lines().nth(1).unwrap_or("").to_string();
        let st: serde_json::Value =
            serde_json::from_str(prestart.trim_start_matches("prestart ")).expect("state JSON");
        assert_eq!((st["id"].as_str(), st["status"].as_str()), (Some("h1"), Some("created")));
        assert!(
            !prestart.contains("run.brig."),
            "uid {uid}: hooks get the config's annotations only"
        );
        assert!(st["pid"].as_i64().unwrap_or(0) > 0, "uid {uid}: {st}");

        // A failed prestart hook: start fails, the program never runs, the container is gone.
        std::fs::remove_file(b.0.join("rootfs/ran")).expect("rm");
        c["hooks"] = serde_json::json!({"prestart": [fail]});
        std::fs::write(b.0.join("config.json"), c.to_string()).expect("config");
        assert_eq!(
            oci(uid, &root, &["create", "--bundle", bundle, "h2"], &b.0.join("out")).0,
            Some(0)
        );
        let pid = state(uid, &root, "h2", &s)["pid"].as_i64().expect("pid");
        let (code, _, e) = oci(uid, &root, &["start", "h2"], &s);
        assert!(code != Some(0) && e.contains("prestart"), "uid {uid}: {e}");
        assert!(!pid_alive(pid) && !root.join("h2").exists(), "uid {uid}: not deleted");
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!b.0.join("rootfs/ran").exists(), "uid {uid}: the program ran");

        c["hooks"] = serde_json::json!({"createContainer": [hook("inside")]});
        std::fs::write(b.0.join("config.json"), c.to_string()).expect("config");
        let (code, _, e) = oci(uid, &root, &["create", "--bundle", bundle, "h3"], &b.0.join("out"));
        assert!(code != Some(0) && e.contains("createContainer"), "uid {uid}: {e}");
    }
}

/// linux.resources on cgroup v1 (root): the container's pid 1 is in the cgroupsPath of each
/// controller, pids.max holds and stops forks past it (control: the same script without the
/// limit), `update` writes new limits there (and refuses one the kernel would not enforce), and
/// delete removes the cgroup brig made. Unprivileged: refused, not dropped.
#[test]
fn cgroup_limits_hold_and_go_with_the_container() {
    let script =
        "n=0; for i in 1 2 3 4 5 6 7 8; do sleep 1 & n=$((n+1)); done; echo started=$n; wait";
    for uid in everyone() {
        let b = Bundle::new(uid, "cgroup", &config(script, false));
        let root = b.state_root(uid);
        let path = format!("brig-oci-test-{}-{uid}", std::process::id());
        let mut c = config(script, false);
        c["linux"]["cgroupsPath"] = format!("/{path}").into();
        c["linux"]["resources"] = serde_json::json!({"pids": {"limit": 4}});
        std::fs::write(b.0.join("config.json"), c.to_string()).expect("config");
        let s = b.0.join("s");
        let out = b.0.join("out");
        let bundle = b.0.to_str().unwrap();
        let (code, _, e) = oci(uid, &root, &["create", "--bundle", bundle, "g1"], &out);
        if uid != 0 {
            assert!(code != Some(0) && e.contains("root"), "uid {uid}: {e}");
            continue;
        }
        assert_eq!(code, Some(0), "{e}");
        let pid = state(uid, &root, "g1", &s)["pid"].as_i64().expect("pid");
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
        assert!(
            cg.lines().any(|l| l.contains(":pids:") && l.ends_with(&format!("/{path}"))),
            "{cg}"
        );
        let dir = std::path::PathBuf::from(format!("/sys/fs/cgroup/pids/{path}"));
        assert_eq!(std::fs::read_to_string(dir.join("pids.max")).expect("pids.max").trim(), "4");
        // update: new limits reach the container's cgroup; one the kernel would not enforce
        // is refused and changes nothing.
        let res = b.0.join("resources.json");
        std::fs::write(&res, r#"{"pids": {"limit": 6}}"#).expect("resources");
        let (code, _, e) =
            oci(uid, &root, &["update", "--resources", res.to_str().unwrap(), "g1"], &s);
        assert_eq!(code, Some(0), "update: {e}");
        assert_eq!(std::fs::read_to_string(dir.join("pids.max")).expect("pids.max").trim(), "6");
        std::fs::write(&res, r#"{"devices": [{"allow": false, "access": "rwm"}]}"#)
            .expect("resources");
        let (code, _, e) =
            oci(uid, &root, &["update", "--resources", res.to_str().unwrap(), "g1"], &s);
        assert!(code != Some(0) && e.contains("fixed at create"), "update: {e}");
        std::fs::write(&res, r#"{"memory": {"kernel": 1048576}, "pids": {"limit": 5}}"#)
            .expect("resources");
        let (code, _, e) =
            oci(uid, &root, &["update", "--resources", res.to_str().unwrap(), "g1"], &s);
        assert!(code != Some(0) && e.contains("kernel-memory"), "update: {e}");
        assert_eq!(std::fs::read_to_string(dir.join("pids.max")).expect("pids.max").trim(), "6");
        assert_eq!(oci(uid, &root, &["start", "g1"], &s).0, Some(0));
        let stopped = || state(uid, &root, "g1", &s)["status"] == "stopped";
        assert!(eventually(10, stopped));
        let said = std::fs::read_to_string(out.with_extension("err")).unwrap_or_default();
        let refused = said.contains("can't fork") || said.contains("Resource temporarily");
        assert!(refused, "no fork refused: {said}");
        assert_eq!(oci(uid, &root, &["delete", "g1"], &s).0, Some(0));
        assert!(!dir.exists(), "the cgroup stayed");

        // Control: no limit, every fork succeeds.
        let b = Bundle::new(uid, "cgroup-control", &config(script, false));
        let (o, e) = text(&b.run(uid));
        assert!(o.contains("started=8") && !e.contains("can't fork"), "control: {o}\n{e}");
    }
}

/// Hugepage limits land where this machine keeps hugetlb: its v2 hierarchy on this hybrid
/// layout (/sys/fs/cgroup/unified, the controller enabled on the way down), or v1 where that
/// has it. pid 1 is in that cgroup, `update` changes the limit, a page size the kernel lacks is
/// refused, and delete removes the directory.
#[test]
fn hugetlb_limits_land_where_the_machine_keeps_hugetlb() {
    if !everyone().contains(&0) {
        return;
    }
    let path = format!("brig-oci-huge-{}", std::process::id());
    let mut c = config("sleep 30", false);
    c["linux"]["cgroupsPath"] = format!("/{path}").into();
    c["linux"]["resources"] =
        serde_json::json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 8388608}]});
    let b = Bundle::new(0, "huge", &c);
    let root = b.state_root(0);
    let s = b.0.join("s");
    let bundle = b.0.to_str().unwrap();
    let (code, _, e) = oci(0, &root, &["create", "--bundle", bundle, "u1"], &b.0.join("out"));
    assert_eq!(code, Some(0), "{e}");
    let v1 = std::path::Path::new("/sys/fs/cgroup/hugetlb/cgroup.procs").exists();
    let (dir, file) = match v1 {
        true => (format!("/sys/fs/cgroup/hugetlb/{path}"), "hugetlb.2MB.limit_in_bytes"),
        false => (format!("/sys/fs/cgroup/unified/{path}"), "hugetlb.2MB.max"),
    };
    let limit = || std::fs::read_to_string(format!("{dir}/{file}")).unwrap_or_default();
    assert_eq!(limit().trim(), "8388608", "{dir}");
    let pid = state(0, &root, "u1", &s)["pid"].as_i64().expect("pid");
    let procs = std::fs::read_to_string(format!("{dir}/cgroup.procs")).unwrap_or_default();
    assert!(procs.lines().any(|p| p == pid.to_string()), "pid 1 not in {dir}: {procs}");
    let res = b.0.join("res.json");
    std::fs::write(&res, r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}"#)
        .expect("resources");
    let (code, _, e) = oci(0, &root, &["update", "-r", res.to_str().unwrap(), "u1"], &s);
    assert_eq!(code, Some(0), "update: {e}");
    assert_eq!(limit().trim(), "4194304");
    std::fs::write(&res, r#"{"hugepageLimits": [{"pageSize": "3MB", "limit": 3145728}]}"#)
        .expect("resources");
    let (code, _, e) = oci(0, &root, &["update", "-r", res.to_str().unwrap(), "u1"], &s);
    assert!(code != Some(0) && e.contains("3MB"), "a 3MB page size: {e}");
    assert_eq!(oci(0, &root, &["delete", "--force", "u1"], &s).0, Some(0));
    assert!(!std::path::Path::new(&dir).exists(), "{dir} stayed");
}

/// process.terminal: create connects to --console-socket and hands over the terminal's master
/// (SCM_RIGHTS, as runc does); the program's stdio is that terminal; without the socket,
/// create is refused.
#[test]
fn the_terminal_goes_to_the_console_socket() {
    use std::os::fd::AsFd;
    for uid in everyone() {
        let mut c = config("tty; echo on-the-pty", false);
        c["process"]["terminal"] = true.into();
        let b = Bundle::new(uid, "console", &c);
        let root = b.state_root(uid);
        let sock = b.0.join("console.sock");
        let listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        chown(&sock, uid);
        let s = b.0.join("s");
        let bundle = b.0.to_str().unwrap();
        let (code, _, e) = oci(uid, &root, &["create", "--bundle", bundle, "t1"], &b.0.join("out"));
        assert!(code != Some(0) && e.contains("--console-socket"), "uid {uid}: {e}");
        let args = ["create", "--console-socket", sock.to_str().unwrap(), "--bundle", bundle, "t1"];
        let (code, o, e) = oci(uid, &root, &args, &b.0.join("out"));
        assert_eq!(code, Some(0), "uid {uid}: {o}\n{e}");
        let (conn, _) = listener.accept().expect("accept");
        let (_, fds) = brig_sys::fdpass::recv_fds(conn.as_fd()).expect("the master");
        assert_eq!(fds.len(), 1, "uid {uid}: one fd");
        let mut master = std::fs::File::from(fds.into_iter().next().expect("fd"));
        assert_eq!(oci(uid, &root, &["start", "t1"], &s).0, Some(0));
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        while !String::from_utf8_lossy(&seen).contains("on-the-pty") {
            match std::io::Read::read(&mut master, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        let text = String::from_utf8_lossy(&seen);
        assert!(text.contains("/dev/pts/0") && text.contains("on-the-pty"), "uid {uid}: {text}");
        let stopped = || state(uid, &root, "t1", &s)["status"] == "stopped";
        assert!(eventually(5, stopped), "uid {uid}");
        assert_eq!(oci(uid, &root, &["delete", "t1"], &s).0, Some(0));
    }
}

/// exec: a new process in the running container's namespaces (its pid namespace, its
/// hostname), under no_new_privs, both seccomp filters (brig's deny-list still refuses a user
/// namespace) and the config's ids; its status comes back; --detach leaves it the caller's
/// child with its host pid in --pid-file; a stopped container is refused. An unprivileged
/// runtime enters through the program (pid 1 is not dumpable and belongs to the host's user
/// namespace); root through pid 1.
#[test]
fn exec_joins_the_container_under_its_layers() {
    let probe = "echo pid=$$ host=$(hostname); cat /proc/self/uid_map; \
                 grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; \
                 unshare -U true 2>/dev/null && echo UNSHARED; exit 4";
    for uid in everyone() {
        let b = Bundle::new(uid, "exec", &config("sleep 30", false));
        let root = b.state_root(uid);
        let s = b.0.join("s");
        let bundle = b.0.to_str().unwrap();
        assert_eq!(
            oci(uid, &root, &["create", "--bundle", bundle, "x1"], &b.0.join("out")).0,
            Some(0)
        );
        let (code, _, e) = oci(uid, &root, &["exec", "x1", "sh", "-c", "true"], &s);
        assert!(code != Some(0) && e.contains("running"), "uid {uid}: exec before start: {e}");
        assert_eq!(oci(uid, &root, &["start", "x1"], &s).0, Some(0));
        // No cgroup of its own (none asked): update changes nothing of its creator's.
        let res = b.0.join("res.json");
        std::fs::write(&res, r#"{"pids": {"limit": 3}}"#).expect("resources");
        let (code, _, e) = oci(uid, &root, &["update", "-r", res.to_str().unwrap(), "x1"], &s);
        assert!(code != Some(0) && e.contains("no cgroup of its own"), "uid {uid}: {e}");
        let pid1 = state(uid, &root, "x1", &s)["pid"].as_i64().expect("pid");
        let (code, out, e) = oci(uid, &root, &["exec", "x1", "sh", "-c", probe], &s);
        assert_eq!(code, Some(4), "uid {uid}: {out}\n{e}");
        let pid: u32 = out
            .split("pid=")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|p| p.parse().ok())
            .expect("pid");
        assert!(pid < 10 && out.contains("host=box"), "uid {uid}: not in the container: {out}");
        let map: Vec<&str> = out.lines().nth(1).unwrap_or("").split_whitespace().collect();
        let want = if uid == 0 { ["0", "1878982656", "65536"] } else { ["0", "1000", "1"] };
        let want = want.map(|w| if w == "1000" { uid.to_string() } else { w.to_string() });
        assert_eq!(map, want, "uid {uid}: the container's map: {out}");
        assert!(out.contains("NoNewPrivs:\t1") && out.contains("Seccomp:\t2"), "uid {uid}: {out}");
        assert!(!out.contains("UNSHARED"), "uid {uid}: brig's deny-list missing: {out}");
        let pid_file = b.0.join("exec.pid");
        let args =
            ["exec", "--detach", "--pid-file", pid_file.to_str().unwrap(), "x1", "sleep", "5"];
        let (code, _, e) = oci(uid, &root, &args, &s);
        assert_eq!(code, Some(0), "uid {uid}: {e}");
        let xpid = std::fs::read_to_string(&pid_file).expect("pid file");
        let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).expect("ns");
        assert_eq!(ns(xpid.trim()), ns(&pid1.to_string()), "uid {uid}: not in the pid namespace");
        assert_eq!(oci(uid, &root, &["delete", "--force", "x1"], &s).0, Some(0));
        let (code, _, e) = oci(uid, &root, &["exec", "x1", "true"], &s);
        assert!(code != Some(0) && e.contains("does not exist"), "uid {uid}: {e}");
    }
}

/// ps lists the container's processes (host pids, pid 1 among them); pause freezes them (a counter
/// stops, state says paused, exec is refused) and resume thaws them (it goes on); a paused
/// container is deleted only with --force. An unprivileged run has no freezer cgroup: pause
/// is refused with the reason.
#[test]
fn ps_pause_and_resume() {
    let script = "i=0; while true; do i=$((i+1)); echo $i > /count; sleep 0.05; done";
    for uid in everyone() {
        let mut c = config(script, false);
        c["linux"]["cgroupsPath"] = format!("/brig-oci-pause-{}-{uid}", std::process::id()).into();
        let b = Bundle::new(uid, "pause", &c);
        let root = b.state_root(uid);
        let s = b.0.join("s");
        let bundle = b.0.to_str().unwrap();
        assert_eq!(
            oci(uid, &root, &["create", "--bundle", bundle, "p1"], &b.0.join("out")).0,
            Some(0)
        );
        assert_eq!(oci(uid, &root, &["start", "p1"], &s).0, Some(0));
        let pid1 = state(uid, &root, "p1", &s)["pid"].as_i64().expect("pid");
        let (code, out, e) = oci(uid, &root, &["ps", "--format", "json", "p1"], &s);
        assert_eq!(code, Some(0), "uid {uid}: {e}");
        let pids: Vec<i64> = serde_json::from_str(out.trim()).expect("a JSON array");
        assert!(pids.len() >= 2 && pids.contains(&pid1), "uid {uid}: {pids:?} (pid 1 {pid1})");
        let count = || std::fs::read_to_string(b.0.join("rootfs/count")).unwrap_or_default();
        assert!(eventually(5, || !count().is_empty()), "uid {uid}: the program did not count");
        let (code, _, e) = oci(uid, &root, &["pause", "p1"], &s);
        if uid != 0 {
            assert!(code != Some(0) && e.contains("no freezer cgroup"), "uid {uid}: {e}");
            assert_eq!(oci(uid, &root, &["delete", "--force", "p1"], &s).0, Some(0));
            continue;
        }
        assert_eq!(code, Some(0), "{e}");
        assert_eq!(state(uid, &root, "p1", &s)["status"], "paused");
        let frozen = count();
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert_eq!(count(), frozen, "the container ran while paused");
        let (code, _, e) = oci(uid, &root, &["exec", "p1", "true"], &s);
        assert!(code != Some(0) && e.contains("paused"), "{e}");
        assert_eq!(oci(uid, &root, &["resume", "p1"], &s).0, Some(0));
        assert!(eventually(5, || count() != frozen), "resume did not thaw it");
        assert_eq!(state(uid, &root, "p1", &s)["status"], "running");
        assert_eq!(oci(uid, &root, &["pause", "p1"], &s).0, Some(0));
        let (code, _, e) = oci(uid, &root, &["delete", "p1"], &s);
        assert!(code != Some(0) && e.contains("paused"), "{e}");
        assert_eq!(oci(uid, &root, &["delete", "--force", "p1"], &s).0, Some(0));
        let path = c["linux"]["cgroupsPath"].as_str().unwrap_or("").to_string();
        assert!(!std::path::Path::new(&format!("/sys/fs/cgroup/freezer{path}")).exists());
    }
}
