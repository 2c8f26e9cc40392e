//! The `unpack/1` decoders (examples/unpack/proto.rs) on arbitrary bytes with arbitrary fds
//! beside them: a message or a typed error, never a panic. 20,000 inputs per run, each side.

#[allow(dead_code)]
#[path = "../../../examples/unpack/proto.rs"]
mod proto;

use std::os::fd::OwnedFd;

use brig_ipc::{Dec, Enc, Wire};
use proptest::prelude::*;
use proto::{Reply, Request};

/// Fds of the kinds the decoders may meet: a file, a sealed memfd, a shared buffer, a socket.
fn fds(kinds: &[u8]) -> Vec<OwnedFd> {
    kinds
        .iter()
        .map(|k| match k % 4 {
            0 => std::fs::File::open("/proc/self/status").expect("open").into(),
            1 => brig_sys::fdpass::sealed_memfd("fuzz", b"abc").expect("sealed memfd"),
            2 => brig_sys::fdpass::shared_memfd("fuzz", 4096).expect("shared memfd"),
            _ => brig_sys::fdpass::seqpacket_pair().expect("socketpair").0,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]
    #[test]
    fn replies_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        kinds in prop::collection::vec(any::<u8>(), 0..4),
    ) {
        let mut d = Dec::new(&bytes, fds(&kinds));
        if let Ok(m) = Reply::decode(&mut d) {
            let _ = (m, d.finish());
        }
    }

    #[test]
    fn requests_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        kinds in prop::collection::vec(any::<u8>(), 0..4),
    ) {
        let mut d = Dec::new(&bytes, fds(&kinds));
        if let Ok(m) = Request::decode(&mut d) {
            let _ = (m, d.finish());
        }
    }
}

/// An `Open` takes its archive only as a sealed memfd and its output buffer only as a shared
/// one: swapped or doubled, it is refused.
#[test]
fn open_takes_each_fd_only_of_its_kind() {
    let sealed = || brig_sys::fdpass::sealed_memfd("a", b"x").expect("sealed");
    let shared = || brig_sys::fdpass::shared_memfd("o", 4096).expect("shared");
    let decode = |archive: OwnedFd, out: OwnedFd| {
        let mut e = Enc::default();
        Request::Open { format: proto::Format::Tar, attempt: 0, archive, out }.encode(&mut e);
        let (bytes, fds) = e.into_parts();
        let mut d = Dec::new(&bytes, fds);
        Request::decode(&mut d).map(drop).and_then(|()| d.finish())
    };
    assert!(decode(sealed(), shared()).is_ok());
    assert!(decode(shared(), sealed()).is_err());
    assert!(decode(sealed(), sealed()).is_err());
    assert!(decode(shared(), shared()).is_err());
}
