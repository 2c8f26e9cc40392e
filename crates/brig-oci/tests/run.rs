//! `brig-oci run` in real prisons on a busybox bundle, as root and as an unprivileged uid
//! (BRIG_TEST_UID, default 1000): the bundle's root, hostname and user are honoured; a read-only
//! root stays read-only; what brig cannot honour yet is refused, not dropped; a symlinked
//! mount target in the image is never followed (CVE-2021-30465's class); a pod's network, IPC
//! and UTS namespaces are joined by path and stay the pod's to change.

mod common;

use std::os::unix::fs::symlink;
use std::path::PathBuf;

use common::{chown, config, everyone, test_uid, text, Bundle};

#[test]
fn the_bundle_root_hostname_and_user_are_honoured() {
    let script =
        "echo host=$(hostname) uid=$(id -u) gid=$(id -g); ls /; grep NoNewPrivs /proc/self/status";
    for uid in everyone() {
        let b = Bundle::new(uid, "honoured", &config(script, true));
        let o = b.run(uid);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(0), "uid {uid}: {out}\n{err}");
        assert!(out.contains("host=box uid=0 gid=0"), "uid {uid}: {out}\n{err}");
        assert_eq!(
            out.lines().skip(1).take(5).collect::<Vec<_>>(),
            ["bin", "dev", "etc", "proc", "tmp"]
        );
        assert!(out.contains("NoNewPrivs:\t1"), "uid {uid}: {out}");
        // brig's /dev is not sticky and world-writable: there the kernel refused O_CREAT opens
        // of root's device nodes (`>/dev/null`) to a root run's prison.
        let b = Bundle::new(uid, "devnull", &config("echo x > /dev/null && echo null-ok", true));
        let (out, err) = text(&b.run(uid));
        assert!(out.contains("null-ok"), "uid {uid}: {out}\n{err}");
    }
}

/// `root.readonly`: the program cannot write the root; control: with `readonly: false` the
/// same write lands in the bundle's rootfs on the host.
/// `maskedPaths` and `readonlyPaths` under /proc: a masked directory is empty and a masked file
/// reads nothing; a read-only path refuses writes. Control: without them, the same reads see
/// what the kernel shows.
#[test]
fn masked_and_read_only_proc_paths_are_honoured() {
    let script = "echo tty=$(ls /proc/tty | wc -l) cpuinfo=$(cat /proc/cpuinfo | wc -c); \
                  echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null; grep ' /proc/sys ' /proc/self/mounts | grep -c ro,";
    for uid in everyone() {
        let mut c = config(script, true);
        c["linux"]["maskedPaths"] =
            serde_json::json!(["/proc/tty", "/proc/cpuinfo", "/proc/none", "/sys/firmware"]);
        c["linux"]["readonlyPaths"] = serde_json::json!(["/proc/sys"]);
        let b = Bundle::new(uid, "masked", &c);
        let (out, err) = text(&b.run(uid));
        assert!(out.contains("tty=0 cpuinfo=0"), "uid {uid}: {out}\n{err}");
        assert!(
            out.lines().last() == Some("1"),
            "uid {uid}: /proc/sys not read-only: {out}\n{err}"
        );
        let b = Bundle::new(uid, "unmasked", &config(script, true));
        let (out, err) = text(&b.run(uid));
        assert!(
            !out.contains("tty=0") && !out.contains("cpuinfo=0"),
            "uid {uid}: control: {out}\n{err}"
        );
        assert!(out.lines().last() == Some("0"), "uid {uid}: control: {out}\n{err}");
    }
}

#[test]
fn a_read_only_root_stays_read_only() {
    let script = "touch /written && echo WROTE || echo refused";
    for uid in everyone() {
        let b = Bundle::new(uid, "ro", &config(script, true));
        let (out, err) = text(&b.run(uid));
        assert!(out.contains("refused") && !out.contains("WROTE"), "uid {uid}: {out}\n{err}");
        assert!(!b.0.join("rootfs/written").exists());
        let b = Bundle::new(uid, "rw", &config(script, false));
        let (out, err) = text(&b.run(uid));
        assert!(out.contains("WROTE"), "uid {uid}: control: {out}\n{err}");
        assert!(b.0.join("rootfs/written").exists(), "uid {uid}: control: not on the host");
    }
}

