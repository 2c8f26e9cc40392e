//! The config's hooks, on the host side: programs the engine names (trusted as the config is),
//! run by brig-oci with the runtime's own authority, never inside the container. Each gets the
//! container's state as JSON on stdin, its own argv and environment only, and its timeout.
//! Which run when (docs/oci.md "Hooks"): createRuntime at the end of `create`; prestart at
//! `start`, before the program; poststart after it (a failure is a warning); poststop in
//! `delete` (a failure is a warning). createContainer and startContainer, which must run inside
//! the container's namespaces, are refused at create.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use oci_spec::runtime::{Hook, Hooks};

/// Which hooks of the config.
#[derive(Debug, Clone, Copy)]
pub enum When {
    CreateRuntime,
    Prestart,
    Poststart,
    Poststop,
}

#[allow(deprecated)] // prestart: deprecated in the spec, still written by engines and the suite
pub fn of(hooks: Option<&Hooks>, when: When) -> Vec<Hook> {
    let Some(h) = hooks else { return Vec::new() };
    let list = match when {
        When::CreateRuntime => h.create_runtime(),
        When::Prestart => h.prestart(),
        When::Poststart => h.poststart(),
        When::Poststop => h.poststop(),
    };
    list.clone().unwrap_or_default()
}

/// Refuses what brig-oci cannot run where the spec says.
pub fn check(hooks: Option<&Hooks>) -> anyhow::Result<()> {
    let Some(h) = hooks else { return Ok(()) };
    for (name, list) in
        [("createContainer", h.create_container()), ("startContainer", h.start_container())]
    {
        if list.iter().flatten().next().is_some() {
            bail!("hooks.{name}: hooks run inside the container's namespaces are not supported by brig-oci; refused rather than skipped");
        }
    }
    Ok(())
}

/// Runs each hook in order; stops at the first failure.
pub fn run_all(hooks: &[Hook], state: &serde_json::Value) -> anyhow::Result<()> {
    for h in hooks {
        run(h, state).with_context(|| format!("hook {}", h.path().display()))?;
    }
    Ok(())
}

/// Runs every hook; each failure is a warning and the rest still run (poststart, poststop).
pub fn run_each(hooks: &[Hook], state: &serde_json::Value, warn: &dyn Fn(&str)) {
    for h in hooks {
        if let Err(e) = run(h, state) {
            warn(&format!("hook {}: {e:#}", h.path().display()));
        }
    }
}

fn run(h: &Hook, state: &serde_json::Value) -> anyhow::Result<()> {
    let mut c = Command::new(h.path());
    let args = h.args().clone().unwrap_or_default();
    if let Some((first, rest)) = args.split_first() {
        c.arg0(first).args(rest);
    }
    c.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            c.env(k, v);
        }
    }
    c.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::inherit());
    let mut child = c.spawn().context("start it")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is not an error.
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let Some(until) = h.timeout().map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64))
    else {
        let st = child.wait().context("wait for it")?;
        anyhow::ensure!(st.success(), "it failed ({st})");
        return Ok(());
    };
    loop {
        if let Some(st) = child.try_wait().context("wait for it")? {
            anyhow::ensure!(st.success(), "it failed ({st})");
            return Ok(());
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            bail!("it did not finish within its timeout ({} s); killed", h.timeout().unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
