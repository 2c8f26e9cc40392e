//! Channels against a peer that lies, floods, hangs or dies: each case is a typed error, never
//! a panic or a hang; and the decoder fuzzed.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use brig_ipc::{Channel, Dec, Enc, Error, FdKind, Limits, Wire};

const WAIT: Duration = Duration::from_secs(5);

/// A small protocol for the tests: a closed enum, one tag byte per variant.
#[derive(Debug)]
enum Msg {
    Echo(Vec<u8>),
    Dir(OwnedFd),
    Blob(Vec<u8>),
}

impl Wire for Msg {
    fn encode(self, e: &mut Enc) {
        match self {
            Msg::Echo(b) => {
                e.u8(0);
                e.bytes(&b);
            }
            Msg::Dir(fd) => {
                e.u8(1);
                e.fd(fd);
            }
            Msg::Blob(b) => {
                e.u8(2);
                e.blob(&b).expect("memfd");
            }
        }
    }
    fn decode(d: &mut Dec<'_>) -> Result<Msg, Error> {
        match d.u8()? {
            0 => Ok(Msg::Echo(d.bytes(4096)?.to_vec())),
            1 => Ok(Msg::Dir(d.fd(FdKind::Dir)?)),
            2 => Ok(Msg::Blob(d.blob(8 << 20)?)),
            _ => Err(Error::Garbage("an unknown message")),
        }
    }
}

fn pair() -> (Channel, Channel) {
    Channel::pair(Limits::default()).expect("socketpair")
}

/// Sends raw bytes and fds on `c`'s socket, as a hostile peer would.
fn raw(c: &Channel, bytes: &[u8], fds: &[std::os::fd::BorrowedFd<'_>]) {
    brig_sys::fdpass::send_msg(c.fd(), bytes, fds).expect("send");
}

#[test]
fn hello_then_calls_with_fds_and_blobs() {
    let (mut a, mut b) = pair();
    let server = std::thread::spawn(move || {
        b.hello("test", 1, WAIT).expect("hello");
        for _ in 0..3 {
            let r = b.next_request::<Msg>(WAIT).expect("request");
            let answer = match r.msg {
                Msg::Echo(v) => Ok(v.into_iter().rev().collect::<Vec<u8>>()),
                Msg::Dir(_) => Ok(b"dir".to_vec()),
                Msg::Blob(v) => Ok(v.len().to_string().into_bytes()),
            };
            b.reply(r.id, answer).expect("reply");
        }
    });
    a.hello("test", 1, WAIT).expect("hello");
    let r: Vec<u8> = a.call(Msg::Echo(b"abc".to_vec()), WAIT).expect("call");
    assert_eq!(r, b"cba");
    let dir = OwnedFd::from(std::fs::File::open("/").expect("open /"));
    let r: Vec<u8> = a.call(Msg::Dir(dir), WAIT).expect("call");
    assert_eq!(r, b"dir");
    let big = vec![7u8; 4 << 20];
    let r: Vec<u8> = a.call(Msg::Blob(big), WAIT).expect("blob");
    assert_eq!(r, b"4194304");
    server.join().expect("server");
}

#[test]
fn a_peer_of_another_protocol_is_refused() {
    let (mut a, mut b) = pair();
    let t = std::thread::spawn(move || b.hello("test", 2, WAIT));
    let e = a.hello("test", 1, WAIT).expect_err("mismatch");
    assert!(matches!(e, Error::Protocol { ref theirs, .. } if theirs == "test/2"), "{e}");
    assert!(matches!(t.join().expect("thread"), Err(Error::Protocol { .. })));
}

#[test]
fn oversized_messages_and_too_many_fds_are_refused() {
    let (mut small, big) = Channel::pair(Limits { max_bytes: 1024, max_fds: 2 }).expect("pair");
    raw(&big, &[0u8; 4096], &[]);
    assert!(matches!(small.next_request::<Msg>(WAIT), Err(Error::TooBig { max: 1024 })));
    let f = std::fs::File::open("/").expect("open");
    let fds = [f.as_fd(), f.as_fd(), f.as_fd(), f.as_fd(), f.as_fd()];
    raw(&big, &[0u8; 16], &fds);
    assert!(matches!(small.next_request::<Msg>(WAIT), Err(Error::TooManyFds { max: 2 })));
    // Our own side refuses to send what the peer would refuse.
    assert!(matches!(small.call::<Vec<u8>, ()>(vec![1u8; 2000], WAIT), Err(Error::TooBig { .. })));
}

#[test]
fn fds_of_the_wrong_kind_and_unsealed_memfds_are_refused() {
    let (a, mut b) = pair();
    let file = std::fs::File::open("/proc/self/status").expect("open");
    let mut bytes = vec![0u8];
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes.push(1); // Msg::Dir
    raw(&a, &bytes, &[file.as_fd()]);
    let e = b.next_request::<Msg>(WAIT).expect_err("a file is not a dir");
    assert!(matches!(e, Error::FdKind { expected: FdKind::Dir, got: FdKind::File }), "{e}");
    let memfd = brig_sys::fdpass::memfd("unsealed", 0).expect("memfd");
    bytes.pop();
    bytes.push(2); // Msg::Blob
    raw(&a, &bytes, &[memfd.as_fd()]);
    let e = b.next_request::<Msg>(WAIT).expect_err("an unsealed memfd could change");
    assert!(matches!(e, Error::FdKind { expected: FdKind::Sealed, got: FdKind::Other }), "{e}");
}

/// A shared buffer: its kind is told apart from sealed and unsealed memfds, its size cannot
/// change, and the mapping refuses what lies outside it or a write through a read-only view.
#[test]
fn shared_buffers_keep_their_size_and_their_bounds() {
    use brig_sys::fdpass::{shared_memfd, SharedMap};
    let fd = shared_memfd("shared", 8192).expect("shared memfd");
    assert_eq!(brig_ipc::wire::kind_of(&fd), FdKind::Shared);
    let unsealed = brig_sys::fdpass::memfd("unsealed", 0).expect("memfd");
    assert_eq!(brig_ipc::wire::kind_of(&unsealed), FdKind::Other);
    let f = std::fs::File::from(fd.try_clone().expect("dup"));
    for len in [0, 4096, 1 << 20] {
        assert!(f.set_len(len).is_err(), "the size changed to {len}");
    }
    let past = std::os::unix::fs::FileExt::write_at(&f, b"x", 8192);
    assert!(past.is_err(), "a write past the end grew it");
    let errno = |r: std::io::Result<SharedMap>| r.expect_err("refused").raw_os_error();
    assert_eq!(errno(SharedMap::new(fd.as_fd(), 4096, true)), Some(libc::EINVAL));
    assert_eq!(errno(SharedMap::new(unsealed.as_fd(), 0, true)), Some(libc::EPERM));
    let mut w = SharedMap::new(fd.as_fd(), 8192, true).expect("writer");
    let mut r = SharedMap::new(fd.as_fd(), 8192, false).expect("reader");
    w.put(8000, &[7u8; 192]).expect("put at the end");
    assert_eq!(w.put(8001, &[7u8; 192]).expect_err("past").raw_os_error(), Some(libc::EINVAL));
    assert_eq!(w.put(usize::MAX, &[1]).expect_err("wraps").raw_os_error(), Some(libc::EINVAL));
    assert_eq!(r.put(0, &[1]).expect_err("read-only").raw_os_error(), Some(libc::EACCES));
    let (pr, pw) = brig_sys::fs::pipe().expect("pipe");
    r.write_to(8000, 192, pw.as_fd()).expect("write out");
    assert!(r.write_to(8000, 193, pw.as_fd()).is_err(), "past the end");
    drop(pw);
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(pr), &mut got).expect("read");
    assert_eq!(got, vec![7u8; 192]);
}