/// What brig-oci cannot honour yet is refused with the field named, before anything runs.
#[test]
fn what_cannot_be_honoured_is_refused() {
    let uid = test_uid();
    let cases: [(&str, serde_json::Value, &str); 6] = [
        ("/ociVersion", "invalid".into(), "ociVersion \"invalid\""),
        (
            "/linux/seccomp",
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x"}),
            "listenerPath",
        ),
        ("/linux/maskedPaths", serde_json::json!(["etc/passwd"]), "maskedPaths"),
        (
            "/linux/namespaces",
            serde_json::json!([{"type": "mount", "path": "/proc/1/ns/mnt"}]),
            "joining the Mount namespace",
        ),
        (
            "/hooks",
            serde_json::json!({"createContainer": [{"path": "/bin/true"}]}),
            "createContainer",
        ),
        (
            "/hooks",
            serde_json::json!({"poststop": [{"path": "/bin/true"}]}),
            "`run` does not run them",
        ),
    ];
    for (at, value, said) in cases {
        let mut c = config("echo RAN", true);
        let (parent, key) = at.rsplit_once('/').expect("a pointer");
        let slot = if parent.is_empty() { Some(&mut c) } else { c.pointer_mut(parent) };
        slot.and_then(|p| p.as_object_mut()).expect(at).insert(key.into(), value);
        let b = Bundle::new(uid, "refused", &c);
        let o = b.run(uid);
        let (out, err) = text(&o);
        assert!(!o.status.success() && !out.contains("RAN"), "{at}: {out}\n{err}");
        assert!(err.contains(said), "{at}: no {said:?} in {err}");
    }
}

/// The image's /tmp is a symlink to a host directory: brig never mounts through it (runc's
/// CVE-2021-30465 was a race on such a target); the run is refused and the host directory is
/// untouched.
#[test]
fn a_symlinked_mount_target_is_not_followed() {
    for uid in everyone() {
        let b = Bundle::new(uid, "symlink", &config("echo RAN; touch /tmp/planted", false));
        // Not under /tmp, where pid 1's staging mount would hide it by chance.
        let outside =
            PathBuf::from(format!("/var/tmp/brig-oci-outside-{}-{uid}", std::process::id()));
        let _ = std::fs::remove_dir_all(&outside);
        std::fs::create_dir(&outside).expect("mkdir");
        chown(&outside, uid);
        std::fs::remove_dir(b.0.join("rootfs/tmp")).expect("rmdir");
        symlink(&outside, b.0.join("rootfs/tmp")).expect("symlink");
        chown(&b.0.join("rootfs/tmp"), uid);
        let o = b.run(uid);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(125), "uid {uid}: {out}\n{err}");
        assert!(!out.contains("RAN"), "uid {uid}: {out}");
        // Refused where the link is met, not by chance later.
        let said =
            err.contains("mountpoint on the bundle's root: /tmp") && err.contains("symbolic links");
        assert!(said, "uid {uid}: {err}");
        let written = std::fs::read_dir(&outside).expect("ls").count();
        let _ = std::fs::remove_dir_all(&outside);
        assert_eq!(written, 0, "uid {uid}: written through");
    }
}

