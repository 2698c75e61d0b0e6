//! The accept loop: admits connections up to the inbound limit, and up to the limit per remote
//! address (see `per_address.rs`), and closes the rest at once.
//!
//! A connection beyond [`crate::Config::max_inbound`] is answered with one non-blocking write of a
//! `Goodbye(TooManyConnections)` frame and closed, so a flood of connection attempts costs a file
//! descriptor for microseconds each, never a task or a buffer. A failing `accept` (for example out of
//! file descriptors) pauses the loop for [`crate::Config::accept_error_backoff`] instead of spinning.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use dotray_codec::proto::GoodbyeReason;
use tokio::net::TcpListener;
use tracing::{Instrument, debug, warn};

use crate::context::Context;

pub(crate) async fn accept_loop(ctx: Arc<Context>, listener: TcpListener) {
    let refusal = crate::handshake::goodbye_frame(GoodbyeReason::TooManyConnections, "");
    loop {
        let accepted = tokio::select! {
            _ = ctx.root.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                warn!(%error, "accept failed; pausing");
                tokio::select! {
                    _ = ctx.root.cancelled() => return,
                    _ = tokio::time::sleep(ctx.config.accept_error_backoff) => continue,
                }
            }
        };
        let max_per_address = ctx.config.max_inbound_per_address;
        let Some(address_slot) = ctx.per_address.take(remote.ip(), max_per_address) else {
            ctx.stats.inbound_refused.fetch_add(1, Ordering::Relaxed);
            debug!(%remote, "refused: too many inbound connections from this address");
            let _ = stream.try_write(&refusal);
            continue;
        };
        match ctx.inbound.clone().try_acquire_owned() {
            Ok(permit) => {
                ctx.stats.inbound_accepted.fetch_add(1, Ordering::Relaxed);
                let task =
                    crate::connection::run(ctx.clone(), stream, None, (permit, Some(address_slot)), None);
                ctx.tracker.spawn(task.in_current_span());
            }
            Err(_) => {
                ctx.stats.inbound_refused.fetch_add(1, Ordering::Relaxed);
                debug!(%remote, "refused: too many inbound connections");
                let _ = stream.try_write(&refusal);
                drop(stream);
            }
        }
    }
}
