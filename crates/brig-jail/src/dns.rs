//! The prison's resolver for `--egress`: answers the DNS queries the prison sends to
//! 127.0.0.1:53 with addresses of its own (198.18.0.0/15 and fd00:6272:6967::/48, never routed),
//! each standing for one allowed name, so that the broker knows which name a `connect()` means.
//! Supervisor side, trusted; parses what the prison sends (bounded, no allocation from lengths
//! it gives, every malformed query dropped). Nothing here touches the network.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use brig_policy::egress::{self, Egress};

/// At most this many names get an address in one run.
const MAX_NAMES: u32 = 65_000;
const V4_BASE: u32 = u32::from_be_bytes([198, 18, 0, 0]);
const V6_PREFIX: [u8; 6] = [0xfd, 0x00, 0x62, 0x72, 0x69, 0x67];

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
const NXDOMAIN: u8 = 3;
const FORMERR: u8 = 1;

/// The names given an address so far, both ways.
#[derive(Debug, Default)]
pub struct Names {
    index: HashMap<String, u32>,
    names: Vec<String>,
}

impl Names {
    fn index_of(&mut self, name: &str) -> Option<u32> {
        if let Some(&i) = self.index.get(name) {
            return Some(i);
        }
        let i = self.names.len() as u32 + 1;
        if i > MAX_NAMES {
            return None;
        }
        self.index.insert(name.to_string(), i);
        self.names.push(name.to_string());
        Some(i)
    }

    /// The name an address of ours stands for; `None` for any other address.
    pub fn name_of(&self, ip: IpAddr) -> Option<&str> {
        let i = match ip {
            IpAddr::V4(a) => u32::from(a).checked_sub(V4_BASE).filter(|&i| i < 1 << 17)?,
            IpAddr::V6(a) => {
                let o = a.octets();
                if o[..6] != V6_PREFIX {
                    return None;
                }
                u32::from_be_bytes([o[12], o[13], o[14], o[15]])
            }
        };
        self.names.get((i as usize).checked_sub(1)?).map(String::as_str)
    }
}

fn v4(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(V4_BASE + i)
}

fn v6(i: u32) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o[..6].copy_from_slice(&V6_PREFIX);
    o[12..].copy_from_slice(&i.to_be_bytes());
    Ipv6Addr::from(o)
}

/// What a query asked and how it was answered.
#[derive(Debug, PartialEq, Eq)]
pub struct Asked {
    pub name: String,
    /// Whether an egress rule names it (on any port).
    pub allowed: bool,
}

/// Answers one query: `Some((reply, asked))`, or `None` for a packet that is not a query we
/// answer (dropped).
/// With `any_name` (`--ask`), every valid name gets an address (a connection to it is asked
/// about).
pub fn answer(
    query: &[u8],
    rules: &[Egress],
    any_name: bool,
    names: &mut Names,
) -> Option<(Vec<u8>, Asked)> {
    if query.len() < 12 || query.len() > 512 {
        return None;
    }
    let flags = u16::from_be_bytes([query[2], query[3]]);
    let qd = u16::from_be_bytes([query[4], query[5]]);
    if flags & 0x8000 != 0 || (flags >> 11) & 0xf != 0 {
        return None; // a response, or not a standard query
    }
    let (name, end) = qname(query)?;
    let tail = query.get(end..end + 4)?;
    let qtype = u16::from_be_bytes([tail[0], tail[1]]);
    let qclass = u16::from_be_bytes([tail[2], tail[3]]);
    let question = &query[12..end + 4];
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&query[..2]);
    let rd = flags & 0x0100;
    let reply = |rcode: u8, an: u16, out: &mut Vec<u8>| {
        out.extend_from_slice(&(0x8080 | rd | rcode as u16).to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&an.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(question);
    };
    if qd != 1 || qclass != CLASS_IN || !egress::valid_name(&name) {
        reply(FORMERR, 0, &mut out);
        return Some((out, Asked { name, allowed: false }));
    }
    let allowed = rules.iter().any(|r| r.names(&name));
    let index = if allowed || any_name { names.index_of(&name) } else { None };
    let Some(i) = index else {
        reply(NXDOMAIN, 0, &mut out);
        return Some((out, Asked { name, allowed }));
    };
    let data: Option<Vec<u8>> = match qtype {
        TYPE_A => Some(v4(i).octets().to_vec()),
        TYPE_AAAA => Some(v6(i).octets().to_vec()),
        _ => None, // the name exists, with no record of that type
    };
    reply(0, data.is_some() as u16, &mut out);
    if let Some(d) = data {
        out.extend_from_slice(&[0xc0, 0x0c]); // the question's name
        out.extend_from_slice(&qtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&60u32.to_be_bytes());
        out.extend_from_slice(&(d.len() as u16).to_be_bytes());
        out.extend_from_slice(&d);
    }
    Some((out, Asked { name, allowed }))
}

