//! The default view of the host system, as reviewed data: what a program sees of the host
//! without any grant, each entry with the reason it is there. `brig check` prints it; brig-jail
//! opens it (entries that do not exist on the host are skipped).
//!
//! The rule for `/etc`: an allow-list of what common runtimes read, never secrets (keys, shadow
//! files, credentials) and never host-specific configuration that says something about the host
//! or its network (machine id, resolver, tool settings that may carry registry tokens).

/// Read and execute: the OS runtime.
pub const RUNTIME: &[(&str, &str)] = &[
    ("/usr", "programs, libraries and their data"),
    ("/bin", "programs (often a link to /usr/bin)"),
    ("/sbin", "programs (often a link to /usr/sbin)"),
    ("/lib", "libraries and the dynamic loader"),
    ("/lib32", "32-bit libraries"),
    ("/lib64", "the dynamic loader's path on x86_64"),
    ("/libx32", "x32 libraries"),
];

/// Read only: host files under `/etc` (names, not patterns: reading `/etc` to match one would
/// cost more than looking up a few names that are not there). A regular file is copied into the
/// prison's root at start (a few µs, where each mount costs tens), a directory is bound
/// read-only, a symlink is made again with the same target.
pub const ETC: &[(&str, &str)] = &[
    ("/etc/alternatives", "Debian's alternatives links (java, cc, editor, pager)"),
    ("/etc/ld.so.cache", "the dynamic loader's library cache"),
    ("/etc/localtime", "the local time zone"),
    ("/etc/ssl/certs", "CA certificates for TLS clients (also Java's cacerts)"),
    ("/etc/ssl/openssl.cnf", "OpenSSL's configuration"),
    ("/etc/ca-certificates/extracted", "the CA bundles on Arch (/etc/ssl/certs links here)"),
    ("/etc/pki/tls/certs", "CA certificates on Fedora and RHEL"),
    ("/etc/pki/ca-trust/extracted", "the CA bundles on Fedora and RHEL"),
    ("/etc/pki/tls/openssl.cnf", "OpenSSL's configuration on Fedora and RHEL"),
    ("/etc/java-11-openjdk", "the JDK's configuration (conf/security/java.security links here)"),
    ("/etc/java-17-openjdk", "the JDK's configuration (conf/security/java.security links here)"),
    ("/etc/java-21-openjdk", "the JDK's configuration (conf/security/java.security links here)"),
    ("/etc/java-25-openjdk", "the JDK's configuration (conf/security/java.security links here)"),
    ("/etc/ImageMagick-6", "ImageMagick's policy (resource limits, disabled coders)"),
    ("/etc/ImageMagick-7", "ImageMagick's policy (resource limits, disabled coders)"),
    ("/etc/fonts", "fontconfig's configuration"),
    ("/etc/protocols", "protocol names (getprotobyname)"),
    ("/etc/services", "service names and ports (getservbyname)"),
    ("/etc/host.conf", "the resolver's host options (multi on)"),
    ("/etc/gai.conf", "getaddrinfo's address sorting"),
    ("/etc/os-release", "the distribution's name and version"),
];

/// Kept out of the default view on purpose, with the reason (shown by `brig check --verbose`).
pub const ETC_LEFT_OUT: &[(&str, &str)] = &[
    ("shadow, gshadow, ssh, ssl/private, pki/tls/private", "secrets"),
    (
        "passwd, group, hosts, hostname, mtab",
        "replaced by brig's own (the prison's user, localhost)",
    ),
    ("machine-id", "identifies the host"),
    (
        "resolv.conf",
        "the host's resolver: the prison has no network, or brig's own resolver with --egress",
    ),
    ("gitconfig, npmrc, pip.conf, wgetrc, maven", "tool settings: may carry registries and tokens"),
    (
        "python3*, perl, xml, terminfo, inputrc, magic, mime.types, timezone",
        "optional settings \
      the runtimes start without (each entry costs start-up time; grant one with --ro)",
    ),
    ("everything else", "not needed by the common runtimes; grant it with --ro"),
];

/// Files brig writes itself under `/etc` (their contents depend on the prison's ids).
pub const ETC_OWN: &[&str] = &[
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/mtab",
];

/// The `/etc` allow-list with its reasons, and what is left out and why.
pub fn describe() -> String {
    let mut out = String::from("From the host's /etc, read only, where present:\n");
    for (p, why) in ETC {
        out.push_str(&format!("  {p:<28} {why}\n"));
    }
    out.push_str("Written by brig: ");
    out.push_str(&ETC_OWN.join(", "));
    out.push_str("\nLeft out:\n");
    for (what, why) in ETC_LEFT_OUT {
        out.push_str(&format!("  {what}: {why}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etc_names_are_plain() {
        for (p, why) in ETC {
            assert!(p.starts_with("/etc/") && !why.is_empty(), "{p}");
            assert!(!p.contains("..") && !p.contains("//") && !p.ends_with('/'), "{p}");
            assert!(!ETC_OWN.contains(p), "{p} is brig's own");
        }
    }
}
