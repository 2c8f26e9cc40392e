//! Filesystem threats (THREATS.md "Filesystem"): each probe tries to reach or change something it
//! was not given, in a real prison; each has a control run that shows the probe can succeed.

mod common;
use common::*;

/// A scratch tree: `secret` (not granted), `pub/` (granted read-only, with `pub/file`),
/// `work/` (granted read-write).
fn tree(who: Who) -> Scratch {
    let s = Scratch::new(who);
    s.write("secret", "TOPSECRET\n");
    s.write("pub/file", "public\n");
    std::fs::create_dir_all(s.join("work")).expect("mkdir");
    s.own(who);
    s
}

fn sh(who: Who, grants: &[&str], script: &str) -> std::process::Output {
    let mut a: Vec<&str> = grants.to_vec();
    a.extend(["--", "/bin/sh", "-c", script]);
    run(who, &a)
}

#[test]
fn ungranted_host_files_are_invisible() {
    for who in everyone() {
        let s = tree(who);
        let probe = format!("cat {}/secret 2>/dev/null | grep -q TOPSECRET && echo ESCAPED", s.s());
        assert_blocked(&sh(who, &["--ro", &s.sub("pub")], &probe), "read ungranted file");
        assert_escaped(&sh(who, &["--ro", s.s()], &probe), "control: granted");
    }
}

#[test]
fn dotdot_out_of_a_grant() {
    for who in everyone() {
        let s = tree(who);
        let probe = format!(
            "cd {p} && cat ../secret 2>/dev/null | grep -q TOP && echo ESCAPED; \
             cat {p}/../secret 2>/dev/null | grep -q TOP && echo ESCAPED; \
             python3 -c \"import os;fd=os.open('{p}',os.O_RDONLY);print(open(os.open('../secret',os.O_RDONLY,dir_fd=fd)).read())\" 2>/dev/null | grep -q TOP && echo ESCAPED",
            p = s.sub("pub")
        );
        assert_blocked(&sh(who, &["--ro", &s.sub("pub")], &probe), "..");
        assert_escaped(&sh(who, &["--ro", s.s()], &probe), "control");
    }
}

#[test]
fn symlinks_out_of_a_grant() {
    for who in everyone() {
        let s = tree(who);
        // planted on the host before the run, and made inside during it
        std::os::unix::fs::symlink(s.join("secret"), s.join("pub/planted")).expect("symlink");
        let probe = format!(
            "cat {p}/planted 2>/dev/null | grep -q TOP && echo ESCAPED; \
             ln -s {s}/secret {w}/made && cat {w}/made 2>/dev/null | grep -q TOP && echo ESCAPED; \
             ln -s / {w}/root && cat {w}/root{s}/secret 2>/dev/null | grep -q TOP && echo ESCAPED",
            p = s.sub("pub"),
            w = s.sub("work"),
            s = s.s()
        );
        assert_blocked(
            &sh(who, &["--ro", &s.sub("pub"), "--rw", &s.sub("work")], &probe),
            "symlink",
        );
        let _ = std::fs::remove_file(s.join("work/made"));
        let _ = std::fs::remove_file(s.join("work/root"));
        assert_escaped(&sh(who, &["--ro", s.s(), "--rw", &s.sub("work")], &probe), "control");
    }
}

#[test]
fn proc_root_cwd_and_fd_links_stay_inside() {
    for who in everyone() {
        let s = tree(who);
        let probe = format!(
            "for p in /proc/1/root /proc/self/root /proc/1/cwd /proc/self/cwd; do \
               cat $p{s}/secret 2>/dev/null | grep -q TOP && echo ESCAPED $p; done; \
             for f in /proc/1/fd/* /proc/self/fd/*; do cat $f/secret 2>/dev/null | grep -q TOP && echo ESCAPED $f; done; \
             head -c 4 /proc/1/exe >/dev/null 2>&1 && echo ESCAPED /proc/1/exe readable; true",
            s = s.s()
        );
        assert_blocked(&sh(who, &[], &probe), "/proc links");
        assert_escaped(&sh(who, &["--ro", s.s()], &probe), "control");
    }
}

