//! `unpack [OPTIONS] ARCHIVE DESTDIR`: extracts an untrusted tar archive (plain, gzip, zstd or
//! xz) by sending its compressed bytes to a decompression component, a prison with no
//! filesystem, no network and an allow-list of syscalls. This process writes the files itself,
//! checking every path, link and size it receives.
//!
//! Options: `--malicious` uses the hostile component (every attack is reported); `--in-process`
//! decompresses here instead (the benchmark's reference); `--max-bytes N` and `--max-entries N`
//! set the budget (default 1 GiB, 100000); `--deadline SECS` the wait for each answer (10).
//! Exit status: 0 when everything was extracted, 1 when an entry or the component was refused
//! (the message names it), 2 on bad usage.

mod component;
mod malicious;
mod proto;
mod writer;

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::time::Duration;

use brig_component::{Component, Entry, Restart, Spec};
use brig_sys::fdpass;
use proto::{Format, Reply, Request, INLINE, SLOTS};
use writer::{Budget, Writer};

const UNPACK: Entry = Entry {
    name: "unpack",
    protocol: "unpack/1",
    serve: component::serve,
    syscalls: &[],
    limits: proto::LIMITS,
};
const HOSTILE: Entry = Entry {
    name: "unpack-malicious",
    protocol: "unpack/1",
    serve: malicious::serve,
    syscalls: &[],
    limits: proto::LIMITS,
};

struct Args {
    archive: String,
    dest: String,
    malicious: bool,
    in_process: bool,
    budget: Budget,
    deadline: Duration,
}

fn usage(why: &str) -> ! {
    eprintln!("unpack: {why}\nusage: unpack [--malicious|--in-process] [--max-bytes N] [--max-entries N] [--deadline SECS] ARCHIVE DESTDIR");
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        archive: String::new(),
        dest: String::new(),
        malicious: false,
        in_process: false,
        budget: Budget { bytes: 1 << 30, entries: 100_000 },
        deadline: Duration::from_secs(10),
    };
    let mut pos = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut num = |flag: &str| -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&format!("{flag} takes a number")))
        };
        match x.as_str() {
            "--malicious" => a.malicious = true,
            "--in-process" => a.in_process = true,
            "--max-bytes" => a.budget.bytes = num("--max-bytes"),
            "--max-entries" => a.budget.entries = num("--max-entries"),
            "--deadline" => a.deadline = Duration::from_secs(num("--deadline")),
            _ if x.starts_with("--") => usage(&format!("unknown option {x}")),
            _ => pos.push(x),
        }
    }
    let [archive, dest] =
        <[String; 2]>::try_from(pos).unwrap_or_else(|_| usage("give ARCHIVE and DESTDIR"));
    (a.archive, a.dest) = (archive, dest);
    a
}

/// The format, from the archive's first bytes (never from its name).
fn format(head: &[u8]) -> Format {
    match head {
        [0x1f, 0x8b, ..] => Format::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Format::Zstd,
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Format::Xz,
        _ => Format::Tar,
    }
}

