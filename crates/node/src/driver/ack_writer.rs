//! The acknowledgement writer: a thread of its own that stores acknowledged positions in the data
//! directory, so the driver (which relays for the whole network) never waits for those commits.
//!
//! Group commit: after a commit the writer lets `DriverConfig::ack_commit_interval` pass before the
//! next, and everything that arrived meanwhile goes into it. A node then makes at most one commit per
//! interval however fast its application acknowledges, and each waiter is answered once its
//! positions are durable (at most an interval and a commit later).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use dotray_router::core::StreamId;
use dotray_store::{DataDir, Delivered};
use tokio::sync::oneshot;
use tracing::warn;

use super::AckError;

/// One acknowledgement: positions, and who waits for them to be stored.
pub(super) type AckRequest = (Vec<(StreamId, u64)>, oneshot::Sender<Result<(), AckError>>);

/// The running writer. Dropping it closes its queue and waits for its thread to finish the commit
/// under way, so the data directory is closed (and free for another process) once the driver is gone.
#[derive(Debug)]
pub(super) struct AckWriter {
    queue: Option<mpsc::Sender<AckRequest>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl AckWriter {
    /// Hands `request` to the writer; gives it back if the writer has stopped.
    pub(super) fn send(&self, request: AckRequest) -> Result<(), AckRequest> {
        match &self.queue {
            Some(queue) => queue.send(request).map_err(|mpsc::SendError(request)| request),
            None => Err(request),
        }
    }
}

impl Drop for AckWriter {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the writer for `store`, keeping at most `keep` positions (see `DataDir::save_delivered`),
/// committing at most once per `interval`.
pub(super) fn spawn(store: Arc<DataDir>, keep: usize, interval: Duration) -> std::io::Result<AckWriter> {
    let (tx, rx) = mpsc::channel::<AckRequest>();
    let thread = thread::Builder::new().name("dotray-acks".to_owned()).spawn(move || {
        let mut last_commit: Option<Instant> = None;
        while let Ok(first) = rx.recv() {
            if let Some(wait) =
                last_commit.and_then(|at| (at + interval).checked_duration_since(Instant::now()))
            {
                thread::sleep(wait);
            }
            let mut positions: HashMap<StreamId, u64> = HashMap::new();
            let mut waiters = Vec::new();
            for (acked, done) in std::iter::once(first).chain(rx.try_iter()) {
                for (stream, through) in acked {
                    let position = positions.entry(stream).or_insert(through);
                    *position = (*position).max(through);
                }
                waiters.push(done);
            }
            let positions: Vec<Delivered> = positions
                .into_iter()
                .map(|(stream, through)| Delivered { origin: stream.origin, epoch: stream.epoch, through })
                .collect();
            let result = store.save_delivered(&positions, keep).map_err(|error| {
                warn!(%error, "cannot store acknowledged positions");
                AckError::DataDir(error.to_string())
            });
            last_commit = Some(Instant::now());
            for done in waiters {
                let _ = done.send(result.clone());
            }
        }
    })?;
    Ok(AckWriter { queue: Some(tx), thread: Some(thread) })
}