#[test]
fn garbage_wrong_ids_hangs_and_deaths_are_typed_errors() {
    let (mut a, mut b) = pair();
    raw(&a, b"\x07garbage!", &[]);
    assert!(matches!(b.next_request::<Msg>(WAIT), Err(Error::Garbage(_))));
    // A reply to another request.
    let mut reply = vec![1u8];
    reply.extend_from_slice(&99u64.to_le_bytes());
    raw(&b, &reply, &[]);
    let e = a.call::<u64, ()>(5, WAIT).expect_err("wrong id");
    assert!(matches!(e, Error::WrongId { expected: 1, got: 99 }), "{e}");
    // Bytes left over after the message.
    let mut extra = vec![0u8];
    extra.extend_from_slice(&2u64.to_le_bytes());
    extra.extend_from_slice(&[0, 0, 0, 0, 0, 9]);
    raw(&a, &extra, &[]);
    assert!(matches!(b.next_request::<Msg>(WAIT), Err(Error::Garbage(_))));
    // A peer that never answers: the deadline.
    let t = Instant::now();
    let e = a.call::<u64, ()>(5, Duration::from_millis(100)).expect_err("hangs");
    assert!(matches!(e, Error::Timeout) && t.elapsed() < Duration::from_secs(2), "{e}");
    // A peer that died.
    drop(b);
    assert!(matches!(a.call::<u64, ()>(5, WAIT), Err(Error::PeerGone)));
}

#[test]
fn a_flood_is_read_one_message_at_a_time() {
    let (a, mut b) = pair();
    let sender = std::thread::spawn(move || {
        let mut sent = 0;
        while sent < 10_000 {
            if brig_sys::fdpass::send_msg(a.fd(), b"\x00", &[]).is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    let mut errors = 0;
    for _ in 0..10_000 {
        match b.next_request::<Msg>(WAIT) {
            Err(Error::Garbage(_)) => errors += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((sender.join().expect("sender"), errors), (10_000, 10_000));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
    /// The decoder on arbitrary bytes: a message or a typed error, never a panic. 20,000
    /// inputs per run.
    #[test]
    fn the_decoder_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
        let mut d = Dec::new(&bytes, Vec::new());
        if let Ok(m) = Msg::decode(&mut d) {
            let _ = (m, d.finish());
        }
    }
}
