//! The kernel's side of a connection: the socket options every listening, dialing and accepted socket
//! gets.
//!
//! Everything the transport queues itself is bounded ([`crate::Config::max_queue_bytes`], the event
//! queue, the read buffers), but a TCP connection also holds bytes in two kernel buffers: the
//! sender's (written, not yet sent) and the receiver's (arrived, not yet read). Left to themselves,
//! Linux grows both to megabytes (`net.ipv4.tcp_rmem` allows 32 MiB by default) when a node stops
//! reading because a neighbour of its is behind (the node driver's hop-by-hop back-pressure). An
//! operator who wants that kernel memory bounded can cap both:
//!
//! * [`crate::Config::socket_receive_buffer`] sets `SO_RCVBUF` before the handshake (on the listening
//!   socket, which accepted sockets inherit, and before connecting), which bounds the window a peer may
//!   send into: the bytes of this connection that can wait in this node's kernel.
//! * [`crate::Config::socket_unsent_max`] sets `TCP_NOTSENT_LOWAT` (Linux): the writer is woken only
//!   when fewer bytes than this wait unsent, so what it has not yet written stays in its own queue,
//!   where it is counted.

use std::io;

use tokio::net::{TcpSocket, TcpStream};

use crate::Config;

/// Sets the options a socket needs before it connects or listens (the receive buffer decides the
/// window scale offered in the handshake).
pub(crate) fn before_connect(socket: &TcpSocket, config: &Config) -> io::Result<()> {
    if let Some(bytes) = config.socket_receive_buffer {
        socket.set_recv_buffer_size(clamp_u32(bytes))?;
    }
    Ok(())
}

/// Sets the options of an established connection. Failures are ignored: they only leave a kernel
/// default in place (on a platform without `TCP_NOTSENT_LOWAT`, for instance).
pub(crate) fn connected(stream: &TcpStream, config: &Config) {
    // Small frames (pings, acks) must not wait for Nagle's algorithm; the writer batches instead.
    let _ = stream.set_nodelay(true);
    if let Some(bytes) = config.socket_receive_buffer {
        // Inherited from the listener on Linux; set again where it is not.
        let socket = socket2::SockRef::from(stream);
        let _ = socket.set_recv_buffer_size(bytes);
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(bytes) = config.socket_unsent_max {
        let _ = socket2::SockRef::from(stream).set_tcp_notsent_lowat(clamp_u32(bytes));
    }
}

fn clamp_u32(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    /// A connected pair of loopback sockets, both tuned with `config`.
    async fn pair(config: &Config) -> (TcpStream, TcpStream) {
        let listen = TcpSocket::new_v4().unwrap();
        before_connect(&listen, config).unwrap();
        listen.bind("127.0.0.1:0".parse::<SocketAddr>().unwrap()).unwrap();
        let listener = listen.listen(8).unwrap();
        let dial = TcpSocket::new_v4().unwrap();
        before_connect(&dial, config).unwrap();
        let (dialed, accepted) =
            tokio::join!(dial.connect(listener.local_addr().unwrap()), listener.accept());
        let (dialed, accepted) = (dialed.unwrap(), accepted.unwrap().0);
        connected(&dialed, config);
        connected(&accepted, config);
        (dialed, accepted)
    }

    #[tokio::test]
    async fn both_ends_get_the_configured_receive_buffer() {
        let config = Config { socket_receive_buffer: Some(64 * 1024), ..Config::default() };
        let (dialed, accepted) = pair(&config).await;
        for stream in [&dialed, &accepted] {
            let size = socket2::SockRef::from(stream).recv_buffer_size().unwrap();
            // Linux doubles the value for its bookkeeping; never the autotuned megabytes.
            assert!((64 * 1024..=128 * 1024).contains(&size), "receive buffer {size}");
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[tokio::test]
    async fn the_unsent_mark_is_set() {
        let config = Config { socket_unsent_max: Some(32 * 1024), ..Config::default() };
        let (dialed, accepted) = pair(&config).await;
        for stream in [&dialed, &accepted] {
            assert_eq!(socket2::SockRef::from(stream).tcp_notsent_lowat().unwrap(), 32 * 1024);
        }
    }

    #[tokio::test]
    async fn none_leaves_the_kernel_defaults() {
        let config = Config { socket_receive_buffer: None, socket_unsent_max: None, ..Config::default() };
        let (dialed, _accepted) = pair(&config).await;
        assert!(dialed.nodelay().unwrap());
        #[cfg(any(target_os = "linux", target_os = "android"))]
        // 0: not set on this socket, so the system-wide `net.ipv4.tcp_notsent_lowat` applies.
        assert_eq!(socket2::SockRef::from(&dialed).tcp_notsent_lowat().unwrap(), 0);
    }
}