/// The config's mounts are made in its order with its source names (runtimetest checks
/// mountinfo against both), sysfs read-only and mqueue included; a destination with `..` is
/// refused.
#[test]
fn mounts_follow_the_config_order_and_names() {
    let script = "cat /proc/self/mountinfo; touch /sys/x 2>/dev/null && echo SYS-WRITABLE";
    for uid in everyone() {
        let mut c = config(script, true);
        c["mounts"] = serde_json::json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"},
            {"destination": "/data", "source": "data", "options": ["bind"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm"}
        ]);
        let b = Bundle::new(uid, "mounts", &c);
        // A writable bind of a directory the prison does not own: id-mapped in a root run,
        // by the runner, before pid 1 made any mount.
        std::fs::create_dir(b.0.join("data")).expect("mkdir data");
        std::fs::create_dir(b.0.join("rootfs/data")).expect("mkdir rootfs/data");
        chown(&b.0.join("rootfs/data"), uid);
        std::fs::create_dir(b.0.join("rootfs/sys")).expect("mkdir sys");
        chown(&b.0.join("rootfs/sys"), uid);
        let (out, err) = text(&b.run(uid));
        assert!(!out.contains("SYS-WRITABLE"), "uid {uid}: /sys writable: {out}");
        let want = [
            ("/proc", "proc", "proc"),
            ("/dev", "tmpfs", "tmpfs"),
            ("/sys", "sysfs", "sysfs"),
            ("/dev/mqueue", "mqueue", "mqueue"),
            ("/dev/shm", "tmpfs", "shm"),
        ];
        let seen: Vec<(String, String, String)> = out
            .lines()
            .filter_map(|l| {
                let (pre, post) = l.split_once(" - ")?;
                let point = pre.split_whitespace().nth(4)?;
                let mut post = post.split_whitespace();
                Some((point.to_string(), post.next()?.to_string(), post.next()?.to_string()))
            })
            .filter(|m| {
                want.iter().any(|w| (w.0, w.1, w.2) == (m.0.as_str(), m.1.as_str(), m.2.as_str()))
            })
            .collect();
        let seen: Vec<(&str, &str, &str)> =
            seen.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())).collect();
        assert_eq!(seen, want, "uid {uid}: {out}\n{err}");
        let at = |point: &str| out.lines().position(|l| l.split_whitespace().nth(4) == Some(point));
        let (mq, data, shm) = (at("/dev/mqueue"), at("/data"), at("/dev/shm"));
        assert!(mq < data && data < shm, "uid {uid}: /data out of the config's order: {out}");
        c["mounts"][2]["destination"] = "/sys/../etc".into();
        let b = Bundle::new(uid, "mounts-dotdot", &c);
        let (out, err) = text(&b.run(uid));
        assert!(err.contains("`..`") && out.is_empty(), "uid {uid}: {out}\n{err}");
    }
}

/// sysctl of the container's own network namespace, umask and oomScoreAdj as the config says
/// (control: the defaults without them); a sysctl of the host's is refused; additionalGids are
/// given in a root run (brig's range maps them) and refused in an unprivileged one.
#[test]
fn sysctl_umask_and_oom_score_adj_follow_the_config() {
    let script = "cat /proc/sys/net/ipv4/ip_forward; umask; cat /proc/self/oom_score_adj";
    for uid in everyone() {
        let mut c = config(script, true);
        c["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        c["process"]["user"]["umask"] = 0o027.into();
        c["process"]["oomScoreAdj"] = 789.into();
        let b = Bundle::new(uid, "sysctl", &c);
        let (out, err) = text(&b.run(uid));
        assert_eq!(out.lines().collect::<Vec<_>>(), ["1", "0027", "789"], "uid {uid}: {err}");
        let b = Bundle::new(uid, "sysctl-control", &config(script, true));
        let (out, err) = text(&b.run(uid));
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines.first() == Some(&"0") && lines.last() != Some(&"789"),
            "uid {uid}: {out}\n{err}"
        );
        // additionalGids: a root run's range maps them; an unprivileged run maps only its own
        // ids, so they are refused there.
        let mut c = config("id -G; echo RAN", true);
        c["process"]["user"]["additionalGids"] = serde_json::json!([5, 10]);
        let b = Bundle::new(uid, "groups", &c);
        let (out, err) = text(&b.run(uid));
        match uid {
            0 => assert!(out.starts_with("0 5 10\n"), "groups: {out}\n{err}"),
            _ => assert!(
                !out.contains("RAN") && err.contains("additionalGids"),
                "uid {uid}: {out}\n{err}"
            ),
        }
        let mut c = config("echo RAN", true);
        c["linux"]["sysctl"] = serde_json::json!({"kernel.panic": "1"});
        let b = Bundle::new(uid, "sysctl-refused", &c);
        let (out, err) = text(&b.run(uid));
        assert!(!out.contains("RAN") && err.contains("kernel.panic"), "uid {uid}: {out}\n{err}");
    }
}