#[test]
fn runner_binary_cannot_be_reached_through_proc() {
    // runc CVE-2019-5736: pid 1 inside is a copy of brig; its /proc/1/exe must not open.
    for who in everyone() {
        let probe = "for m in r a; do python3 -c \"import sys;open('/proc/1/exe','$m'+'b')\" 2>/dev/null && echo ESCAPED $m; done; true";
        assert_blocked(&sh(who, &[], probe), "/proc/1/exe");
        // Control: a bare process can open its own parent's exe read-only.
        let bare = command(
            who,
            std::path::Path::new("/bin/sh"),
            &["-c", "head -c1 /proc/$$/exe >/dev/null && echo ESCAPED"],
        )
        .output()
        .expect("bare");
        assert_escaped(&bare, "bare /proc/self/exe");
    }
}

#[test]
fn inherited_fds_and_cwd_do_not_leak() {
    // runc CVE-2024-21626: a directory fd or a cwd outside the root.
    for who in everyone() {
        let s = tree(who);
        let probe = "for f in /proc/self/fd/*; do cat $f/secret 2>/dev/null | grep -q TOP && echo ESCAPED fd $f; done; \
                     cat secret 2>/dev/null | grep -q TOP && echo ESCAPED cwd; [ $(ls /proc/self/fd | wc -l) -le 4 ] || echo ESCAPED fdcount";
        let script = format!(
            "exec 7<{d} 8<{d}/secret; cd {d}; exec {b} run -- /bin/sh -c '{probe}'",
            d = s.s(),
            b = brig_bin().display()
        );
        let o =
            command(who, std::path::Path::new("/bin/sh"), &["-c", &script]).output().expect("sh");
        assert_blocked(&o, "inherited fd / cwd");
        let bare = format!("exec 7<{d} 8<{d}/secret; cd {d}; exec /bin/sh -c '{probe}'", d = s.s());
        let o = command(who, std::path::Path::new("/bin/sh"), &["-c", &bare]).output().expect("sh");
        assert_escaped(&o, "control: bare");
    }
}

/// Operations Landlock does not cover must still fail on read-only grants (read-only mounts).
#[test]
fn read_only_grants_resist_metadata_changes() {
    for who in everyone() {
        let s = tree(who);
        let f = s.sub("pub/file");
        let probe = format!(
            "chmod 777 {f} 2>/dev/null && echo ESCAPED chmod; \
             touch -d 2001-01-01 {f} 2>/dev/null && echo ESCAPED utimes; \
             truncate -s 0 {f} 2>/dev/null && echo ESCAPED truncate; \
             echo x >> {f} 2>/dev/null && echo ESCAPED append; \
             python3 -c \"import os;os.setxattr('{f}','user.brig',b'1')\" 2>/dev/null && echo ESCAPED xattr; \
             exec 3<{f}; echo x 2>/dev/null >/proc/self/fd/3 && echo ESCAPED reopen; \
             mv {f} {f}.moved 2>/dev/null && echo ESCAPED rename; \
             rm -f {f} 2>/dev/null; [ -e {f} ] || echo ESCAPED unlink; \
             mkdir {p}/newdir 2>/dev/null && echo ESCAPED mkdir; true",
            p = s.sub("pub")
        );
        let before = std::fs::metadata(&f).expect("meta");
        assert_blocked(&sh(who, &["--ro", &s.sub("pub")], &probe), "ro grant");
        let after = std::fs::metadata(&f).expect("meta");
        assert_eq!(std::fs::read_to_string(&f).expect("read"), "public\n");
        use std::os::unix::fs::MetadataExt;
        assert_eq!((before.mode(), before.mtime()), (after.mode(), after.mtime()));
        assert_escaped(&sh(who, &["--rw", &s.sub("pub")], &probe), "control: --rw");
    }
}

/// Remounting a read-only grant writable, or mounting over it, with the old and the new mount
/// API (flatpak CVE-2021-41133).
const MOUNT_PROBE: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
t = sys.argv[1].encode()
MS_REMOUNT, MS_BIND = 32, 4096
if libc.mount(None, t, None, MS_REMOUNT | MS_BIND, None) == 0:
    print("ESCAPED remount", flush=True)
if libc.mount(b"none", t, b"tmpfs", 0, None) == 0:
    print("ESCAPED mount tmpfs", flush=True)
fd = libc.syscall(ctypes.c_long(430), b"tmpfs", 0)
if fd >= 0:
    print("ESCAPED fsopen", flush=True)
fd = libc.syscall(ctypes.c_long(428), -100, t, 1)
if fd >= 0:
    print("ESCAPED open_tree", flush=True)
try:
    open(sys.argv[1] + "/file", "a").write("x")
    print("ESCAPED write")
