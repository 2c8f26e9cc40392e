//! `brig-oci spec` (a starting config.json) and `brig-oci features` (what this runtime honours).

use std::path::Path;

use oci_spec::runtime::Spec;

/// Writes `bundle/config.json`: oci-spec's default (runc's), or its rootless variant for the
/// calling user. An existing config.json is never overwritten.
pub fn write(bundle: &Path, rootless: bool) -> anyhow::Result<()> {
    let path = bundle.join("config.json");
    anyhow::ensure!(
        !path.exists(),
        "{} exists; remove it first (brig-oci spec never overwrites a config)",
        path.display()
    );
    let spec = match rootless {
        true => {
            let (uid, gid) = brig_sys::process::ids();
            Spec::rootless(uid, gid)
        }
        false => Spec::default(),
    };
    spec.save(&path).map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))
}

/// The runtime-spec features document: only what this runtime honours today (docs/oci.md
/// lists every config field and what becomes of it).
pub fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::OCI_VERSION,
        "hooks": [],
        "mountOptions": [],
        "linux": {
            "namespaces": [],
            "capabilities": [],
        },
        "annotations": {
            "io.github.brig.version": env!("CARGO_PKG_VERSION"),
        },
    })
}
