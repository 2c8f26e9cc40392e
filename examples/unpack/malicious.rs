//! The hostile component, `--malicious`: a decompressor an attacker controls, under the same
//! prison and allow-list as the real one. The caller starts it once per round; `attempt` in
//! `Open` picks the round's attack. Round 0 attacks the host from inside and reports each
//! result on stderr; the other rounds attack the caller through the channel.

use std::os::fd::AsFd;
use std::time::Duration;

use brig_component::{Component, Entry, Restart, Spec};
use brig_ipc::Channel;

use crate::proto::{self, Format, Kind, Reply, Request, INLINE, SLOTS};
use crate::writer::Writer;

/// The rounds: what each one tries.
pub const ROUNDS: &[&str] = &[
    "reach the host: files, the caller's memory, other processes, the network, the archive",
    "send an entry that climbs out of DESTDIR (../)",
    "send a symlink to /etc, then a file through it",
    "send a message longer than the channel allows",
    "send more fds than the channel allows",
    "send a socket where a sealed memfd belongs",
    "send garbage",
    "answer with the wrong request id",
    "hang",
    "crash",
    "claim a 1 TiB file (a bomb)",
    "send more data than the entry's size, past the end of its output buffer",
];

fn say(what: &str, r: std::io::Result<()>) {
    let how = match r {
        Ok(()) => "SUCCEEDED".to_string(),
        Err(e) => format!("refused ({e})"),
    };
    eprintln!("unpack-malicious: {what}: {how}");
}

/// Round 0: everything a compromised decompressor would try first.
fn attack_host(archive: &std::fs::File, out: &std::fs::File) {
    say("open /etc/passwd", std::fs::File::open("/etc/passwd").map(drop));
    say("create /tmp/owned", std::fs::File::create("/tmp/owned").map(drop));
    say("read the supervisor's memory (/proc/1/mem)", std::fs::read("/proc/1/mem").map(drop));
    say("list other processes (/proc)", std::fs::read_dir("/proc").map(drop));
    say("signal every process it can (kill -1)", brig_sys::process::kill(-1, libc::SIGKILL));
    say("signal pid 1", brig_sys::process::kill(1, libc::SIGKILL));
    say(
        "connect to 1.1.1.1:53",
        std::net::TcpStream::connect_timeout(&([1, 1, 1, 1], 53).into(), Duration::from_secs(1))
            .map(drop),
    );
    let mut f = archive;
    say("write into the archive it was given", std::io::Write::write_all(&mut f, b"x"));
    say("grow the archive", archive.set_len(1 << 30));
    let past_end = std::os::unix::fs::FileExt::write_at(out, b"x", (SLOTS * INLINE) as u64);
    say("write past the end of its output buffer", past_end.map(drop));
    say("grow its output buffer", out.set_len(1 << 30));
    say("shrink its output buffer under the caller's mapping", out.set_len(0));
    say("spawn a shell", std::process::Command::new("/bin/sh").status().map(drop));
}

/// A raw frame: the library refuses to send what breaks the rules, an attacker does not.
fn raw(ch: &Channel, kind: u8, id: u64, body: &[u8], fds: &[std::os::fd::BorrowedFd<'_>]) {
    let mut frame = vec![kind];
    frame.extend_from_slice(&id.to_le_bytes());
    frame.extend_from_slice(body);
    let _ = brig_sys::fdpass::send_msg(ch.fd(), &frame, fds);
}

fn entry(path: &str, kind: Kind, size: u64, link: &str) -> Reply {
    let (path, link) = (path.as_bytes().to_vec(), link.as_bytes().to_vec());
    Reply::Entry(proto::Entry { path, kind, mode: 0o644, size, link })
}

pub fn serve(mut ch: Channel) -> i32 {
    let wait = Duration::from_secs(3600);
    let Ok(r) = ch.next_request::<Request>(wait) else { return 1 };
    let Request::Open { attempt, archive, out, .. } = r.msg else { return 1 };
    let archive = std::fs::File::from(archive);
    if attempt == 0 {
        attack_host(&archive, &std::fs::File::from(out));
    }
    let _ = ch.reply(r.id, Ok(Reply::Opened));
    // Every later round answers the caller's first Next with its attack.
    let Ok(r) = ch.next_request::<Request>(wait) else { return 1 };
    let id = r.id;
    let reply = |ch: &mut Channel, rep: Reply| ch.reply(id, Ok(rep)).is_ok();
    match attempt {
        0 | 1 => {
            reply(&mut ch, entry("../escape", Kind::File, 1, ""));
        }
        2 => {
            reply(&mut ch, entry("etc", Kind::Symlink, 0, "/etc"));
            if let Ok(r) = ch.next_request::<Request>(wait) {
                let _ = ch.reply(r.id, Ok(entry("etc/passwd", Kind::File, 5, "")));
            }
        }
        3 => raw(&ch, 1, id, &vec![b'A'; proto::LIMITS.max_bytes + 1000], &[]),
        4 => raw(&ch, 1, id, &[2], &[ch.fd(); 8]),
        5 => raw(&ch, 1, id, &[4], &[ch.fd()]),
        6 => raw(&ch, 1, id, &[0xff; 64], &[]),
        7 => raw(&ch, 1, id + 1000, &[2], &[]),
        8 => {
            // Hang: wait for a request that never comes.
            let _ = ch.next_request::<Request>(Duration::from_secs(3600));
        }
        9 => std::process::abort(),
        10 => {
            reply(&mut ch, entry("bomb", Kind::File, 1 << 40, ""));
        }
        _ => {
            reply(&mut ch, entry("small", Kind::File, 10, ""));
            if let Ok(r) = ch.next_request::<Request>(wait) {
                // More than the entry holds, and more than the slot: past its output buffer.
                let _ = ch.reply(r.id, Ok(Reply::Shared((SLOTS * INLINE) as u32 + 1)));
            }
        }
    }
    // Keep the channel open until the caller is done with this round.
    let _ = archive.as_fd();
    let _ = ch.next_request::<Request>(Duration::from_secs(30));
    0
}

/// The caller's side of `--malicious`: one round per attack, the component restarted after
/// each failure; every round must fail, and the caller says how.
pub fn run(
    mut w: Writer,
    fmt: Format,
    bytes: &[u8],
    wait: Duration,
    hostile: Entry,
) -> Result<(u64, u64), String> {
    let restart = Restart::OnFailure {
        backoff: Duration::from_millis(5),
        max: 64,
        within: Duration::from_secs(600),
    };
    let mut c =
        Component::start(Spec { restart, ..Spec::new(hostile) }).map_err(|e| e.to_string())?;
    let mut held = 0;
    for (i, what) in ROUNDS.iter().enumerate() {
        let r = crate::pull(&mut c, &mut w, fmt, i as u32, bytes, wait);
        match r {
            Err(e) => {
                held += 1;
                eprintln!("unpack: round {i} ({what}): stopped: {e}");
            }
            Ok(()) => eprintln!("unpack: round {i} ({what}): the component finished the archive"),
        }
        // A fresh component for each round.
        c.kill(format!("round {i} is over"));
    }
    let (n, b) = w.finish().unwrap_or((0, 0));
    Err(format!(
        "the hostile component was stopped in {held} of {} rounds ({n} entries, {b} bytes written, all checked)",
        ROUNDS.len()
    ))
}