/// The question's name (lower case, dotted) and where it ends; no compression pointers (a
/// question has none), labels of 63 bytes at most, 255 in all.
fn qname(q: &[u8]) -> Option<(String, usize)> {
    let mut at = 12;
    let mut labels: Vec<String> = Vec::new();
    loop {
        let len = *q.get(at)? as usize;
        at += 1;
        if len == 0 {
            break;
        }
        if len > 63 || at - 12 > 255 {
            return None;
        }
        let label = q.get(at..at + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += len;
    }
    Some((labels.join("."), at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&1u16.to_be_bytes());
        q
    }

    #[test]
    fn allowed_names_get_our_addresses_and_map_back() {
        let rules = [Egress::parse("*.example.org:443").expect("rule")];
        let mut names = Names::default();
        let (a, asked) =
            answer(&query("WWW.example.org", TYPE_A), &rules, false, &mut names).expect("a");
        assert!(asked.allowed && asked.name == "www.example.org");
        assert_eq!(&a[..2], &[0x12, 0x34]);
        assert_eq!(a[3] & 0xf, 0, "NOERROR");
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1, "one answer");
        let ip: [u8; 4] = a[a.len() - 4..].try_into().expect("4");
        assert_eq!(names.name_of(IpAddr::from(ip)), Some("www.example.org"));
        let (aaaa, _) =
            answer(&query("www.example.org", TYPE_AAAA), &rules, false, &mut names).expect("");
        let ip: [u8; 16] = aaaa[aaaa.len() - 16..].try_into().expect("16");
        assert_eq!(names.name_of(IpAddr::from(ip)), Some("www.example.org"));
        let (mx, _) = answer(&query("www.example.org", 15), &rules, false, &mut names).expect("mx");
        assert_eq!((mx[3] & 0xf, mx[7]), (0, 0), "NODATA");
        let (no, asked) =
            answer(&query("evil.com", TYPE_A), &rules, false, &mut names).expect("nx");
        assert_eq!((no[3] & 0xf, asked.allowed), (NXDOMAIN, false));
        assert_eq!(names.name_of("198.18.0.99".parse().expect("ip")), None);
        // --ask: any name resolves (a connection to it is asked about).
        let (any, asked) = answer(&query("evil.com", TYPE_A), &rules, true, &mut names).expect("a");
        assert_eq!((any[3] & 0xf, asked.allowed), (0, false));
        assert_eq!(names.name_of("10.0.0.1".parse().expect("ip")), None);
    }

    #[test]
    fn malformed_queries_are_dropped_or_refused() {
        let rules = [Egress::parse("a.example.org:1").expect("rule")];
        let mut names = Names::default();
        let good = query("a.example.org", TYPE_A);
        for cut in 0..good.len() {
            let _ = answer(&good[..cut], &rules, false, &mut names); // never panics
        }
        let mut resp = good.clone();
        resp[2] |= 0x80;
        assert!(answer(&resp, &rules, false, &mut names).is_none(), "a response is dropped");
        let mut long = vec![0u8; 12];
        long[5] = 1;
        long.extend(std::iter::repeat_n(63u8, 600));
        assert!(answer(&long, &rules, false, &mut names).is_none());
        let mut s = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut p = good.clone();
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let i = (s as usize) % p.len();
            p[i] = (s >> 32) as u8;
            let _ = answer(&p, &rules, false, &mut names);
        }
    }
}
