//! Groups: several prisons from one manifest, `[component.NAME]` each, joined by `[[channel]]`s
//! (docs/components.md). Pure data and its checks; the group supervisor is brig-jail's.
//!
//! ```toml
//! [group]
//! main = "web"                  # the group ends when it does (default: when all have ended)
//!
//! [component.db]                # a whole manifest: [program], [fs], [limits], [caps.*]...
//! restart = "on-failure"        # or "never" (default), "always"
//! restart_max = 5               # at most 5 restarts in restart_within (default 60s)
//! restart_backoff = "100ms"     # doubled after each failure in a row, at most 10s
//! [component.db.program]
//! path = "/usr/bin/db"
//!
//! [component.web]
//! after = ["db"]                # started once db's program runs
//! [component.web.program]
//! path = "/usr/bin/web"
//!
//! [[channel]]                   # a seqpacket socket pair; each end a `channel` capability
//! ends = ["web.db", "db.clients"]
//! ```

use std::path::Path;
use std::time::Duration;

use crate::error::{PolicyError, Pos, Problem};
use crate::flags::Flags;
use crate::manifest::Manifest;

/// A group manifest, checked: names exist, no end twice, no cycle in `after`.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// In file order.
    pub members: Vec<Member>,
    pub channels: Vec<ChannelDef>,
    /// `[group] main`.
    pub main: Option<(String, Pos)>,
}

/// One `[component.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub name: String,
    /// Its own manifest, as if it were a file of its own (never a group).
    pub manifest: Manifest,
    /// `after = [...]`, with where each name is.
    pub after: Vec<(String, Pos)>,
    pub restart: Restart,
    pub pos: Pos,
}

/// One `[[channel]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelDef {
    pub ends: [End; 2],
    pub pos: Pos,
}

/// `"COMPONENT.CAPABILITY"`: COMPONENT holds this end as capability CAPABILITY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    pub component: String,
    pub cap: String,
    pub pos: Pos,
}

/// `restart = ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartWhen {
    #[default]
    Never,
    /// After an exit other than 0 or a signal.
    OnFailure,
    /// After every end, 0 too.
    Always,
}

impl RestartWhen {
    pub fn parse(s: &str) -> Result<RestartWhen, Problem> {
        match s {
            "never" => Ok(RestartWhen::Never),
            "on-failure" => Ok(RestartWhen::OnFailure),
            "always" => Ok(RestartWhen::Always),
            _ => Err(Problem::new(
                format!("restart {s:?} does not exist"),
                "use \"never\", \"on-failure\" or \"always\"",
            )),
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            RestartWhen::Never => "never restarted",
            RestartWhen::OnFailure => "restarted when it fails",
            RestartWhen::Always => "restarted whenever it ends",
        }
    }
}

/// A member's restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restart {
    pub when: RestartWhen,
    /// At most this many restarts within `within`; then the group stops.
    pub max: u32,
    pub within: Duration,
    /// The wait before the first restart, doubled for each failure in a row (at most
    /// [`MAX_BACKOFF`]).
    pub backoff: Duration,
}

/// The longest wait before a restart.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl Restart {
    pub const NEVER: Restart = Restart {
        when: RestartWhen::Never,
        max: 5,
        within: Duration::from_secs(60),
        backoff: Duration::from_millis(100),
    };

    /// From the member's keys, each with its offset in the file; `(offset, problem)` on error.
    pub(crate) fn of(
        when: Option<(RestartWhen, usize)>,
        max: Option<(u64, usize)>,
        within: Option<(Duration, usize)>,
        backoff: Option<(Duration, usize)>,
    ) -> Result<Restart, (usize, Problem)> {
        let mut r = Restart::NEVER;
        r.when = when.map_or(RestartWhen::Never, |w| w.0);
        if r.when == RestartWhen::Never {
            let stray = [max.map(|m| (m.1, "restart_max"))]
                .into_iter()
                .chain([
                    within.map(|w| (w.1, "restart_within")),
                    backoff.map(|b| (b.1, "restart_backoff")),
                ])
                .flatten()
                .next();
            if let Some((at, key)) = stray {
                return Err((
                    at,
                    Problem::new(
                        format!("{key} applies only to a component that is restarted"),
                        "add restart = \"on-failure\" (or \"always\"), or remove it",
                    ),
                ));
            }
        }
        if let Some((m, at)) = max {
            r.max = u32::try_from(m).ok().filter(|&m| m >= 1).ok_or((
                at,
                Problem::new(format!("restart_max {m} is out of range"), "give 1 to 4294967295"),
            ))?;
        }
        r.within = within.map_or(r.within, |w| w.0);
        r.backoff = backoff.map_or(r.backoff, |b| b.0).min(MAX_BACKOFF);
        Ok(r)
    }

    /// The wait before the next start after `failures` failures in a row (1 or more).
    pub fn wait(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        self.backoff.saturating_mul(1 << doublings).min(MAX_BACKOFF)
    }
}