/// Pulls every entry from the component into `w`.
fn pull(
    c: &mut Component,
    w: &mut Writer,
    fmt: Format,
    attempt: u32,
    bytes: &[u8],
    wait: Duration,
) -> Result<(), String> {
    let err = |e: std::io::Error| e.to_string();
    let archive = fdpass::sealed_memfd("unpack-archive", bytes).map_err(err)?;
    let out_fd = fdpass::shared_memfd("unpack-out", (SLOTS * INLINE) as u64).map_err(err)?;
    let out = fdpass::SharedMap::new(out_fd.as_fd(), SLOTS * INLINE, false).map_err(err)?;
    let open = Request::Open { format: fmt, attempt, archive, out: out_fd };
    let opened = c.call::<_, Reply>(open, wait).map_err(|e| e.to_string())?;
    opened.verify(|r| match r {
        Reply::Opened => Ok(()),
        other => Err(format!("the component answered Open with {}", name(&other))),
    })?;
    let mut reads = 0;
    let mut read = |c: &mut Component| -> Result<(u64, usize), String> {
        reads += 1;
        let id = c.request(Request::Read).map_err(|e| e.to_string())?;
        Ok((id, (reads - 1) % SLOTS * INLINE))
    };
    loop {
        let next = c.call::<_, Reply>(Request::Next, wait).map_err(|e| e.to_string())?;
        let entry = next.verify(|r| match r {
            Reply::Entry(e) => Ok(Some(e)),
            Reply::End => Ok(None),
            other => Err(format!("the component answered Next with {}", name(&other))),
        })?;
        let Some(entry) = entry else { return Ok(()) };
        let mut left = entry.size;
        writer_entry(w, entry)?;
        // Every chunk is full but the last: the caller knows how many are due and asks for the
        // next before writing this one, so the component decompresses while we write. The
        // slot of this one is asked for again only after it has been written out.
        let mut next = (left > 0).then(|| read(c)).transpose()?;
        while let Some((id, slot)) = next {
            let due = left.min(INLINE as u64);
            next = (left > due).then(|| read(c)).transpose()?;
            let got = c.answer::<Reply>(id, wait).map_err(|e| e.to_string())?;
            let data = got.verify(|r| match r {
                Reply::Shared(n) if u64::from(n) == due => Ok(None),
                Reply::Data(d) | Reply::Blob(d) if d.len() as u64 == due => Ok(Some(d)),
                Reply::Shared(_) | Reply::Data(_) | Reply::Blob(_) => Err(format!(
                    "the component sent a chunk of the wrong size ({due} bytes were due)"
                )),
                other => Err(format!("the component answered Read with {}", name(&other))),
            })?;
            left -= due;
            match data {
                // The component may still change the slot's bytes: they go to the file
                // as they are, never read here (the size was checked above).
                None => w.data_with(due, |f| out.write_to(slot, due as usize, f.as_fd()))?,
                Some(d) => component::Sink::data(w, &d)?,
            }
        }
    }
}

fn writer_entry(w: &mut Writer, e: proto::Entry) -> Result<(), String> {
    component::Sink::entry(w, e)
}

fn name(r: &Reply) -> &'static str {
    match r {
        Reply::Opened => "Opened",
        Reply::Entry(_) => "an entry",
        Reply::End => "End",
        Reply::Data(_) | Reply::Blob(_) | Reply::Shared(_) => "data",
    }
}

fn main() {
    brig_component::dispatch(&[UNPACK, HOSTILE]);
    let a = args();
    let mut bytes = Vec::new();
    if let Err(e) = File::open(&a.archive).and_then(|mut f| f.read_to_end(&mut bytes)) {
        eprintln!("unpack: {}: {e}", a.archive);
        std::process::exit(1);
    }
    let fmt = format(&bytes);
    let dest = match cap_std::fs::Dir::open_ambient_dir(&a.dest, cap_std::ambient_authority()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("unpack: {}: {e}", a.dest);
            std::process::exit(1);
        }
    };
    let w = Writer::new(dest, a.budget);
    let r = if a.in_process {
        in_process(w, fmt, bytes)
    } else if a.malicious {
        malicious::run(w, fmt, &bytes, a.deadline, HOSTILE)
    } else {
        through_component(w, fmt, &bytes, a.deadline)
    };
    match r {
        Ok((n, b)) => eprintln!("unpack: {n} entries, {b} bytes of file data"),
        Err(e) => {
            eprintln!("unpack: {e}");
            std::process::exit(1);
        }
    }
}

fn through_component(
    mut w: Writer,
    fmt: Format,
    bytes: &[u8],
    wait: Duration,
) -> Result<(u64, u64), String> {
    let mut c = Component::start(Spec { restart: Restart::Never, ..Spec::new(UNPACK) })
        .map_err(|e| e.to_string())?;
    pull(&mut c, &mut w, fmt, 0, bytes, wait)?;
    w.finish()
}

fn in_process(mut w: Writer, fmt: Format, bytes: Vec<u8>) -> Result<(u64, u64), String> {
    let archive = fdpass::sealed_memfd("unpack-archive", &bytes).map_err(|e| e.to_string())?;
    drop(bytes);
    let input = component::decoder(fmt, File::from(archive)).map_err(|e| e.to_string())?;
    component::unpack(input, &mut w)?;
    w.finish()
}