except OSError:
    pass
"#;

#[test]
fn read_only_mounts_cannot_be_remounted() {
    for who in everyone() {
        let s = tree(who);
        let o =
            run(who, &["--ro", &s.sub("pub"), "--", "python3", "-c", MOUNT_PROBE, &s.sub("pub")]);
        assert_blocked(&o, "remount");
        // Control: in a bare user+mount namespace (capabilities, no filter) the same probe mounts.
        let o = command(
            who,
            std::path::Path::new("/usr/bin/unshare"),
            &["-Urm", "/usr/bin/python3", "-c", MOUNT_PROBE, &s.sub("pub")],
        )
        .output()
        .expect("unshare");
        assert_escaped(&o, "control: bare unshare -Urm");
    }
}

/// setuid binaries and device nodes: nosuid/nodev mounts, no_new_privs, no capabilities.
#[test]
fn setuid_files_and_device_nodes_give_nothing() {
    if brig_sys::process::ids().0 != 0 {
        panic!(
            "this test needs root to create a setuid-root file; run the suite as root (CI does)"
        );
    }
    for who in everyone() {
        let s = tree(who);
        let suid = s.join("suid-id");
        std::fs::copy("/usr/bin/id", &suid).expect("copy id");
        std::process::Command::new("chown")
            .args(["0:0", suid.to_str().expect("utf8")])
            .status()
            .expect("chown");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).expect("chmod");
        let probe = format!(
            "[ \"$({id} -u)\" = 0 ] && echo ESCAPED setuid; \
             python3 -c \"import os;os.mknod('{w}/null', 0o20666, os.makedev(1,3))\" 2>/dev/null && echo ESCAPED mknod; \\
             [ -c {w}/null ] && echo x 2>/dev/null > {w}/null && echo ESCAPED device-open; true",
            id = suid.display(),
            w = s.sub("work")
        );
        assert_blocked(&sh(who, &["--rx", s.s(), "--rw", &s.sub("work")], &probe), "setuid/mknod");
        let _ = std::fs::remove_file(s.join("work/null"));
        // Control: the same setuid file run bare as this uid is root; bare root can mknod.
        let bare =
            command(who, std::path::Path::new("/bin/sh"), &["-c", &probe]).output().expect("bare");
        assert!(
            stdout(&bare).contains("ESCAPED setuid"),
            "control: bare setuid: {}",
            stdout(&bare)
        );
        let _ = std::fs::remove_file(s.join("work/null"));
        let o =
            std::process::Command::new("/bin/sh").args(["-c", &probe]).output().expect("bare root");
        assert!(stdout(&o).contains("ESCAPED mknod"), "control: bare root mknod: {}", stdout(&o));
    }
}

/// A mountpoint inside a directory grant that is a symlink (runc CVE-2021-30465) is refused,
/// never followed; a real directory there works.
#[test]
fn symlink_mountpoints_inside_grants_are_refused() {
    for who in everyone() {
        let s = tree(who);
        std::os::unix::fs::symlink("/etc", s.join("work/target")).expect("symlink");
        let dest = format!("{}:{}", s.sub("pub"), s.sub("work/target"));
        let o =
            run(who, &["--rw", &s.sub("work"), "--ro", &dest, "--", "ls", &s.sub("work/target")]);
        assert_eq!(code(&o), 125, "{who:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("mountpoint"), "{}", stderr(&o));
        std::fs::remove_file(s.join("work/target")).expect("rm");
        std::fs::create_dir(s.join("work/target")).expect("mkdir");
        s.own(who);
        let o = run(
            who,
            &["--rw", &s.sub("work"), "--ro", &dest, "--", "cat", &s.sub("work/target/file")],
        );
        assert_eq!((code(&o), stdout(&o).as_str()), (0, "public\n"), "{}", stderr(&o));
    }
}

#[test]
fn system_view_is_minimal_and_read_only() {
    for who in everyone() {
        let probe = "for d in /home /root /run /var /sys /boot /etc/shadow /etc/ssh /dev/kmsg /dev/mem /dev/sda /dev/vda; do \
                       [ -e $d ] && echo ESCAPED $d; done; \
                     grep -q '^root:' /etc/passwd && echo ESCAPED passwd; \
                     touch /usr/brig-probe /etc/brig-probe /brig-probe /dev/brig-probe 2>/dev/null && echo ESCAPED write; \
                     [ $(ls / | wc -l) -le 16 ] || echo ESCAPED root listing; true";
        assert_blocked(&sh(who, &[], probe), "system view");
        assert!(!std::path::Path::new("/usr/brig-probe").exists());
        let o = sh(who, &["--ro", "/etc", "--ro", "/sys"], probe);
        assert_escaped(&o, "control: --ro /etc --ro /sys");
    }
}

/// The report is opened before the prison starts, without following symlinks: a program that
/// can write where the report goes cannot make brig overwrite another file.
#[test]
fn report_file_cannot_be_redirected() {
    for who in everyone() {
        let s = tree(who);
        let victim = s.write("victim", "precious\n");
        s.own(who);
        let report = s.sub("work/r.json");
        let plant = format!("rm -f /out/r.json; ln -s {} /out/r.json", victim.display());
        let o = run(
            who,
            &[
                "--rw",
                &format!("{}:/out", s.sub("work")),
                "--report",
                &report,
                "--",
                "/bin/sh",
                "-c",
                &plant,
            ],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "precious\n",
            "{who:?}: report followed the planted link"
        );
        // Control: a report path that already is a symlink is refused outright.
        let o = run(who, &["--report", &report, "--", "true"]);
        assert_eq!(code(&o), 125, "{}", stderr(&o));
        assert!(stderr(&o).contains("symlink"), "{}", stderr(&o));
        assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "precious\n");
    }
}