/// `"COMPONENT.CAPABILITY"`, both parts names.
pub(crate) fn end_name(s: &str) -> Result<(String, String), Problem> {
    let bad = || {
        Problem::new(
            format!("{s:?} is not a channel end"),
            "write COMPONENT.CAPABILITY (e.g. \"web.db\": component web holds it as capability db)",
        )
    };
    let (c, cap) = s.split_once('.').ok_or_else(bad)?;
    Ok((crate::caps::name(c).map_err(|_| bad())?, crate::caps::name(cap).map_err(|_| bad())?))
}

/// The fd at which a member's brig finds the group manifest's text (`--manifest-fd`).
pub const MANIFEST_FD: i32 = 3;
/// The fd of a member's ready pipe (`--ready-fd`).
pub const READY_FD: i32 = 4;
/// The first inherited fd of a member's channel ends.
pub const CHANNEL_FD_BASE: i32 = 5;
/// How long members have to end after SIGTERM before they get SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

impl Group {
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    pub fn names(&self) -> String {
        self.members.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// The ends `member` holds, in file order: (capability name, channel index, which end).
    pub fn ends_of(&self, member: &str) -> Vec<(&str, usize, usize)> {
        let mut out = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            for (side, e) in c.ends.iter().enumerate() {
                if e.component == member {
                    out.push((e.cap.as_str(), i, side));
                }
            }
        }
        out
    }

    /// `--channel CAP=FD` for each end `member` holds, at the fds the supervisor places them.
    fn channel_flags(&self, member: &str) -> Vec<(&'static str, String)> {
        (self.ends_of(member).into_iter().enumerate())
            .map(|(k, (cap, _, _))| ("channel", format!("{cap}={}", CHANNEL_FD_BASE + k as i32)))
            .collect()
    }

    /// The flags a member's brig runs with: its name, its channel ends, no terminal.
    pub fn member_flags(&self, member: &str) -> Flags {
        Flags {
            component: Some(member.into()),
            caps: self.channel_flags(member),
            pty: Some("never".into()),
            ..Flags::default()
        }
    }

    /// The same as [`Group::member_flags`], as the supervisor passes them on the command line
    /// (after `brig run -m FILE --manifest-fd 3 --ready-fd 4`).
    pub fn member_args(&self, member: &str) -> Vec<String> {
        let mut a = ["--component", member, "--pty", "never"].map(String::from).to_vec();
        for (flag, spec) in self.channel_flags(member) {
            a.extend([format!("--{flag}"), spec]);
        }
        a
    }

    /// Members in start order: each after those it names in `after`, else in file order.
    pub fn start_order(&self) -> Vec<&Member> {
        let mut done: Vec<&str> = Vec::new();
        let mut out = Vec::new();
        while out.len() < self.members.len() {
            let before = out.len();
            for m in &self.members {
                let ready = m.after.iter().all(|(a, _)| done.contains(&a.as_str()));
                if !done.contains(&m.name.as_str()) && ready {
                    done.push(&m.name);
                    out.push(m);
                }
            }
            if out.len() == before {
                break; // a cycle: refused by validate
            }
        }
        out
    }

    /// `brig check`'s words for the group as a whole: how it starts and ends, its channels.
    pub fn describe(&self, file: &Path) -> Vec<String> {
        let order: Vec<&str> = self.start_order().iter().map(|m| m.name.as_str()).collect();
        let mut out = vec![
            format!(
                "Group of {} components ({}), each in a prison of its own; started in this \
                 order: {}",
                self.members.len(),
                file.display(),
                order.join(", ")
            ),
            "Each has its own namespaces, view, Landlock rules, seccomp filter and limits: \
             nothing of one (files, processes, memory, network) is visible to another except \
             through a channel joining them. Their stdin is /dev/null; each output line is \
             prefixed with its name."
                .into(),
        ];
        out.push(match &self.main {
            Some((m, _)) => format!(
                "The group ends when {m} ends (its [group] main), with {m}'s exit status, or when \
                 a component fails for good; the others then get SIGTERM, and SIGKILL {:?} later.",
                STOP_GRACE
            ),
            None => format!(
                "The group ends when every component has ended, or when one fails for good \
                 (with its exit status); the others then get SIGTERM, and SIGKILL {:?} later.",
                STOP_GRACE
            ),
        });
        match self.channels.is_empty() {
            true => out.push("Channels: none".into()),
            false => out.push(
                "Channels (each a unix seqpacket socket pair brig makes; messages and fds pass \
                 between its two ends only, and it outlives restarts):"
                    .into(),
            ),
        }
        for c in &self.channels {
            let [a, b] = &c.ends;
            out.push(format!(
                "  {}.{} <-> {}.{} (line {}): {} holds it as capability \"{}\", {} as \"{}\"",
                a.component,
                a.cap,
                b.component,
                b.cap,
                c.pos.line,
                a.component,
                a.cap,
                b.component,
                b.cap
            ));
        }
        out
    }

