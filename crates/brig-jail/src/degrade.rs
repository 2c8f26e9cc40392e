//! What `--best-effort` may drop (runner side): for each layer, what the program can do without
//! it, said in the warning and the report; and the plans that may not run without a layer
//! because a capability's own rights rest on it alone.

use brig_policy::caps::{CapKind, Endpoint};
use brig_policy::Plan;

/// What the program can do when `layer` is missing.
pub fn consequence(layer: &str) -> &'static str {
    match layer {
        "landlock" => {
            "file access is limited by the mount view alone (read-only and noexec mounts still \
             hold, but creating and deleting inside a writable grant is no longer limited by its \
             rights); TCP bind and connect, abstract unix sockets and signals are left to the \
             namespaces"
        }
        "seccomp" => {
            "the kernel's whole syscall surface is reachable (keyctl, io_uring, bpf, \
             userfaultfd, ptrace of its own processes, new namespaces), TIOCSTI and setuid bits \
             are not refused, and listen and memfd_create are not brokered"
        }
        "network namespace" => {
            "the program shares the host's network: UDP and ICMP reach any address, services on \
             127.0.0.1 included; TCP stays refused by Landlock"
        }
        "cgroup namespace" => "/proc/self/cgroup shows the host's cgroup path",
        "ipc namespace" => {
            "System V IPC and POSIX message queues are shared with the host's processes of the \
             same uid"
        }
        "uts namespace" => "the program sees the host's hostname",
        _ => "",
    }
}

/// The warning for running without `layer` because of `why`.
pub fn warning(layer: &str, why: &str) -> String {
    format!("running without {layer} ({why}): {}", consequence(layer))
}

/// Why a run with an id-mapped grant keeps these seccomp groups: `@setid-bits` (a setuid file
/// of the owner's) and `@namespaces` (root of a nested user namespace would own the owner's
/// files and could give them file capabilities, `security.capability`, valid on the host).
pub const KEPT_WHEN_ID_MAPPED: [&str; 2] = ["@setid-bits", "@namespaces"];

/// What an id-mapped grant would risk without them.
pub const SETID_RISK: &str = "brig runs as root, so each writable grant is id-mapped to its \
    owner (idmap.rs): without seccomp's @setid-bits and @namespaces the program could leave a \
    setuid file, or one with file capabilities, of that owner's on the host";

/// Why `plan` may not run without `layer`, even with `--best-effort`. `id_mapped`: this run
/// id-maps a writable grant to its owner (`idmap.rs`).
pub fn forbidden(plan: &Plan, id_mapped: bool, layer: &str) -> Option<String> {
    if layer == "seccomp" && id_mapped {
        return Some(format!("{}; --best-effort cannot drop seccomp for it", SETID_RISK));
    }
    let needs = |c: &CapKind| match c {
        // A socket of the host's network: Landlock refuses reconnecting it elsewhere, seccomp's
        // broker refuses turning it into a listener elsewhere.
        CapKind::Listen(Endpoint::Tcp { .. }) | CapKind::Connect(Endpoint::Tcp { .. }) => {
            matches!(layer, "landlock" | "seccomp")
        }
        // Mount flags cannot say "write but not create": only Landlock does.
        CapKind::Dir { rights, .. } => layer == "landlock" && rights.write && !rights.create,
        _ => false,
    };
    let cap = plan.caps.iter().find(|c| needs(&c.kind))?;
    Some(format!(
        "the {} capability `{}` rests on {layer} (without it the program could make it reach \
         beyond what was granted); --best-effort cannot drop {layer} for it",
        cap.kind.name(),
        cap.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_droppable_layer_says_what_it_lets_the_program_do() {
        let layers = ["landlock", "seccomp", "network namespace", "cgroup namespace"];
        let ns = crate::namespaces::OPTIONAL.iter().map(|(_, n)| *n);
        for l in layers.into_iter().chain(ns) {
            assert!(!consequence(l).is_empty(), "{l}");
        }
    }
}
