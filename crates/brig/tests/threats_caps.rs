//! Holes an outside attacker found in capabilities (issue 7), each with its regression test in
//! a real prison, as root and as an unprivileged uid. Where the prison's answer differs from
//! the kernel's own, a control shows on the host that the kernel alone would let the step
//! through, so the refusal seen inside is brig's doing.

mod common;
use common::*;

use std::net::TcpListener;
use std::os::fd::AsFd;

/// On the host, with no prison: a `:0` listener reset with connect(AF_UNSPEC) listens again on
/// a new port. This is what a listen capability must not be able to do.
#[test]
fn control_the_kernel_moves_a_reset_listener() {
    for ip in ["127.0.0.1:0", "[::1]:0"] {
        let l = TcpListener::bind(ip).expect("bind");
        let before = l.local_addr().expect("addr");
        rustix::net::connect_unspec(l.as_fd()).expect("disconnect");
        rustix::net::listen(l.as_fd(), 7).expect("the kernel lets it listen again");
        let after = l.local_addr().expect("addr");
        assert_ne!(before.port(), after.port(), "{ip}: the control did not move");
    }
}

fn port_of(line: &str) -> &str {
    line.rsplit(':').next().unwrap_or_default()
}

/// A socket of the host's network handed over as a capability cannot be turned into a listener
/// anywhere else: resetting a listen capability (connect AF_UNSPEC) and listening again is
/// refused by the broker (a `:0` one would move to a new port; IPv6 too), and so is listening
/// on a reset connect capability. Changing a listen capability's backlog works, and so does any
/// listener in the prison's own network. Options that would widen a socket need privilege over
/// the host's network, which the prison never has.
#[test]
fn socket_capabilities_cannot_become_other_listeners() {
    let server = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = server.local_addr().expect("addr").port();
    let accept = std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in server.incoming().take(2 * everyone().len()) {
            held.push(c);
        }
    });
    for who in everyone() {
        let s = Scratch::new(who);
        for (listen, v6) in [("h=tcp://127.0.0.1:0", false), ("h=tcp://[::1]:0", true)] {
            let (level, transparent) = if v6 { ("41", "75") } else { ("0", "19") };
            let ip_transparent = format!("sockopt:h:{level}:{transparent}");
            let steps =
                ["listen:h", "relisten:h", "innerlisten", "sockopt:h:1:62", "sockopt:h:1:36"];
            let mut steps = steps.to_vec();
            steps.push(&ip_transparent);
            let l = probe(who, &s, &["--listen", listen], false, &steps);
            allowed(&l, "listen:h");
            refused(&l, "relisten:h", EPERM);
            allowed(&l, "innerlisten");
            // SO_BINDTOIFINDEX: binding an unbound socket to a device only narrows it; moving
            // it again would need CAP_NET_RAW over the host's network.
            allowed(&l, "sockopt:h:1:62");
            refused(&l, "sockopt:h:1:36", EPERM); // SO_MARK
            refused(&l, &ip_transparent, EPERM);
            // The same in capability mode, whose own filter does not stop listen.
            let l = probe(who, &s, &["--listen", listen], true, &["relisten:h", "listen:h"]);
            refused(&l, "relisten:h", EPERM);
            allowed(&l, "listen:h");
        }
        // A listen capability at a fixed port keeps it.
        let fixed = free_port();
        let cap = format!("h=tcp://127.0.0.1:{fixed}");
        let l = probe(who, &s, &["--listen", &cap], false, &["listen:h"]);
        assert_eq!(port_of(result(&l, "listen:h")), fixed.to_string(), "{l:?}");
        // A connect capability, reset, cannot listen.
        let cap = format!("c=tcp://127.0.0.1:{port}");
        let l = probe(who, &s, &["--connect", &cap], false, &["relisten:c"]);
        refused(&l, "relisten:c", EPERM);
    }
    drop(accept);
}