/// maskedPaths and readonlyPaths in the image (and under /sys): a masked file reads empty, a
/// masked directory lists nothing, a read-only directory refuses writes; control: the same
/// reads and write without them. A masked path that is a symlink in the image is refused, not
/// followed.
#[test]
fn masked_and_read_only_image_paths_are_honoured() {
    let script =
        "echo file=$(cat /secret) dir=$(ls /private | wc -l) sysfw=$(ls /sys/firmware | wc -l); \
                  touch /frozen/new && echo FROZEN-WRITTEN";
    for uid in everyone() {
        let mut c = config(script, false);
        c["mounts"]
            .as_array_mut()
            .expect("mounts")
            .push(serde_json::json!({"destination": "/sys", "type": "sysfs", "source": "sysfs"}));
        let make = |b: &Bundle| {
            let r = b.0.join("rootfs");
            std::fs::write(r.join("secret"), "s3cret").expect("write");
            std::fs::create_dir(r.join("private")).expect("mkdir");
            std::fs::write(r.join("private/key"), "k").expect("write");
            std::fs::create_dir(r.join("frozen")).expect("mkdir");
            std::fs::create_dir(r.join("sys")).expect("mkdir");
            chown(&r, uid);
        };
        let b = Bundle::new(uid, "masked-image-control", &c);
        make(&b);
        let (out, err) = text(&b.run(uid));
        assert!(out.contains("file=s3cret dir=1"), "uid {uid}: control: {out}\n{err}");
        assert!(
            out.contains("FROZEN-WRITTEN") && !out.contains("sysfw=0"),
            "uid {uid}: control: {out}\n{err}"
        );
        c["linux"]["maskedPaths"] =
            serde_json::json!(["/secret", "/private", "/sys/firmware", "/absent"]);
        c["linux"]["readonlyPaths"] = serde_json::json!(["/frozen"]);
        let b = Bundle::new(uid, "masked-image", &c);
        make(&b);
        let (out, err) = text(&b.run(uid));
        assert!(out.contains("file= dir=0 sysfw=0"), "uid {uid}: {out}\n{err}");
        assert!(!out.contains("FROZEN-WRITTEN"), "uid {uid}: {out}\n{err}");
        c["linux"]["maskedPaths"] = serde_json::json!(["/link"]);
        let b = Bundle::new(uid, "masked-link", &c);
        make(&b);
        symlink("secret", b.0.join("rootfs/link")).expect("symlink");
        chown(&b.0.join("rootfs/link"), uid);
        let o = b.run(uid);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(125), "uid {uid}: {out}\n{err}");
        assert!(err.contains("masked or read-only path"), "uid {uid}: {err}");
    }
}

/// uidMappings and gidMappings (root runs): the user namespace gets the config's maps, and the
/// program's host uid is the mapped one (control: without them, brig's one line to 65534); a
/// range reaching host id 0 is refused, and so are mappings in an unprivileged run.
#[test]
fn id_mappings_are_the_configs_and_never_host_root() {
    let script = "cat /proc/self/uid_map /proc/self/gid_map; id -u";
    for uid in everyone() {
        let mut c = config(script, true);
        let maps = serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        c["linux"]["uidMappings"] = maps.clone();
        c["linux"]["gidMappings"] = maps;
        let b = Bundle::new(uid, "idmaps", &c);
        let (out, err) = text(&b.run(uid));
        if uid != 0 {
            assert!(err.contains("uidMappings") && out.is_empty(), "uid {uid}: {out}\n{err}");
            continue;
        }
        let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines.len(), 3, "{out}\n{err}");
        assert_eq!(lines[0], ["0", "200000", "65536"], "{out}");
        assert_eq!(lines[1], ["0", "200000", "65536"], "{out}");
        assert_eq!(lines[2], ["0"], "{out}");
        let b = Bundle::new(uid, "idmaps-control", &config(script, true));
        let (out, err) = text(&b.run(uid));
        let first: Vec<&str> = out.lines().next().unwrap_or("").split_whitespace().collect();
        // Without them, a root run's container gets brig's range (0x6FFF0000, 64K ids).
        assert_eq!(first, ["0", "1878982656", "65536"], "control: {out}\n{err}");
        let mut c = config("echo RAN", true);
        let root = serde_json::json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
        c["linux"]["uidMappings"] = root.clone();
        c["linux"]["gidMappings"] = root;
        let b = Bundle::new(uid, "idmaps-root", &c);
        let (out, err) = text(&b.run(uid));
        assert!(err.contains("host id 0") && !out.contains("RAN"), "{out}\n{err}");
    }
}

