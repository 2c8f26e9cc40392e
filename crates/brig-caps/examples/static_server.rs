//! A static-file web server that has no authority of its own.
//!
//! Under brig it receives two capabilities, a directory `site` and a listener `http` (TCP or
//! unix), enters capability mode, and serves GET requests for files beneath `site` (HTTP/1.1,
//! keep-alive, a thread per connection). It cannot open any other file or make any connection:
//!
//! ```sh
//! brig run --dir site=./site --listen http=tcp://127.0.0.1:8080 -- static_server
//! brig run -m examples/static-server.toml
//! ```
//!
//! `GET /backdoor` is a deliberate backdoor, the code an attacker would run after taking over the
//! server: it tries to read `/etc/passwd`, to reach a file next to `site` through `..`, and to
//! connect out, and reports each attempt, so a test can see them fail while serving works.
//!
//! `static_server --bare DIR ADDR` runs the same server unsandboxed (the benchmark's baseline).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;

use cap_std::fs::Dir;

type Stream = Box<dyn ReadWrite + Send>;
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

enum Listener {
    Tcp(cap_std::net::TcpListener),
    Unix(UnixListener),
}

impl Listener {
    fn accept(&self) -> std::io::Result<Stream> {
        Ok(match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept()?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
            Listener::Unix(l) => Box::new(l.accept()?.0),
        })
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (site, listener) = match args.as_slice() {
        [flag, dir, addr] if flag == "--bare" => bare(dir, addr),
        [] => match sandboxed() {
            Ok(v) => v,
            Err(e) => {
                eprintln!("static_server: {e}");
                std::process::exit(1);
            }
        },
        _ => {
            eprintln!("usage: static_server (under brig)  |  static_server --bare DIR HOST:PORT");
            std::process::exit(2);
        }
    };
    eprintln!("static_server: serving");
    let site = std::sync::Arc::new(site);
    loop {
        match listener.accept() {
            Ok(s) => {
                let site = site.clone();
                std::thread::spawn(move || serve(&site, s));
            }
            Err(e) => eprintln!("static_server: accept: {e}"),
        }
    }
}

/// Under brig: take the capabilities, then give up everything else.
fn sandboxed() -> Result<(Dir, Listener), brig_caps::Error> {
    let mut caps = brig_caps::Caps::load()?;
    let site = caps.dir("site")?;
    let unix =
        caps.description().caps.iter().any(|c| {
            c.name == "http" && c.address.as_deref().is_some_and(|a| a.starts_with("unix:"))
        });
    let listener = if unix {
        Listener::Unix(caps.unix_listener("http")?)
    } else {
        Listener::Tcp(caps.tcp_listener("http")?)
    };
    caps.enter_capability_mode()?;
    Ok((site, listener))
}

/// Unsandboxed: open the directory and the listener ourselves.
fn bare(dir: &str, addr: &str) -> (Dir, Listener) {
    let site = Dir::open_ambient_dir(dir, cap_std::ambient_authority()).expect("open DIR");
    let l = std::net::TcpListener::bind(addr).expect("bind ADDR");
    (site, Listener::Tcp(cap_std::net::TcpListener::from_std(l)))
}

/// One connection: requests until the client closes or asks to.
fn serve(site: &Dir, stream: Stream) {
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut close = false;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" || h == "\n" {
                break;
            }
            if h.to_ascii_lowercase().starts_with("connection: close") {
                close = true;
            }
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/");
        let (status, body) = if !line.starts_with("GET ") {
            ("405 Method Not Allowed", b"only GET\n".to_vec())
        } else if path == "/backdoor" {
            ("200 OK", backdoor(site).into_bytes())
        } else {
            let rel = path.trim_start_matches('/');
            let rel = if rel.is_empty() { "index.html" } else { rel };
            match site.read(rel) {
                Ok(b) => ("200 OK", b),
                Err(_) => ("404 Not Found", b"not found\n".to_vec()),
            }
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        let w = r.get_mut();
        if w.write_all(head.as_bytes()).and_then(|()| w.write_all(&body)).is_err() || close {
            return;
        }
    }
}

/// What an attacker who took over the server would try. Each line: the attempt, then
/// `REFUSED (why)` or `SUCCEEDED`.
fn backdoor(site: &Dir) -> String {
    let mut out = String::new();
    let mut note = |what: &str, r: Result<String, String>| {
        let line = match r {
            Ok(detail) => format!("{what}: SUCCEEDED {detail}\n"),
            Err(e) => format!("{what}: REFUSED ({e})\n"),
        };
        out.push_str(&line);
    };
    let show = |e: std::io::Error| e.to_string();
    note(
        "read /etc/passwd",
        std::fs::read_to_string("/etc/passwd")
            .map(|s| s.lines().next().unwrap_or("").to_string())
            .map_err(show),
    );
    note(
        "read ../secret.txt next to the site",
        std::fs::read_to_string(format!("/proc/self/fd/{}/../secret.txt", site.as_raw_fd()))
            .map_err(show),
    );
    note(
        "read ../secret.txt through the site capability",
        site.read_to_string("../secret.txt").map_err(show),
    );
    note(
        "connect to 127.0.0.1:22",
        std::net::TcpStream::connect("127.0.0.1:22").map(|_| String::new()).map_err(show),
    );
    note(
        "connect to 1.1.1.1:80",
        std::net::TcpStream::connect_timeout(
            &"1.1.1.1:80".parse().expect("address"),
            std::time::Duration::from_secs(1),
        )
        .map(|_| String::new())
        .map_err(show),
    );
    note(
        "listen on 0.0.0.0:9999",
        std::net::TcpListener::bind("0.0.0.0:9999").map(|_| String::new()).map_err(show),
    );
    out
}
