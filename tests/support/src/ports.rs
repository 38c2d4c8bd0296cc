//! Free loopback ports and waiting for TCP listeners.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use crate::{Error, Result, wait};

/// The only address fixtures bind to.
pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// How long one connection attempt may take while waiting for a listener.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is released before returning, so another process can in principle
/// take it first; fixtures that use it retry start-up with a new port when the
/// bind fails.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((LOOPBACK, 0))
        .map_err(Error::io("bind 127.0.0.1:0 to find a free port"))?;
    let port = listener
        .local_addr()
        .map_err(Error::io("read the address of a bound socket"))?
        .port();
    Ok(port)
}

/// The first agent address of a local cluster of this test process that no
/// other cluster, here or in another test process, uses: `127.P.N.2`, with `P`
/// taken from the process ID and `N` counting the clusters of this process.
///
/// Agents bind the ports they offer (31000-32000 by default) on their own
/// addresses, so two clusters on one block would fight over them.
pub fn agent_block() -> Ipv4Addr {
    static NEXT: AtomicU8 = AtomicU8::new(0);
    let process = u8::try_from(std::process::id() % 250 + 1).unwrap_or(1);
    Ipv4Addr::new(127, process, NEXT.fetch_add(1, Ordering::Relaxed), 2)
}

/// True when something accepts TCP connections on `addr` right now.
pub fn is_listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).is_ok()
}

/// Waits until 127.0.0.1:`port` accepts TCP connections, or fails after `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration) -> Result<()> {
    wait_for_addr(SocketAddr::from((LOOPBACK, port)), timeout)
}

/// Waits until `addr` accepts TCP connections, or fails after `timeout`.
pub fn wait_for_addr(addr: SocketAddr, timeout: Duration) -> Result<()> {
    wait::until(&format!("{addr} to accept connections"), timeout, || {
        is_listening(addr).then_some(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_port_is_bindable_and_detected() {
        let port = free_port().expect("free port");
        assert_ne!(port, 0);
        let listener = TcpListener::bind((LOOPBACK, port)).expect("port was free");
        wait_for_port(port, Duration::from_secs(2)).expect("listener seen");
        drop(listener);
        assert!(!is_listening(SocketAddr::from((LOOPBACK, port))));
    }

    #[test]
    fn agent_blocks_differ_and_stay_off_the_default_block() {
        let (a, b) = (agent_block(), agent_block());
        assert_ne!(a, b);
        assert!(a.is_loopback() && b.is_loopback());
        assert_ne!(
            a.octets()[1],
            0,
            "127.0.0.x is left to quickstarts and the rig"
        );
    }

    #[test]
    fn wait_times_out_on_closed_port() {
        let port = free_port().expect("free port");
        let err = wait_for_port(port, Duration::from_millis(100));
        assert!(matches!(err, Err(Error::Timeout { .. })), "{err:?}");
    }
}