/// linux.devices: root makes the nodes the config names (here a second /dev/null and a fifo),
/// usable inside with their type, numbers and mode; an unprivileged run gets the fifo but is
/// refused a character device (mknod needs root). The nodes' directory is removed after `run`.
#[test]
fn config_devices_are_made() {
    let script = "echo x > /dev/mynull && echo NULL-OK; ls -l /dev/mynull /dev/myfifo";
    for uid in everyone() {
        let mut c = config(script, true);
        c["linux"]["devices"] = serde_json::json!([
            {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 438, "uid": 0, "gid": 0},
            {"path": "/dev/myfifo", "type": "p", "major": 0, "minor": 0, "fileMode": 384}
        ]);
        let b = Bundle::new(uid, "devices", &c);
        let (out, err) = text(&b.run(uid));
        if uid != 0 {
            assert!(err.contains("needs host root") && out.is_empty(), "uid {uid}: {out}\n{err}");
            continue;
        }
        assert!(out.contains("NULL-OK"), "{out}\n{err}");
        assert!(out.lines().any(|l| l.starts_with("crw-rw-rw-") && l.contains("1,   3")), "{out}");
        assert!(out.lines().any(|l| l.starts_with("prw-------")), "{out}");
        let left = std::fs::read_dir(std::env::temp_dir())
            .expect("temp dir")
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with("brig-oci-dev-"));
        assert!(!left, "a device directory was left in the temp dir");
    }
}

/// A writable bind of a host directory is id-mapped only when the config asks (mount option
/// `idmap`, as podman's `-v SRC:DEST:idmap`): then what the container's root writes there is
/// host root's, and CAP_SETFCAP is taken out (a file capability written there would be stored
/// as the host owner's, real on the host). A plain bind is not: the container's root is not
/// the host's there and cannot write a root-owned directory, and keeps CAP_SETFCAP (what it
/// writes elsewhere holds only in its own user namespace). An unprivileged run has no maps to
/// id-map with, and is refused.
#[test]
fn setfcap_is_dropped_where_host_directories_are_id_mapped() {
    let script = "grep CapBnd /proc/self/status; touch /data/x 2>/dev/null && echo WROTE";
    for uid in everyone() {
        for bind in ["none", "bind", "idmap"] {
            let mut c = config(script, true);
            let caps = serde_json::json!(["CAP_KILL", "CAP_SETFCAP"]);
            c["process"]["capabilities"] = serde_json::json!({
                "bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps
            });
            let opts = if bind == "idmap" { vec!["bind", "idmap"] } else { vec!["bind"] };
            if bind != "none" {
                c["mounts"].as_array_mut().expect("mounts").push(
                    serde_json::json!({"destination": "/data", "source": "data", "options": opts}),
                );
            }
            let b = Bundle::new(uid, "setfcap", &c);
            std::fs::create_dir(b.0.join("data")).expect("mkdir"); // root's, 0755
            std::fs::create_dir(b.0.join("rootfs/data")).expect("mkdir");
            let o = b.run(uid);
            let (out, err) = text(&o);
            if uid != 0 && bind == "idmap" {
                assert!(!o.status.success() && err.contains("option idmap needs"), "{out}\n{err}");
                continue;
            }
            let mapped = bind == "idmap";
            let want =
                if mapped { "CapBnd:\t0000000000000020" } else { "CapBnd:\t0000000080000020" };
            assert!(out.contains(want), "uid {uid} {bind}: {out}\n{err}");
            assert_eq!(err.contains("CAP_SETFCAP is dropped"), mapped, "uid {uid}: {err}");
            assert_eq!(out.contains("WROTE"), mapped, "uid {uid} {bind}: {out}\n{err}");
            if mapped {
                let owner = std::fs::metadata(b.0.join("data/x")).expect("written");
                assert_eq!(std::os::unix::fs::MetadataExt::uid(&owner), 0, "host root's");
            }
        }
    }
}

