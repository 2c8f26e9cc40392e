//! Container escapes from runc's CVE history that apply to brig-oci, each tried from a real
//! container as root and as an unprivileged uid (docs/oci.md "Escapes" says what each was):
//! - CVE-2019-5736: overwriting the runtime through /proc/[pid]/exe of the runtime's process in
//!   the container (brig's pid 1 is a clone of brig-oci, not dumpable);
//! - CVE-2024-21626: a host fd or working directory leaked into the container (process.cwd of
//!   `/proc/self/fd/N`);
//! - CVE-2021-30465 (and the 2023 /proc symlink races): a mount target in the image that is a
//!   symlink to the host, here for a file mountpoint the runner itself must make;
//! - CVE-2025-31133: masking through the image's own /dev/null, which the image replaced with a
//!   symlink to a host-writable proc file.

mod common;

use std::os::unix::fs::symlink;
use std::path::PathBuf;

use common::{chown, config, everyone, text, Bundle};

#[test]
fn the_runtime_binary_cannot_be_reached_through_proc() {
    // pid 1 of the container is brig's (a clone of brig-oci): its exe is the runtime.
    let script = "cat /proc/1/exe > /dev/null && echo READ-EXE; \
                  echo x >> /proc/1/exe && echo WROTE-EXE; \
                  ls -l /proc/1/exe 2>&1 | grep -q brig && echo SAW-EXE; \
                  ls /proc/1/fd 2>/dev/null | grep -q . && echo SAW-FDS; echo done";
    let exe = std::fs::metadata(env!("CARGO_BIN_EXE_brig-oci")).expect("brig-oci");
    for uid in everyone() {
        let b = Bundle::new(uid, "exe", &config(script, true));
        let (out, err) = text(&b.run(uid));
        assert!(out.contains("done"), "uid {uid}: {out}\n{err}");
        for bad in ["READ-EXE", "WROTE-EXE", "SAW-EXE", "SAW-FDS"] {
            assert!(!out.contains(bad), "uid {uid}: {bad}: {out}\n{err}");
        }
    }
    let after = std::fs::metadata(env!("CARGO_BIN_EXE_brig-oci")).expect("brig-oci");
    assert_eq!(exe.len(), after.len(), "the runtime binary changed");
}

#[test]
fn no_host_fd_or_directory_leaks_in() {
    let script = "ls /proc/self/fd; readlink /proc/self/cwd";
    for uid in everyone() {
        // A host fd the caller leaks into brig-oci (fd 7 here) stays out of the container.
        let b = Bundle::new(uid, "fds", &config(script, true));
        let exe = env!("CARGO_BIN_EXE_brig-oci");
        let cmd = format!(
            "exec 7</etc; exec setpriv --reuid={uid} --regid={uid} --clear-groups {exe} run --bundle {} t",
            b.0.display()
        );
        let o = std::process::Command::new("sh").args(["-c", &cmd]).output().expect("sh");
        let (out, err) = text(&o);
        let fds: Vec<&str> = out.lines().take_while(|l| !l.starts_with('/')).collect();
        // 0-2, and the fd `ls` itself opened on /proc/self/fd.
        assert!(fds.len() <= 4 && !fds.contains(&"7"), "uid {uid}: fds {fds:?}\n{err}");
        assert_eq!(out.lines().last(), Some("/"), "uid {uid}: cwd: {out}");
        // process.cwd naming an fd (runc's 2024 escape): never a host directory.
        for cwd in ["/proc/self/fd/7", "/proc/1/cwd", "/proc/self/fd/3"] {
            let mut c = config("pwd; ls", true);
            c["process"]["cwd"] = cwd.into();
            let b = Bundle::new(uid, "cwd", &c);
            let o = b.run(uid);
            let (out, err) = text(&o);
            assert!(
                !out.contains("passwd") && !out.contains("hostname"),
                "uid {uid}: {cwd}: {out}\n{err}"
            );
            assert!(!o.status.success() || out.starts_with('/'), "uid {uid}: {cwd}: {out}\n{err}");
        }
    }
}

#[test]
fn a_symlinked_file_mountpoint_is_not_followed() {
    for uid in everyone() {
        let mut c = config("echo RAN", false);
        let source =
            std::env::temp_dir().join(format!("brig-oci-src-{}-{uid}", std::process::id()));
        std::fs::write(&source, "engine file").expect("write");
        chown(&source, uid);
        c["mounts"].as_array_mut().expect("mounts").push(serde_json::json!(
            {"destination": "/run/.containerenv", "source": source, "options": ["bind", "ro"]}
        ));
        let b = Bundle::new(uid, "filelink", &c);
        // The image's /run is a symlink to a host directory the mountpoint would be made in.
        let outside =
            PathBuf::from(format!("/var/tmp/brig-oci-outside-f-{}-{uid}", std::process::id()));
        let _ = std::fs::remove_dir_all(&outside);
        std::fs::create_dir(&outside).expect("mkdir");
        chown(&outside, uid);
        symlink(&outside, b.0.join("rootfs/run")).expect("symlink");
        chown(&b.0.join("rootfs/run"), uid);
        let o = b.run(uid);
        let (out, err) = text(&o);
        let made = std::fs::read_dir(&outside).expect("ls").count();
        let _ = std::fs::remove_dir_all(&outside);
        let _ = std::fs::remove_file(&source);
        assert_eq!(o.status.code(), Some(125), "uid {uid}: {out}\n{err}");
        assert!(!out.contains("RAN") && err.contains("symbolic links"), "uid {uid}: {err}");
        assert_eq!(made, 0, "uid {uid}: a mountpoint was made through the link");
    }
}

#[test]
fn masks_do_not_come_from_the_images_dev_null() {
    let script = "echo pwned > /proc/sys/kernel/core_pattern 2>/dev/null && echo WROTE; \
                  echo size=$(cat /proc/kcore 2>/dev/null | wc -c); ls -l /dev/null";
    for uid in everyone() {
        let mut c = config(script, true);
        c["linux"]["maskedPaths"] = serde_json::json!(["/proc/kcore"]);
        let b = Bundle::new(uid, "devnull", &c);
        // The image's own /dev/null points at a writable proc file (runc masked with it).
        std::fs::remove_dir(b.0.join("rootfs/dev")).expect("rmdir");
        std::fs::create_dir(b.0.join("rootfs/dev")).expect("mkdir");
        symlink("/proc/sys/kernel/core_pattern", b.0.join("rootfs/dev/null")).expect("symlink");
        chown(&b.0.join("rootfs/dev"), uid);
        let before =
            std::fs::read_to_string("/proc/sys/kernel/core_pattern").expect("core_pattern");
        let (out, err) = text(&b.run(uid));
        let after = std::fs::read_to_string("/proc/sys/kernel/core_pattern").expect("core_pattern");
        assert_eq!(before, after, "uid {uid}: the host's core_pattern changed");
        assert!(!out.contains("WROTE") && out.contains("size=0"), "uid {uid}: {out}\n{err}");
        assert!(out.lines().any(|l| l.starts_with("crw-rw-rw-")), "uid {uid}: /dev/null: {out}");
    }
}
