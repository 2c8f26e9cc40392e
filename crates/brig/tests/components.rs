//! Components (issue 10): the `--only-syscalls` allow-list, the `--channel` capability, and
//! `examples/unpack`, whose decompressor runs as a component prison, against archives made by
//! the system's tar, gzip, zstd and xz, hostile archives, and a hostile component. Root and an
//! unprivileged uid.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};

/// What busybox (static) needs to start and exit.
const BUSYBOX_START: &str = "arch_prctl,brk,getrandom,getuid,mprotect,prctl,prlimit64,readlink,\
                             rseq,set_robust_list,set_tid_address,write";

/// The allow-list refuses what it does not name, whatever the view would allow; the same run
/// with the syscall named succeeds (so the refusal is the allow-list's).
#[test]
fn only_syscalls_refuses_what_it_does_not_name() {
    for who in everyone() {
        let s = Scratch::new(who);
        let dir = s.sub("w");
        std::fs::create_dir_all(&dir).expect("mkdir");
        s.own(who);
        let made = format!("{dir}/made");
        let run_with = |list: &str| {
            run(
                who,
                &[
                    "--no-system",
                    "--rx",
                    "/usr/bin/busybox",
                    "--rw",
                    &dir,
                    "--only-syscalls",
                    list,
                    "--",
                    "/usr/bin/busybox",
                    "mkdir",
                    &made,
                ],
            )
        };
        let o = run_with(BUSYBOX_START);
        assert_ne!(code(&o), 0, "{who:?}: mkdir ran without being listed\n{}", stderr(&o));
        assert!(stderr(&o).contains("Operation not permitted"), "{who:?}: {}", stderr(&o));
        assert!(!Path::new(&made).exists(), "{who:?}: the directory was made");
        let o = run_with(&format!("{BUSYBOX_START},mkdir"));
        assert_eq!(code(&o), 0, "{who:?}: the control run failed\n{}", stderr(&o));
        assert!(Path::new(&made).is_dir(), "{who:?}: the control run made nothing");
    }
}