/// A pod's namespaces, as Kubernetes hands them to each container: network, IPC and UTS by
/// path. The container is in them (its sysfs shows the pod's loopback), its host name is the
/// config's, it reaches the pod's TCP services (Landlock leaves TCP to the container's network
/// namespace), and they stay the pod's: the container, root of its own user namespace only, can
/// neither rename the host nor change the pod's interface. Joining a mount namespace, or setting
/// a sysctl of a joined one, is refused; so is any join by an unprivileged runner (setns needs
/// CAP_SYS_ADMIN in the caller's own user namespace).
#[test]
fn a_pods_network_ipc_and_uts_namespaces_are_joined() {
    for uid in everyone() {
        // The pod's holder: its own network (its loopback's MTU set to 1234, a web server on
        // it as another container of the pod would have), IPC and UTS namespaces; the test
        // uid's are of a user namespace of its own.
        let web = std::env::temp_dir().join(format!("brig-oci-pod-web-{}", std::process::id()));
        std::fs::create_dir_all(&web).expect("mkdir");
        std::fs::write(web.join("f"), "pod-web\n").expect("page");
        let setup = format!(
            "ip link set lo mtu 1234 up && exec busybox httpd -f -p 127.0.0.1:9999 -h {}",
            web.display()
        );
        let mut c = std::process::Command::new("setpriv");
        c.args([&format!("--reuid={uid}"), &format!("--regid={uid}"), "--clear-groups"]);
        c.arg("unshare").args(if uid == 0 { &[][..] } else { &["-r"][..] });
        c.args(["--net", "--ipc", "--uts", "sh", "-c", &setup]);
        let holder = Holder(c.spawn().expect("unshare"), web);
        let pid = holder.0.id();
        let comm = format!("/proc/{pid}/comm");
        assert!(
            common::eventually(5, || std::fs::read_to_string(&comm)
                .is_ok_and(|c| c == "busybox\n")),
            "the holder did not start"
        );
        let ns = |t: &str| format!("/proc/{pid}/ns/{t}");
        let link = |t: &str| std::fs::read_link(ns(t)).expect("ns link").display().to_string();
        let script = "for t in net ipc uts; do readlink /proc/self/ns/$t; done; \
            cat /sys/class/net/lo/mtu 2>&1; hostname; hostname other && echo RENAMED; \
            ip link set lo mtu 1500 && echo CHANGED; \
            for i in 1 2 3 4 5; do wget -qO- http://127.0.0.1:9999/f && break; sleep 0.2; done";
        let mut cfg = config(script, true);
        let joined = serde_json::json!([{"type": "pid"}, {"type": "mount"}, {"type": "user"},
            {"type": "network", "path": ns("net")}, {"type": "ipc", "path": ns("ipc")},
            {"type": "uts", "path": ns("uts")}]);
        cfg["linux"]["namespaces"] = joined.clone();
        let sys = serde_json::json!({"destination": "/sys", "type": "sysfs", "source": "sysfs"});
        cfg["mounts"].as_array_mut().expect("mounts").push(sys);
        let b = Bundle::new(uid, "pod", &cfg);
        for applet in ["readlink", "ip", "wget"] {
            symlink("busybox", b.0.join("rootfs/bin").join(applet)).expect("link");
        }
        let o = b.run(uid);
        let (out, err) = text(&o);
        if uid != 0 {
            assert!(!o.status.success() && err.contains("needs root"), "{uid}: {out}\n{err}");
            continue;
        }
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines.get(..3),
            Some(&[&*link("net"), &*link("ipc"), &*link("uts")][..]),
            "{uid}: {out}\n{err}"
        );
        assert!(lines.contains(&"1234"), "{uid}: the pod's sysfs: {out}\n{err}");
        assert!(lines.contains(&"box"), "{uid}: the config's host name: {out}\n{err}");
        assert!(lines.contains(&"pod-web"), "{uid}: TCP to the pod's web server: {out}\n{err}");
        assert!(!out.contains("RENAMED") && !out.contains("CHANGED"), "{uid}: {out}\n{err}");
        // Refused: a sysctl of a joined namespace, and a mount namespace by path.
        let sysctl = serde_json::json!({"net.ipv4.ip_forward": "1"});
        let mnt = serde_json::json!({"type": "mount", "path": ns("mnt")});
        for (at, value, said) in
            [("sysctl", sysctl, "joins"), ("namespaces", mnt, "joining the Mount")]
        {
            let mut c = cfg.clone();
            match at {
                "sysctl" => c["linux"]["sysctl"] = value,
                _ => c["linux"]["namespaces"][1] = value,
            }
            let b = Bundle::new(uid, "pod-refused", &c);
            let o = b.run(uid);
            let (out, err) = text(&o);
            assert!(!o.status.success() && !out.contains("brig"), "{uid} {at}: {out}\n{err}");
            assert!(err.contains(said), "{uid} {at}: no {said:?} in {err}");
        }
        drop(holder);
    }
}

/// A pod's namespace holder and its web root, gone on drop.
struct Holder(std::process::Child, PathBuf);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}
