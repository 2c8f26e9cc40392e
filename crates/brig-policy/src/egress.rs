//! `--egress HOST:PORT`: the host names (and ports) the prison may reach through the broker.
//! Pure: parsing and matching only.
//!
//! A rule names a host exactly (`api.example.org:443`) or by a pattern of one or more labels
//! in front of a suffix of at least two labels (`*.example.org:443`). Addresses are not names:
//! a rule for an address would not survive DNS rebinding checks, and `--connect` already hands
//! over a connection to an address. `localhost` is the prison's own loopback.

use crate::Problem;

/// One egress rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Egress {
    /// Lower case, without a trailing dot; a pattern starts with `*.`.
    pub host: String,
    pub port: u16,
}

const HINT: &str = "give a host name and port, e.g. api.example.org:443 or *.example.org:443";

impl Egress {
    /// Parses `HOST:PORT` or `*.SUFFIX:PORT`.
    pub fn parse(s: &str) -> Result<Egress, Problem> {
        let (host, port) =
            s.rsplit_once(':').ok_or_else(|| Problem::new(format!("{s:?} has no port"), HINT))?;
        let port: u16 =
            port.parse().ok().filter(|&p| p != 0).ok_or_else(|| {
                Problem::new(format!("{s:?}: port {port:?} is not 1-65535"), HINT)
            })?;
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
            return Err(Problem::new(
                format!("{s:?} is an address, not a host name"),
                "name the host (the broker checks the name and pins the address it resolves), \
                 or hand over a connection with --connect NAME=tcp://ADDR:PORT",
            ));
        }
        let name = host.strip_prefix("*.").unwrap_or(&host);
        if !valid_name(name) {
            return Err(Problem::new(format!("{s:?}: {name:?} is not a host name"), HINT));
        }
        if host.starts_with("*.") && name.split('.').count() < 2 {
            return Err(Problem::new(
                format!("{s:?}: a pattern needs a suffix of two labels or more"),
                "narrow it, e.g. *.example.org:443",
            ));
        }
        if name == "localhost" || name.ends_with(".localhost") {
            return Err(Problem::new(
                format!("{s:?}: localhost is the prison's own loopback"),
                "name the host another way (its name in the host's /etc/hosts), or hand over \
                 a connection with --connect NAME=tcp://127.0.0.1:PORT",
            ));
        }
        Ok(Egress { host, port })
    }

    /// Whether the rule is a pattern (`*.example.org`).
    pub fn is_pattern(&self) -> bool {
        self.host.starts_with("*.")
    }

    /// Whether `name` (lower case, no trailing dot) matches the host part.
    pub fn names(&self, name: &str) -> bool {
        match self.host.strip_prefix("*.") {
            Some(suffix) => {
                name.len() > suffix.len() + 1
                    && name.ends_with(suffix)
                    && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
            }
            None => name == self.host,
        }
    }
}

/// The rule allowing `name:port`, preferring an exact one.
pub fn allowing<'a>(rules: &'a [Egress], name: &str, port: u16) -> Option<&'a Egress> {
    let mut fits = rules.iter().filter(|r| r.port == port && r.names(name));
    let all: Vec<&Egress> = fits.by_ref().collect();
    all.iter().find(|r| !r.is_pattern()).or(all.first()).copied()
}

/// Letters, digits and hyphens in labels of 1 to 63 bytes, 253 bytes at most, no label
/// starting or ending with a hyphen.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_match() {
        let e = Egress::parse("API.Example.org.:443").expect("exact");
        assert_eq!(e, Egress { host: "api.example.org".into(), port: 443 });
        assert!(e.names("api.example.org") && !e.names("x.api.example.org"));
        let p = Egress::parse("*.example.org:443").expect("pattern");
        assert!(p.is_pattern() && p.names("a.example.org") && p.names("a.b.example.org"));
        assert!(!p.names("example.org") && !p.names("badexample.org"));
        for bad in [
            "example.org",
            "example.org:0",
            "example.org:70000",
            "1.2.3.4:80",
            "[::1]:80",
            "*.org:443",
            "a..b:1",
            "-a.b:1",
            "localhost:80",
            "x.localhost:80",
            "*:80",
            "a b:1",
        ] {
            assert!(Egress::parse(bad).is_err(), "{bad}");
        }
        let rules = [p.clone(), Egress::parse("a.example.org:443").expect("ok")];
        assert!(!allowing(&rules, "a.example.org", 443).expect("allowed").is_pattern());
        assert!(allowing(&rules, "b.example.org", 443).expect("allowed").is_pattern());
        assert!(allowing(&rules, "b.example.org", 80).is_none());
    }
}
