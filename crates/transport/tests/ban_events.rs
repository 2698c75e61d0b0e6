//! Bans and refusals are reported as `tracing` events with the fields an operator needs. Alone in its
//! own test binary: a subscriber set for one thread only sees every event reliably when no other test
//! runs transports on other threads at the same time (callsites cache their interest globally).

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use dotray_codec::proto::GoodbyeReason;
use dotray_transport::{Config, DialError, HandshakeError, TransportEvent};

/// Log lines captured from the `tracing` events of the current thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// A current-thread runtime: every transport task runs on this thread, under the subscriber set here.
#[tokio::test(flavor = "current_thread")]
async fn bans_and_refusals_are_reported_as_tracing_events() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (a, mut a_events) = node(Config { ban_duration: Duration::from_secs(30), ..fast_config() }).await;
    let (b, mut b_events) = node(fast_config()).await;
    b.connect(a.local_addr()).await.expect("connect");
    let b_on_a = wait_connected(&mut a_events).await;
    b_on_a.sender.close_for_violation("test: a message out of order");
    wait_for(&mut b_events, |e| matches!(e, TransportEvent::Disconnected { .. }).then_some(())).await;
    match b.connect(a.local_addr()).await {
        Err(DialError::Handshake(HandshakeError::Refused { reason: GoodbyeReason::Banned, .. })) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    wait_for(&mut a_events, |e| matches!(e, TransportEvent::HandshakeFailed { .. }).then_some(())).await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let peer = format!("peer={:?}", b.local_id());
    let banned = logs.lines().find(|l| l.contains("banned") && l.contains(" WARN ")).expect(&logs);
    for field in [
        peer.as_str(),
        "remote=127.0.0.1:",
        "reason=test: a message out of order",
        "offences=1",
        "banned_for=30s",
    ] {
        assert!(banned.contains(field), "{field:?} missing from {banned:?}");
    }
    let refused = logs.lines().find(|l| l.contains("refused a banned peer")).expect(&logs);
    for field in [" DEBUG ", peer.as_str(), "remote=127.0.0.1:", "offences=1", "remaining="] {
        assert!(refused.contains(field), "{field:?} missing from {refused:?}");
    }
}
