//! The decompression component: gzip, zstd or xz, then tar, from a sealed memfd. It runs with
//! no filesystem, no network and the allow-list of `brig_component::BASE_SYSCALLS`; the same
//! code runs in-process for `--in-process` (the benchmark's reference).

use std::fs::File;
use std::io::{BufReader, Read};
use std::os::fd::AsFd;
use std::time::Duration;

use brig_ipc::Channel;

use brig_sys::fdpass::SharedMap;

use crate::proto::{Entry, Format, Kind, Reply, Request, INLINE, SLOTS};

/// Where the archive's entries go: the caller's validating writer, or the channel.
pub trait Sink {
    fn entry(&mut self, e: Entry) -> Result<(), String>;
    /// The current file's next bytes (a file's data adds up to its size).
    fn data(&mut self, bytes: &[u8]) -> Result<(), String>;
}

/// The decompressor for `format` over `input`.
pub fn decoder(format: Format, input: File) -> std::io::Result<Box<dyn Read>> {
    let r = BufReader::with_capacity(64 << 10, input);
    Ok(match format {
        Format::Tar => Box::new(r),
        Format::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Format::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
        Format::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(r)),
    })
}

/// Reads the tar stream and gives every entry to `sink`.
pub fn unpack(input: Box<dyn Read>, sink: &mut dyn Sink) -> Result<(), String> {
    let mut archive = tar::Archive::new(input);
    let mut buf = vec![0u8; INLINE];
    for e in archive.entries().map_err(|e| format!("reading the archive: {e}"))? {
        let mut e = e.map_err(|e| format!("reading the archive: {e}"))?;
        let h = e.header();
        let kind = match h.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink,
            tar::EntryType::Link => Kind::Hardlink,
            other => return Err(format!("an entry of unsupported type {other:?}")),
        };
        let mode = h.mode().map_err(|e| format!("an entry's mode: {e}"))?;
        let size = if kind == Kind::File { e.size() } else { 0 };
        let path = e.path_bytes().into_owned();
        let link = e.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default();
        sink.entry(Entry { path, kind, mode, size, link })?;
        if kind != Kind::File {
            continue;
        }
        // Full chunks (the last one excepted), so the caller knows how many are due.
        loop {
            let n = fill(&mut e, &mut buf).map_err(|e| format!("reading the archive: {e}"))?;
            if n == 0 {
                break;
            }
            sink.data(&buf[..n])?;
        }
    }
    Ok(())
}

/// Reads until `buf` is full or the entry ends.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// How long the component waits for the caller's next request.
const IDLE: Duration = Duration::from_secs(3600);

/// The component's entry point: one archive per `Open`, entries as the caller asks for them.
pub fn serve(mut ch: Channel) -> i32 {
    loop {
        let r = match ch.next_request::<Request>(IDLE) {
            Ok(r) => r,
            Err(brig_ipc::Error::PeerGone) => return 0,
            Err(_) => return 1,
        };
        let Request::Open { format, archive, out, .. } = r.msg else {
            let _ = ch.reply::<Reply>(r.id, Err("no archive is open".into()));
            continue;
        };
        let opened = decoder(format, File::from(archive))
            .and_then(|i| Ok((i, SharedMap::new(out.as_fd(), SLOTS * INLINE, true)?)));
        let (input, out) = match opened {
            Ok(x) => x,
            Err(e) => {
                let _ = ch.reply::<Reply>(r.id, Err(e.to_string()));
                continue;
            }
        };
        if ch.reply(r.id, Ok(Reply::Opened)).is_err() {
            return 1;
        }
        let mut link = Link { ch: &mut ch, out, reads: 0, broken: false };
        let done = unpack(input, &mut link);
        if link.broken {
            return 1;
        }
        // The caller's last Next gets End, or the reason the archive could not be read.
        let Ok(r) = ch.next_request::<Request>(IDLE) else { return 1 };
        let _ = ch.reply(r.id, done.map(|()| Reply::End));
    }
}

/// The sink that answers the caller's requests: `Next` with an entry, `Read` with data in the
/// output buffer's slot for that request.
struct Link<'a> {
    ch: &'a mut Channel,
    out: SharedMap,
    /// The `Read` requests answered since the `Open`.
    reads: usize,
    broken: bool,
}

impl Link<'_> {
    /// Waits for the caller's next request, which must be `want`, and answers it with what
    /// `reply` makes: only then is the reply made, so a slot is filled only once the caller has
    /// asked for it (and so is done writing out what the slot held before).
    fn answer<R: brig_ipc::Wire>(
        &mut self,
        want: fn(&Request) -> bool,
        reply: impl FnOnce(&mut Self) -> Result<R, String>,
    ) -> Result<(), String> {
        let r = self.ch.next_request::<Request>(IDLE).map_err(|e| {
            self.broken = true;
            e.to_string()
        })?;
        if !want(&r.msg) {
            let _ = self.ch.reply::<()>(r.id, Err("out of order".into()));
            self.broken = true;
            return Err("the caller asked out of order".into());
        }
        let reply = reply(self).inspect_err(|e| {
            let _ = self.ch.reply::<()>(r.id, Err(e.clone()));
            self.broken = true;
        })?;
        self.ch.reply(r.id, Ok(reply)).map_err(|e| {
            self.broken = true;
            e.to_string()
        })
    }
}

impl Sink for Link<'_> {
    fn entry(&mut self, e: Entry) -> Result<(), String> {
        self.answer(|r| matches!(r, Request::Next), |_| Ok(Reply::Entry(e)))
    }
    fn data(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.answer(
            |r| matches!(r, Request::Read),
            |l| {
                let slot = l.reads % SLOTS * INLINE;
                l.reads += 1;
                l.out.put(slot, bytes).map_err(|e| format!("the output buffer: {e}"))?;
                Ok(Reply::Shared(bytes.len() as u32))
            },
        )
    }
}