/// A grant whose path goes through a symlink is refused (naming the real path), so a link
/// planted by an earlier prison cannot redirect a later run's grant.
#[test]
fn grants_through_symlinks_are_refused() {
    for who in everyone() {
        let s = tree(who);
        let plant = format!("ln -s {} /out/result", s.sub("secret"));
        let o =
            run(who, &["--rw", &format!("{}:/out", s.sub("work")), "--", "/bin/sh", "-c", &plant]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let o =
            run(who, &["--ro", &format!("{}:/in", s.sub("work/result")), "--", "/bin/cat", "/in"]);
        assert_eq!(code(&o), 125, "{who:?}: {}", stdout(&o));
        assert!(!stdout(&o).contains("TOPSECRET"));
        assert!(
            stderr(&o).contains("symlink") && stderr(&o).contains(&s.sub("secret")),
            "{}",
            stderr(&o)
        );
        // Control: the real path is accepted, and so is a path through root's own links
        // (/bin -> usr/bin on merged-/usr systems), which no prison can create.
        let o = run(who, &["--ro", &format!("{}:/in", s.sub("secret")), "--", "/bin/cat", "/in"]);
        assert_eq!(stdout(&o), "TOPSECRET\n", "{}", stderr(&o));
        let o = run(who, &["--rx", "/bin/true:/t", "--", "/t"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
}

#[test]
fn the_view_can_be_listed_and_shows_nothing_more() {
    for who in everyone() {
        let o = run(who, &["--", "sh", "-c", "ls -A /; echo --; ls -A /etc"]);
        assert_eq!(code(&o), 0, "{who:?}: {}", stderr(&o));
        let out = stdout(&o);
        let (root, etc) = out.split_once("--\n").expect("two listings");
        let root: Vec<&str> = root.lines().collect();
        for want in ["usr", "etc", "dev", "tmp", "proc"] {
            assert!(root.contains(&want), "{who:?}: / lacks {want}: {root:?}");
        }
        for host_only in ["root", "home", "var", "boot", "sys", "work", "run", "opt"] {
            assert!(!root.contains(&host_only), "{who:?}: / shows {host_only}: {root:?}");
        }
        for secret in ["shadow", "ssh", "sudoers", "machine-id"] {
            assert!(!etc.lines().any(|l| l == secret), "{who:?}: /etc shows {secret}: {etc}");
        }
        // A write-only grant is a drop box: it is not listed, and so nothing beneath / is.
        let s = Scratch::new(who);
        s.write("inside", "x");
        let m = s.write(
            "m.toml",
            &format!("[program]\npath = \"/bin/ls\"\nargs = [\"/drop\"]\n[fs]\n\"/drop\" = {{ from = \"{}\", rights = \"w\" }}\n", s.s()),
        );
        s.own(who);
        let o = run(who, &["-m", m.to_str().expect("utf-8")]);
        assert_ne!(code(&o), 0, "{who:?}: listed a write-only grant: {}", stdout(&o));
        assert!(!stdout(&o).contains("inside"), "{}", stdout(&o));
    }
}