#[test]
fn only_syscalls_takes_syscall_names_only() {
    let o = run(Who::User(test_uid()), &["--only-syscalls", "@debug", "--", "/bin/true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stderr(&o).contains("an allow-list names each syscall"), "{}", stderr(&o));
    let o = run(Who::User(test_uid()), &["--only-syscalls", "no_such_call", "--", "/bin/true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
}

#[test]
fn channel_must_be_an_inherited_seqpacket_socket() {
    for (fd, why) in [("900", "is not open"), ("2", "3 or more")] {
        let o = run(Who::User(test_uid()), &["--channel", &format!("c={fd}"), "--", "/bin/true"]);
        assert_eq!(code(&o), 125, "{}", stderr(&o));
        assert!(stderr(&o).contains(why), "fd {fd}: {}", stderr(&o));
    }
}

/// `unpack ARGS` as `who`, with brig found through BRIG.
fn unpack(who: Who, s: &Scratch, args: &[&str]) -> Output {
    let bin = install(s, who, "unpack");
    let mut c = command(who, Path::new(&bin), args);
    c.env("BRIG", brig_bin());
    c.output().expect("run unpack")
}

fn sh(who: Who, script: &str) {
    let o = command(who, Path::new("/bin/sh"), &["-c", script]).output().expect("sh");
    assert!(o.status.success(), "{script}: {}", stderr(&o));
}

/// Every path with its type, mode and (for files) contents' checksum; links with their target.
fn listing(who: Who, dir: &str) -> String {
    let script = format!(
        "cd {dir} && find . -printf '%p %y %m %l\\n' | sort && find . -type f -print0 | sort -z | \
         xargs -0r sha256sum"
    );
    let o = command(who, Path::new("/bin/sh"), &["-c", &script]).output().expect("find");
    stdout(&o)
}

#[test]
fn unpack_matches_tar_x_for_every_format() {
    for who in everyone() {
        let s = Scratch::new(who);
        let src = s.sub("src");
        sh(
            who,
            &format!(
                "set -e; mkdir -p {src}/sub/deep {src}/$(printf 'l%.0s' $(seq 1 120)); cd {src}; \
                 head -c 3000000 /dev/urandom > big.bin; seq 1 40000 > sub/nums.txt; : > empty; \
                 ln -s sub/nums.txt link; ln sub/nums.txt hard; chmod 600 sub/nums.txt; \
                 printf '#!/bin/sh\\n' > sub/run.sh; chmod 755 sub/run.sh; echo x > sub/deep/x; \
                 chmod 700 sub/deep; cd ..; tar -C src -cf a.tar .; gzip -k a.tar; \
                 zstd -q a.tar -o a.tar.zst; xz -k a.tar"
            ),
        );
        let reference = s.sub("ref");
        sh(who, &format!("mkdir {reference} && tar -C {reference} -xf {}/a.tar", s.s()));
        let want = listing(who, &reference);
        assert!(want.contains("big.bin"), "{want}");
        for archive in ["a.tar", "a.tar.gz", "a.tar.zst", "a.tar.xz"] {
            let out = s.sub(&format!("out-{archive}"));
            sh(who, &format!("mkdir {out}"));
            let o = unpack(who, &s, &[&s.sub(archive), &out]);
            assert_eq!(code(&o), 0, "{who:?} {archive}: {}", stderr(&o));
            assert_eq!(listing(who, &out), want, "{who:?} {archive}: not what tar -x made");
        }
    }
}

/// Large files that decompress faster than they are written: every chunk arrives intact through
/// the shared output buffer (a slot is refilled only once the caller asked for it again, after
/// writing it out; with the slot filled before the request, files came out mixed).
#[test]
fn unpack_streams_large_files_intact() {
    for who in everyone() {
        let s = Scratch::new(who);
        sh(
            who,
            &format!(
                "set -e; cd {}; mkdir src; for i in 1 2 3 4; do head -c 9000000 /dev/urandom | \
                 base64 -w 100 > src/f$i; done; tar -C src -cf a.tar .; zstd -q -1 a.tar -o a.tar.zst",
                s.s()
            ),
        );
        let out = s.sub("out");
        sh(who, &format!("mkdir {out}"));
        let o = unpack(who, &s, &[&s.sub("a.tar.zst"), &out]);
        assert_eq!(code(&o), 0, "{who:?}: {}", stderr(&o));
        assert_eq!(listing(who, &out), listing(who, &s.sub("src")), "{who:?}: the files differ");
    }
}

/// Archives a hostile tool made: each refused, its entry named, nothing written outside DESTDIR.
#[test]
fn unpack_refuses_traversal_links_out_and_bombs() {
    let make = r#"
import io, sys, tarfile
def tar(name, entries):
    with tarfile.open(name, "w") as t:
        for n, kind, arg in entries:
            i = tarfile.TarInfo(n)
            if kind == "file":
                i.size = len(arg); t.addfile(i, io.BytesIO(arg))
            elif kind == "sym":
                i.type = tarfile.SYMTYPE; i.linkname = arg; t.addfile(i)
            elif kind == "hard":
                i.type = tarfile.LNKTYPE; i.linkname = arg; t.addfile(i)
tar("dotdot.tar", [("ok", "file", b"1"), ("../escaped", "file", b"x")])
tar("abs.tar", [("/tmp/escaped-abs", "file", b"x")])
tar("symout.tar", [("etc", "sym", "/etc"), ("etc/escaped", "file", b"x")])
tar("symup.tar", [("up", "sym", "../.."), ("up/escaped", "file", b"x")])
tar("hardout.tar", [("h", "hard", "../outside")])
tar("many.tar", [("f%d" % i, "file", b"") for i in range(50)])
"#;
    for who in everyone() {
        let s = Scratch::new(who);
        sh(who, &format!("cd {} && echo secret > outside && /usr/bin/python3 -c '{make}'", s.s()));
        sh(
            who,
            &format!(
                "cd {} && truncate -s 64M zeros && tar -c zeros | gzip -1 > bomb.tar.gz",
                s.s()
            ),
        );
        let cases: &[(&str, &[&str], &str)] = &[
            ("dotdot.tar", &[], "refused entry \"../escaped\""),
            ("abs.tar", &[], "refused entry \"/tmp/escaped-abs\": an absolute path"),
            ("symout.tar", &[], "refused entry \"etc\": a link to the absolute path"),
            ("symup.tar", &[], "refused entry \"up\": a link to \"../..\", out of DESTDIR"),
            ("hardout.tar", &[], "refused entry \"../outside\""),
            ("many.tar", &["--max-entries", "10"], "more than 10 entries"),
            ("bomb.tar.gz", &["--max-bytes", "1000000"], "exceed what is left"),
        ];
        for (archive, flags, said) in cases {
            let out = s.sub(&format!("out-{archive}"));
            sh(who, &format!("mkdir {out}"));
            let mut args: Vec<&str> = flags.to_vec();
            let a = s.sub(archive);
            args.extend([a.as_str(), out.as_str()]);
            let o = unpack(who, &s, &args);
            assert_eq!(code(&o), 1, "{who:?} {archive}: {}", stderr(&o));
            assert!(stderr(&o).contains(said), "{who:?} {archive}: {}", stderr(&o));
        }
        let found = Command::new("find").args([s.s(), "/tmp", "-name", "escaped*"]).output();
        assert_eq!(stdout(&found.expect("find")), "", "{who:?}: something escaped");
        let outside = std::fs::read_to_string(s.join("outside")).expect("outside");
        assert_eq!(outside, "secret\n", "{who:?}: the file outside changed");
    }
}

/// The hostile component: every attack on the host fails inside its prison, every attack on the
/// caller through the channel is caught, and the caller lives to say so.
#[test]
fn unpack_survives_a_hostile_component() {
    for who in everyone() {
        let s = Scratch::new(who);
        sh(who, &format!("cd {} && echo hi > f && tar -cf a.tar f", s.s()));
        let out = s.sub("out");
        sh(who, &format!("mkdir {out}"));
        let o = unpack(who, &s, &["--malicious", "--deadline", "2", &s.sub("a.tar"), &out]);
        let err = stderr(&o);
        assert_eq!(code(&o), 1, "{who:?}: {err}");
        assert!(!err.contains("SUCCEEDED"), "{who:?}: an attack on the host worked\n{err}");
        for attack in [
            "open /etc/passwd: refused",
            "read the supervisor's memory (/proc/1/mem): refused",
            "list other processes (/proc): refused",
            "signal every process it can (kill -1): refused",
            "connect to 1.1.1.1:53: refused",
            "write into the archive it was given: refused",
            "write past the end of its output buffer: refused",
            "grow its output buffer: refused",
            "shrink its output buffer under the caller's mapping: refused",
            "spawn a shell: refused",
            "a message longer than 1048640 bytes",
            "a message with more than 4 fds",
            "an fd of kind Socket where Sealed was expected",
            "a malformed message",
            "a reply to request 1002",
            "no answer before the deadline",
            "the peer is gone",
            "refused entry \"bomb\"",
            "the component sent a chunk of the wrong size",
            "stopped in 12 of 12 rounds",
        ] {
            assert!(err.contains(attack), "{who:?}: no report of {attack:?}\n{err}");
        }
        assert!(!Path::new("/tmp/owned").exists(), "{who:?}: /tmp/owned was made");
        let left = Command::new("pgrep").args(["-f", "brig-component unpack-malicious"]).output();
        assert_eq!(stdout(&left.expect("pgrep")), "", "{who:?}: a component outlived the caller");
    }
}

#[test]
fn check_prints_the_allow_list() {
    let who = Who::User(test_uid());
    let s = Scratch::new(who);
    let m = s.write("m.toml", "[sandbox]\nonly_syscalls = [\"read\", \"write\", \"exit\"]\n");
    s.own(who);
    let o = brig(who, &["check", m.to_str().expect("utf-8")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("only these 3 (an allow-list; every other one is refused), and the exec that starts it: read, write, exit"),
        "{}",
        stdout(&o)
    );
}
