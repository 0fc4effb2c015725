//! The first TCP port that can be bound on all IPv4 interfaces.
//!
//! No `SO_REUSEADDR` (so a port in `TIME_WAIT` is not free); this is why the
//! probe goes through `socket2`: `std::net::TcpListener::bind` sets that
//! option on Unix.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};

use socket2::{Domain, Socket, Type};

/// One past the last port probed (`start_port <= p < END_PORT`).
pub const END_PORT: u32 = 65535;

/// The first port `p` with `start_port <= p < 65535` that a fresh IPv4 TCP
/// socket can `bind` on `0.0.0.0`, or `None` when there is none (including
/// `start_port >= 65535`). A failing `bind` (`EADDRINUSE`, `EACCES`, ...)
/// skips the port; failing to create the socket (`EMFILE`, ...) is returned.
/// Every probe socket is closed before this returns.
pub fn find_free_port(start_port: u32) -> io::Result<Option<u16>> {
    for port in start_port..END_PORT {
        // `port < 65535`, so it fits in u16.
        let port = port as u16;
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        let address = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        if socket.bind(&address.into()).is_ok() {
            return Ok(Some(port));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn no_port_at_or_above_65535() {
        assert_eq!(find_free_port(65535).unwrap(), None);
        assert_eq!(find_free_port(70000).unwrap(), None);
    }

    #[test]
    fn port_zero_is_accepted_by_the_kernel() {
        assert_eq!(find_free_port(0).unwrap(), Some(0));
    }

    #[test]
    fn a_bound_port_is_skipped_and_the_probe_is_closed() {
        // Hold a port (std sets SO_REUSEADDR on it, which does not make it
        // bindable by a socket without that option).
        let held = TcpListener::bind("0.0.0.0:0").unwrap();
        let port = held.local_addr().unwrap().port();
        if port >= 65534 {
            return; // no next port to find; the kernel picked the top one
        }
        let found = find_free_port(u32::from(port)).unwrap().unwrap();
        assert!(found > port, "found {found}, held {port}");
        // The probe socket was closed: the port can be bound again.
        let again = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let address = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, found);
        again.bind(&address.into()).unwrap();
    }
}
