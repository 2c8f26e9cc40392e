//! The process fields of `config.json` in the numbers brig's Plan takes: capability sets as bit
//! masks, rlimits by resource number, the seccomp profile in brig-policy's types. Host side:
//! the config is the engine's word; anything that cannot be translated is refused.

use anyhow::bail;
use brig_policy::{ArgCmp, CapSets, CmpOp, SeccompAction, SeccompProfile, SeccompRule};
use oci_spec::runtime::{
    Capabilities, LinuxCapabilities, LinuxSeccomp, LinuxSeccompAction as A,
    LinuxSeccompOperator as O, PosixRlimit,
};

/// Linux capability names by number (capability.h, up to CAP_CHECKPOINT_RESTORE = 40).
const CAPS: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Resource numbers by name (resource.h).
const RLIMITS: [&str; 16] = [
    "CPU",
    "FSIZE",
    "DATA",
    "STACK",
    "CORE",
    "RSS",
    "NPROC",
    "NOFILE",
    "MEMLOCK",
    "AS",
    "LOCKS",
    "SIGPENDING",
    "MSGQUEUE",
    "NICE",
    "RTPRIO",
    "RTTIME",
];

/// The name a value serializes to (`CAP_CHOWN`, `RLIMIT_NOFILE`).
fn name_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn mask(set: Option<&Capabilities>) -> anyhow::Result<u64> {
    let mut m = 0u64;
    for cap in set.into_iter().flatten() {
        let name = name_of(cap);
        let bare = name.strip_prefix("CAP_").unwrap_or(&name);
        match CAPS.iter().position(|c| *c == bare) {
            Some(n) => m |= 1 << n,
            None => bail!("process.capabilities: {name} is not a capability this kernel knows"),
        }
    }
    Ok(m)
}

pub fn capabilities(c: &LinuxCapabilities) -> anyhow::Result<CapSets> {
    Ok(CapSets {
        bounding: mask(c.bounding().as_ref())?,
        effective: mask(c.effective().as_ref())?,
        permitted: mask(c.permitted().as_ref())?,
        inheritable: mask(c.inheritable().as_ref())?,
        ambient: mask(c.ambient().as_ref())?,
    })
}

pub fn rlimit(r: &PosixRlimit) -> anyhow::Result<(u32, u64, u64)> {
    let name = name_of(&r.typ());
    let bare = name.strip_prefix("RLIMIT_").unwrap_or(&name);
    let Some(n) = RLIMITS.iter().position(|x| *x == bare) else {
        bail!("process.rlimits: {name} is not a resource this runtime knows")
    };
    anyhow::ensure!(
        r.soft() <= r.hard(),
        "process.rlimits: {name} has soft {} above hard {}",
        r.soft(),
        r.hard()
    );
    Ok((n as u32, r.soft(), r.hard()))
}

fn action(a: A, errno: Option<u32>, warnings: &mut Vec<String>) -> anyhow::Result<SeccompAction> {
    Ok(match a {
        A::ScmpActAllow => SeccompAction::Allow,
        A::ScmpActErrno => {
            let e = errno.unwrap_or(libc::EPERM as u32);
            let e = u16::try_from(e).ok().filter(|&e| e <= 4095);
            SeccompAction::Errno(
                e.ok_or_else(|| anyhow::anyhow!("linux.seccomp: errnoRet out of range (1-4095)"))?,
            )
        }
        A::ScmpActKill | A::ScmpActKillThread => SeccompAction::KillThread,
        A::ScmpActKillProcess => SeccompAction::KillProcess,
        A::ScmpActTrap => SeccompAction::Trap,
        A::ScmpActLog => SeccompAction::Log,
        A::ScmpActTrace => {
            // No tracer is attached in a brig prison: the call fails as it would without one.
            warnings.push("linux.seccomp: SCMP_ACT_TRACE answers ENOSYS (no tracer)".into());
            SeccompAction::Errno(libc::ENOSYS as u16)
        }
        A::ScmpActNotify => {
            bail!(
                "linux.seccomp: SCMP_ACT_NOTIFY needs a listener, which brig-oci does not connect"
            )
        }
    })
}

pub fn seccomp(s: &LinuxSeccomp, warnings: &mut Vec<String>) -> anyhow::Result<SeccompProfile> {
    if s.listener_path().is_some() {
        bail!("linux.seccomp.listenerPath: brig answers notifications itself; refused");
    }
    if s.flags().iter().flatten().next().is_some() {
        warnings
            .push("linux.seccomp.flags are not applied (brig installs its filters plainly)".into());
    }
    let default_action = action(s.default_action(), s.default_errno_ret(), warnings)?;
    let mut rules = Vec::new();
    for sc in s.syscalls().iter().flatten() {
        let mut args = Vec::new();
        for a in sc.args().iter().flatten() {
            let op = match a.op() {
                O::ScmpCmpNe => CmpOp::Ne,
                O::ScmpCmpLt => CmpOp::Lt,
                O::ScmpCmpLe => CmpOp::Le,
                O::ScmpCmpEq => CmpOp::Eq,
                O::ScmpCmpGe => CmpOp::Ge,
                O::ScmpCmpGt => CmpOp::Gt,
                O::ScmpCmpMaskedEq => CmpOp::MaskedEq,
            };
            anyhow::ensure!(a.index() <= 5, "linux.seccomp: argument index {} (0-5)", a.index());
            let (value, value_two) = (a.value(), a.value_two().unwrap_or(0));
            args.push(ArgCmp { index: a.index() as u32, value, value_two, op });
        }
        let action = action(sc.action(), sc.errno_ret(), warnings)?;
        rules.push(SeccompRule { names: sc.names().clone(), action, args });
    }
    Ok(SeccompProfile { default_action, rules })
}
