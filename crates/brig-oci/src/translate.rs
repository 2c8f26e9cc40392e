//! The process fields of `config.json` in the numbers brig's Plan takes: capability sets as bit
//! masks, rlimits by resource number, the seccomp profile in brig-policy's types. Host side:
//! the config is the engine's word; anything that cannot be translated is refused.

use anyhow::bail;

use crate::caller::Caller;
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

/// brig's minimal /dev, allowed after the config's device rules (a container cannot work
/// without /dev/null), unless a rule of the config denies that very device.
const BRIG_DEVICES: [(char, &str); 8] = [
    ('c', "1:3"),
    ('c', "1:5"),
    ('c', "1:7"),
    ('c', "1:8"),
    ('c', "1:9"),
    ('c', "5:0"),
    ('c', "5:2"),
    ('c', "136:*"),
];

/// `linux.resources` as cgroup v1 writes, with `linux.cgroupsPath` (default
/// `brig-oci/ID` below the runtime's own cgroup). `None`: no cgroup is made (nothing to set, or
/// an unprivileged run whose only rules are device rules, honoured by construction).
pub fn cgroup(
    linux: &oci_spec::runtime::Linux,
    id: &str,
    unprivileged: bool,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Option<brig_policy::CgroupSpec>> {
    let Some(r) = linux.resources() else {
        return Ok(match (linux.cgroups_path(), unprivileged) {
            // Its own cgroup still groups the container (ps, pause) and keeps it apart.
            (Some(path), false) => {
                Some(brig_policy::CgroupSpec { path: path.clone(), writes: vec![] })
            }
            (Some(_), true) => {
                warnings.push("linux.cgroupsPath: an unprivileged run makes no cgroup".into());
                None
            }
            (None, _) => None,
        });
    };
    let (w, only_devices) = resource_writes(r)?;
    if unprivileged {
        anyhow::ensure!(
            w.len() == only_devices,
            "linux.resources: cgroup limits need brig-oci to run as root (it does not use \
             delegated cgroups yet); refused rather than dropped"
        );
        if linux.cgroups_path().is_some() {
            warnings.push("linux.cgroupsPath: an unprivileged run makes no cgroup".into());
        }
        return Ok(None);
    }
    if w.is_empty() && linux.cgroups_path().is_none() {
        return Ok(None);
    }
    let path = linux.cgroups_path().clone().unwrap_or_else(|| format!("brig-oci/{id}").into());
    Ok(Some(brig_policy::CgroupSpec { path, writes: w }))
}

/// (controller, file, value), in the order they are written.
type Writes = Vec<(String, String, String)>;

/// Cgroup v1 writes (controller, file, value) for `r`, in order, and how many of the first
/// are device rules (honoured by construction in an unprivileged run). Anything cgroup v1
/// cannot hold, or this kernel would not enforce, is refused.
pub fn resource_writes(r: &oci_spec::runtime::LinuxResources) -> anyhow::Result<(Writes, usize)> {
    let mut w: Vec<(String, String, String)> = Vec::new();
    let devices = r.devices().clone().unwrap_or_default();
    for d in &devices {
        let typ = d.typ().map_or_else(|| "a".to_string(), |t| t.as_str().to_string());
        let num = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
        let access = d.access().clone().unwrap_or_else(|| "rwm".into());
        anyhow::ensure!(
            !access.is_empty() && access.chars().all(|c| "rwm".contains(c)),
            "linux.resources.devices: access {access:?}: use r, w and m"
        );
        let file = if d.allow() { "devices.allow" } else { "devices.deny" };
        put(
            &mut w,
            "devices",
            file,
            format!("{typ} {}:{} {access}", num(d.major()), num(d.minor())),
        );
    }
    if !devices.is_empty() {
        for (t, n) in BRIG_DEVICES {
            let denied = devices.iter().any(|d| {
                let same = |x: Option<i64>, y: &str| x.map(|x| x.to_string()).as_deref() == Some(y);
                let (maj, min) = n.split_once(':').unwrap_or((n, "*"));
                !d.allow()
                    && d.typ().map(|t| t.as_str().to_string()) == Some(t.to_string())
                    && same(d.major(), maj)
                    && same(d.minor(), min)
            });
            if !denied {
                put(&mut w, "devices", "devices.allow", format!("{t} {n} rwm"));
            }
        }
    }
    let only_devices = w.len();
    if let Some(p) = r.pids() {
        put(
            &mut w,
            "pids",
            "pids.max",
            if p.limit() <= 0 { "max".into() } else { p.limit().to_string() },
        );
    }
    if let Some(c) = r.cpu() {
        anyhow::ensure!(c.burst().is_none() && c.idle().is_none(), "linux.resources.cpu: burst and idle are cgroup v2 settings, which brig-oci does not write yet; refused");
        let cpu = [
            ("cpu.shares", c.shares().map(|v| v.to_string())),
            ("cpu.cfs_period_us", c.period().map(|v| v.to_string())),
            ("cpu.cfs_quota_us", c.quota().map(|v| v.to_string())),
            ("cpu.rt_period_us", c.realtime_period().map(|v| v.to_string())),
            ("cpu.rt_runtime_us", c.realtime_runtime().map(|v| v.to_string())),
        ];
        for (f, v) in cpu.into_iter().filter_map(|(f, v)| Some((f, v?))) {
            put(&mut w, "cpu", f, v);
        }
        for (f, v) in [("cpuset.cpus", c.cpus()), ("cpuset.mems", c.mems())] {
            if let Some(v) = v {
                put(&mut w, "cpuset", f, v.clone());
            }
        }
    }
    if let Some(m) = r.memory() {
        // Linux ignores writes to memory.kmem.limit_in_bytes since 5.16 (it says so in the
        // kernel log): a limit it would not enforce is refused, not pretended.
        anyhow::ensure!(
            m.kernel().is_none(),
            "linux.resources.memory.kernel: this kernel does not enforce kernel-memory limits \
             (writes to memory.kmem.limit_in_bytes have no effect since Linux 5.16); remove it"
        );
        let mem = [
            ("memory.limit_in_bytes", m.limit().map(|v| v.to_string())),
            ("memory.soft_limit_in_bytes", m.reservation().map(|v| v.to_string())),
            ("memory.memsw.limit_in_bytes", m.swap().map(|v| v.to_string())),
            ("memory.kmem.tcp.limit_in_bytes", m.kernel_tcp().map(|v| v.to_string())),
            ("memory.swappiness", m.swappiness().map(|v| v.to_string())),
            ("memory.oom_control", m.disable_oom_killer().map(|v| u8::from(v).to_string())),
            ("memory.use_hierarchy", m.use_hierarchy().map(|v| u8::from(v).to_string())),
        ];
        for (f, v) in mem.into_iter().filter_map(|(f, v)| Some((f, v?))) {
            put(&mut w, "memory", f, v);
        }
    }
    if let Some(b) = r.block_io() {
        if let Some(v) = b.weight() {
            put(&mut w, "blkio", "blkio.weight", v.to_string());
        }
        if let Some(v) = b.leaf_weight() {
            put(&mut w, "blkio", "blkio.leaf_weight", v.to_string());
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(v) = d.weight() {
                put(
                    &mut w,
                    "blkio",
                    "blkio.weight_device",
                    format!("{}:{} {v}", d.major(), d.minor()),
                );
            }
        }
        let throttles = [
            ("blkio.throttle.read_bps_device", b.throttle_read_bps_device()),
            ("blkio.throttle.write_bps_device", b.throttle_write_bps_device()),
            ("blkio.throttle.read_iops_device", b.throttle_read_iops_device()),
            ("blkio.throttle.write_iops_device", b.throttle_write_iops_device()),
        ];
        for (f, list) in throttles {
            for d in list.iter().flatten() {
                put(&mut w, "blkio", f, format!("{}:{} {}", d.major(), d.minor(), d.rate()));
            }
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        let f = format!("hugetlb.{}.limit_in_bytes", h.page_size());
        put(&mut w, "hugetlb", &f, h.limit().to_string());
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            put(&mut w, "net_cls", "net_cls.classid", id.to_string());
        }
        for p in n.priorities().iter().flatten() {
            put(&mut w, "net_prio", "net_prio.ifpriomap", format!("{} {}", p.name(), p.priority()));
        }
    }
    anyhow::ensure!(
        r.rdma().is_none() && r.unified().is_none(),
        "linux.resources: rdma and unified (cgroup v2) are not written by brig-oci yet; refused"
    );
    Ok((w, only_devices))
}

fn put(w: &mut Vec<(String, String, String)>, controller: &str, file: &str, value: String) {
    w.push((controller.into(), file.into(), value));
}

/// `linux.uidMappings` and `gidMappings`: honoured for a root run as given, as long as no range
/// reaches host id 0 (the container is never host root; root of an engine's user namespace is
/// not host root); refused for an unprivileged run (it can map only its own ids, which brig does
/// by itself). `None` without them.
pub fn id_maps(
    linux: &oci_spec::runtime::Linux,
    caller: &Caller,
) -> anyhow::Result<Option<brig_policy::IdMaps>> {
    let lines = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<(u32, u32, u32)> {
        m.iter().flatten().map(|l| (l.container_id(), l.host_id(), l.size())).collect()
    };
    let (uid, gid) = (lines(linux.uid_mappings()), lines(linux.gid_mappings()));
    if uid.is_empty() && gid.is_empty() {
        return Ok(None);
    }
    anyhow::ensure!(*caller != Caller::User, "linux.uidMappings: an unprivileged run maps only its own ids (brig does that itself); run as root, or remove the mappings");
    anyhow::ensure!(
        !uid.is_empty() && !gid.is_empty(),
        "linux.uidMappings and gidMappings: give both"
    );
    for (what, l) in [("uidMappings", &uid), ("gidMappings", &gid)] {
        anyhow::ensure!(l.len() <= 340, "linux.{what}: at most 340 lines");
        for &(i, h, n) in l {
            anyhow::ensure!(
                n > 0 && i.checked_add(n).is_some() && h.checked_add(n).is_some(),
                "linux.{what}: {i} {h} {n} is not a valid range"
            );
            anyhow::ensure!(h > 0 || !caller.host_root(), "linux.{what}: {i} {h} {n} maps host id 0: the container would hold host root's files and ids; refused");
        }
    }
    Ok(Some(brig_policy::IdMaps { uid, gid, map_mounts: Vec::new() }))
}

/// The ids a root run's containers get when the config names none: 65536 from `brig`'s entry
/// in /etc/subuid and /etc/subgid, or else from BRIG_RANGE: the last 64K block of systemd's
/// range for containers (0x80000-0x6FFFFFFF), which no login user holds. Inside 0-65535 maps
/// there; host root is never in it.
pub fn brig_range() -> anyhow::Result<brig_policy::IdMaps> {
    let sub = |file: &str| -> Option<u32> {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines().find_map(|l| {
            let mut it = l.split(':');
            let (name, start, count) = (it.next()?, it.next()?, it.next()?);
            let (start, count) = (start.parse::<u32>().ok()?, count.parse::<u32>().ok()?);
            (name == "brig" && count >= RANGE && start > 0).then_some(start)
        })
    };
    let uid = sub("/etc/subuid").unwrap_or(BRIG_RANGE);
    let gid = sub("/etc/subgid").unwrap_or(BRIG_RANGE);
    Ok(brig_policy::IdMaps {
        uid: vec![(0, uid, RANGE)],
        gid: vec![(0, gid, RANGE)],
        map_mounts: vec![std::path::PathBuf::from("/")],
    })
}

/// Every id of `uids` and `gids` (first, count) as itself.
pub fn identity(uids: &[(u32, u32)], gids: &[(u32, u32)]) -> brig_policy::IdMaps {
    let same = |r: &[(u32, u32)]| r.iter().map(|&(first, n)| (first, first, n)).collect();
    brig_policy::IdMaps { uid: same(uids), gid: same(gids), map_mounts: Vec::new() }
}

/// How many ids a container gets.
const RANGE: u32 = 65536;
/// The default first host id of that range (0x6FFF0000).
pub const BRIG_RANGE: u32 = 0x6FFF_0000;