    /// `brig check`'s heading for one member: where it is, when it starts, its restarts.
    pub fn heading(&self, m: &Member) -> String {
        let after: Vec<&str> = m.after.iter().map(|(a, _)| a.as_str()).collect();
        let starts = match after.is_empty() {
            true => "starts at once".to_string(),
            false => format!(
                "starts once {} run{}",
                after.join(", "),
                if after.len() == 1 { "s" } else { "" }
            ),
        };
        let r = m.restart;
        let restart = match r.when {
            RestartWhen::Never => r.when.words().to_string(),
            _ => format!(
                "{} (at most {} times in {:?}, waiting {:?}, doubled after each failure in a row, \
                 at most {MAX_BACKOFF:?})",
                r.when.words(),
                r.max,
                r.within,
                r.backoff
            ),
        };
        format!("Component {} (line {}): {starts}; {restart}", m.name, m.pos.line)
    }

    /// Names exist, no end is held twice or shadows a capability, no cycle in `after`.
    pub(crate) fn validate(&self, file: &Path) -> Result<(), PolicyError> {
        let names = self.names();
        let unknown = |name: &str, pos: Pos, what: &str| {
            PolicyError::at(
                file,
                pos,
                Problem::new(
                    format!("{what} names {name:?}, which is not a component here"),
                    format!("use one of: {names}"),
                ),
            )
        };
        for m in &self.members {
            if !matches!(m.manifest.program.pty, None | Some(crate::plan::Pty::Never)) {
                return Err(PolicyError::at(
                    file,
                    m.pos,
                    Problem::new(
                        format!("[component.{}] asks for a terminal", m.name),
                        "components have none (their output is prefixed lines): remove pty, \
                         or run it alone with brig run",
                    ),
                ));
            }
            for (a, pos) in &m.after {
                if self.member(a).is_none() {
                    return Err(unknown(a, *pos, "after"));
                }
            }
        }
        if let Some((main, pos)) = &self.main {
            let Some(m) = self.member(main) else {
                return Err(unknown(main, *pos, "[group] main"));
            };
            if m.restart.when != RestartWhen::Never {
                return Err(PolicyError::at(
                    file,
                    m.pos,
                    Problem::new(
                        format!("{main} is the group's main: its end ends the group, so it is never restarted"),
                        "remove restart from it, or name another component as [group] main",
                    ),
                ));
            }
        }
        let mut seen: Vec<&End> = Vec::new();
        for c in &self.channels {
            for e in &c.ends {
                let Some(m) = self.member(&e.component) else {
                    return Err(unknown(&e.component, e.pos, "a channel end"));
                };
                if let Some(first) =
                    seen.iter().find(|s| s.component == e.component && s.cap == e.cap)
                {
                    return Err(PolicyError::at(
                        file,
                        e.pos,
                        Problem::new(
                            format!(
                                "{}.{} is already a channel end (line {})",
                                e.component, e.cap, first.pos.line
                            ),
                            "give each end its own capability name",
                        ),
                    ));
                }
                if let Some(cap) = m.manifest.caps.iter().find(|c| c.name == e.cap) {
                    return Err(PolicyError::at(
                        file,
                        e.pos,
                        Problem::new(
                            format!(
                                "{} already has a capability {:?} (line {})",
                                e.component, e.cap, cap.pos.line
                            ),
                            "give the channel end another name",
                        ),
                    ));
                }
                seen.push(e);
            }
        }
        let order = self.start_order();
        if order.len() < self.members.len() {
            let stuck: Vec<&Member> =
                self.members.iter().filter(|m| !order.iter().any(|o| o.name == m.name)).collect();
            let names: Vec<&str> = stuck.iter().map(|m| m.name.as_str()).collect();
            return Err(PolicyError::at(
                file,
                stuck[0].after.first().map_or(stuck[0].pos, |a| a.1),
                Problem::new(
                    format!("`after` makes a cycle among {}", names.join(", ")),
                    "remove one of these `after` names: each component must be able to start",
                ),
            ));
        }
        Ok(())
    }
}
