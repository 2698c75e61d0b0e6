//! [`PeerSender`]: the sending end of one connection's bounded outbound queue, and the state the
//! connection's reader and writer tasks share.
//!
//! The queue is bounded in *bytes* ([`crate::Config::max_queue_bytes`]): a frame counts from when it is
//! queued until the writer has it on the wire. So a peer that stops reading can hold at most that many
//! bytes of this node's memory, and the sender always learns that the queue is full
//! ([`SendError::QueueFull`]) instead of frames vanishing. The frames themselves wait in an
//! [`OutQueue`] under a short lock, which the writer empties a batch at a time.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dotray_codec::proto::GoodbyeReason;
use dotray_codec::{FRAME_HEADER_LEN, NodeId, OutFrame};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::ban::BanList;
use crate::out_queue::OutQueue;
use crate::{DisconnectReason, SendError};

/// How a connection is being closed: what to tell the peer, whether to flush the queue first, and what
/// to report upward.
#[derive(Debug, Clone)]
pub(crate) struct Closing {
    /// Goodbye to send before closing, if any.
    pub(crate) goodbye: Option<GoodbyeReason>,
    /// Write what is queued before the goodbye (a graceful, local close).
    pub(crate) flush: bool,
    /// What the `Disconnected` event says.
    pub(crate) reason: DisconnectReason,
}

/// The outbound queue and whether the writer waits for it.
#[derive(Debug, Default)]
struct Out {
    queue: OutQueue,
    /// Set by the writer when it found the queue empty and is about to wait; the next frame clears it
    /// and wakes the writer (one wake-up per burst, not per frame).
    writer_idle: bool,
}

/// State shared by a connection's [`PeerSender`]s, its reader and its writer.
#[derive(Debug)]
pub(crate) struct ConnShared {
    pub(crate) peer: NodeId,
    /// The socket's remote address, for the ban's log line.
    remote: SocketAddr,
    /// The transport's ban list.
    bans: Arc<BanList>,
    /// Set by the first violation reported on this connection: one connection, one offence.
    violated: AtomicBool,
    /// Set by the reader about once per idle period: the writer gives back its sealing buffers the
    /// next time it finds nothing to write.
    release_buffers: AtomicBool,
    /// The frames waiting for the writer.
    out: Mutex<Out>,
    /// Bytes queued and not yet written (those the writer holds in its current write included).
    /// Raised under `out`'s lock, with the budget check; lowered by the writer and read without it.
    queued: AtomicUsize,
    /// Wakes the writer when it found the queue empty (see `Out::writer_idle`) and a frame came.
    pub(crate) work: Notify,
    /// Woken by the writer once a write brings the queue down to `drain_target`, and when the
    /// connection closes: what [`PeerSender::queue_drained`] waits on.
    pub(crate) drained: Notify,
    /// One more than the largest queue length a [`PeerSender::queue_drained`] waits for; 0 when
    /// none waits. Lets the writer wake a waiter only when it may go on, not after every write.
    drain_target: AtomicUsize,
    max_queue_bytes: usize,
    max_frame_len: usize,
    /// Cancelled when the connection starts closing, for any reason.
    pub(crate) close: CancellationToken,
    /// Set by `begin_close`: the per-send check. (`CancellationToken::is_cancelled` takes a lock, too
    /// much for the send path, where it runs once per frame per peer.)
    closed: AtomicBool,
    /// The first close request wins; later ones are ignored.
    closing: Mutex<Option<Closing>>,
}

impl ConnShared {
    pub(crate) fn new(
        peer: NodeId,
        remote: SocketAddr,
        bans: Arc<BanList>,
        max_queue_bytes: usize,
        max_frame_len: usize,
        close: CancellationToken,
    ) -> Self {
        Self {
            peer,
            remote,
            bans,
            violated: AtomicBool::new(false),
            release_buffers: AtomicBool::new(false),
            out: Mutex::new(Out::default()),
            queued: AtomicUsize::new(0),
            work: Notify::new(),
            drained: Notify::new(),
            drain_target: AtomicUsize::new(0),
            max_queue_bytes,
            max_frame_len,
            close,
            closed: AtomicBool::new(false),
            closing: Mutex::new(None),
        }
    }

    /// Queues a frame of `len` bytes with `push` if the byte budget has room for it; false (and
    /// `push` not called) if not.
    fn push_if_room(&self, len: usize, push: impl FnOnce(&mut OutQueue)) -> bool {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if self.queued.load(Ordering::Relaxed) + len > self.max_queue_bytes {
            return false;
        }
        self.queued.fetch_add(len, Ordering::SeqCst);
        push(&mut out.queue);
        let wake = std::mem::take(&mut out.writer_idle);
        drop(out);
        if wake {
            self.work.notify_one();
        }
        true
    }

    /// For the writer: true while frames wait for it (not counting those it is writing). When none
    /// does, marks the writer idle, so that the next frame queued wakes it through `work`.
    pub(crate) fn has_queued(&self) -> bool {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if out.queue.is_empty() {
            out.writer_idle = true;
            out.queue.release_idle();
            return false;
        }
        true
    }

    /// Asks the writer to give back its sealing buffers when it next has nothing to write, and wakes
    /// it so that an idle writer does so now. Called by the reader once per idle period, so a
    /// connection whose burst is over holds no large buffers, and the busy path costs nothing.
    pub(crate) fn request_buffer_release(&self) {
        self.release_buffers.store(true, Ordering::Relaxed);
        self.work.notify_one();
    }

    /// For the writer: true once after [`ConnShared::request_buffer_release`].
    pub(crate) fn take_buffer_release(&self) -> bool {
        self.release_buffers.swap(false, Ordering::Relaxed)
    }

    /// For the writer: moves the next batch of slices into `batch` (see [`OutQueue::take`]); returns
    /// the bytes and the frames moved.
    pub(crate) fn take_batch(
        &self,
        batch: &mut Vec<Bytes>,
        max_slices: usize,
        max_bytes: usize,
    ) -> (usize, u64) {
        self.out.lock().unwrap_or_else(|e| e.into_inner()).queue.take(batch, max_slices, max_bytes)
    }

    /// Called by the writer once `bytes` are on the wire: frees their budget and wakes the waiters of
    /// [`PeerSender::queue_drained`] if the queue is now short enough for them. (A waiter publishes
    /// its target before it checks the queue, and this frees the bytes before it reads the target,
    /// all sequentially consistent: one of the two sees the other.)
    pub(crate) fn wrote(&self, bytes: usize) {
        // No lock needed: a sender checks the budget under the lock, and a concurrent decrease only
        // makes that check stricter than it needs to be, for a moment.
        self.queued.fetch_sub(bytes, Ordering::SeqCst);
        let target = self.drain_target.load(Ordering::SeqCst);
        if target != 0 && self.queued_bytes() < target {
            self.drain_target.store(0, Ordering::SeqCst);
            self.drained.notify_waiters();
        }
    }

    /// Bytes queued and not yet written.
    pub(crate) fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }

    /// Starts closing the connection, unless it is already closing.
    pub(crate) fn begin_close(&self, closing: Closing) {
        {
            let mut slot = self.closing.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(closing);
            }
        }
        self.closed.store(true, Ordering::Release);
        self.close.cancel();
        self.drained.notify_waiters();
    }

    /// The peer broke the protocol on this connection: bans its node id (logged as a warning), unless
    /// a violation was already reported on this connection. Does not close the connection.
    pub(crate) fn report_violation(&self, what: &str) {
        if !self.violated.swap(true, Ordering::AcqRel) {
            self.bans.record_violation(self.peer, self.remote, what, tokio::time::Instant::now());
        }
    }

    /// True once `begin_close` ran (lock-free; the token may be cancelled a moment earlier by a
    /// shutdown, which `begin_close` follows).
    pub(crate) fn is_closing(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// How the connection is closing. When the close token was cancelled from outside (the transport's
    /// root token), it is a shutdown.
    pub(crate) fn closing(&self) -> Closing {
        let slot = self.closing.lock().unwrap_or_else(|e| e.into_inner());
        slot.clone().unwrap_or(Closing {
            goodbye: Some(GoodbyeReason::Shutdown),
            flush: true,
            reason: DisconnectReason::Shutdown,
        })
    }
}

/// Sends frames to one connected peer. Cheap to clone; queuing takes a short lock (a copy of a small
/// frame, or a push of a larger one's parts).
///
/// A frame is an [`OutFrame`]: encode a message once and queue the same frame for every peer that
/// gets it. Frames below [`dotray_codec::COPY_FRAME_MAX`] are copied into the connection's queue
/// (cheaper than sharing them); larger ones are queued as their parts, by reference, and the writer
/// encrypts them from there: encryption is a large payload's only copy.
///
/// ```no_run
/// # fn demo(sender: dotray_transport::PeerSender) -> Result<(), Box<dyn std::error::Error>> {
/// use dotray_codec::{DEFAULT_MAX_FRAME_LEN, OutFrame, proto};
/// let ping = OutFrame::encode(&proto::Ping { nonce: 1, sent_at_micros: 0 }.into(), DEFAULT_MAX_FRAME_LEN)?;
/// sender.try_send(&ping)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PeerSender {
    pub(crate) shared: Arc<ConnShared>,
}

impl PeerSender {
    /// The peer this sender reaches.
    pub fn peer(&self) -> NodeId {
        self.shared.peer
    }

    /// Queues `frame` if there is room now; never waits. [`SendError::QueueFull`] when the peer reads
    /// too slowly.
    pub fn try_send(&self, frame: &OutFrame<'_>) -> Result<(), SendError> {
        let len = frame.len();
        self.check(len)?;
        if self.shared.push_if_room(len, |queue| queue.push(frame)) {
            Ok(())
        } else {
            Err(SendError::QueueFull)
        }
    }

    /// Queues `frame`, waiting for room if the queue is full (back-pressure).
    pub async fn send(&self, frame: &OutFrame<'_>) -> Result<(), SendError> {
        let len = frame.len();
        loop {
            self.check(len)?;
            if self.shared.push_if_room(len, |queue| queue.push(frame)) {
                return Ok(());
            }
            self.queue_drained(self.shared.max_queue_bytes - len).await;
        }
    }

    /// Closes the connection: what is queued is written, then a goodbye with `reason`. For a peer that
    /// broke the protocol, use [`PeerSender::close_for_violation`], which also bans it.
    pub fn close(&self, reason: GoodbyeReason) {
        self.shared.begin_close(Closing {
            goodbye: Some(reason),
            flush: true,
            reason: DisconnectReason::Local(reason),
        });
    }

    /// Closes the connection because the peer broke the protocol, as a layer above found (an invalid
    /// message, a message out of order): the peer gets `Goodbye(ProtocolViolation)` with `reason` as
    /// its detail, what is queued for it is dropped, and its node id is banned for a while
    /// ([`crate::Config::ban_duration`], longer for repeat offences), which a `warn` event reports.
    /// Until the ban ends, its connections are refused. The connection reports
    /// [`DisconnectReason::ProtocolViolation`].
    ///
    /// Several reports on one connection count as one offence.
    pub fn close_for_violation(&self, reason: &str) {
        self.shared.report_violation(reason);
        self.shared.begin_close(Closing {
            goodbye: Some(GoodbyeReason::ProtocolViolation),
            flush: false,
            reason: DisconnectReason::ProtocolViolation(reason.to_owned()),
        });
    }

    /// True once the connection is closing or closed.
    pub fn is_closed(&self) -> bool {
        self.shared.close.is_cancelled()
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued_bytes()
    }

    /// Resolves once at most `bytes` are queued (see [`PeerSender::queued_bytes`]), or once the
    /// connection is closing. Owns what it needs, so it can be held across other calls.
    ///
    /// This is how a sender that stops at a high-water mark learns, without polling, that it may go
    /// on: the writer wakes it as soon as a write brings the queue down.
    ///
    /// ```no_run
    /// # async fn demo(sender: dotray_transport::PeerSender) {
    /// const HIGH_WATER: usize = 64 * 1024;
    /// if sender.queued_bytes() > HIGH_WATER {
    ///     sender.queue_drained(HIGH_WATER).await;
    /// }
    /// # }
    /// ```
    pub fn queue_drained(&self, bytes: usize) -> impl Future<Output = ()> + Send + 'static {
        let shared = self.shared.clone();
        async move {
            loop {
                // Registered before the check, so a write between the two still wakes it.
                let notified = shared.drained.notified();
                let mut notified = std::pin::pin!(notified);
                notified.as_mut().enable();
                shared.drain_target.fetch_max(bytes.saturating_add(1), Ordering::SeqCst);
                if shared.queued_bytes() <= bytes || shared.is_closing() {
                    return;
                }
                notified.await;
            }
        }
    }

    /// Whether a frame of `len` bytes may be queued at all: the connection is open and the frame fits
    /// the budget.
    fn check(&self, len: usize) -> Result<(), SendError> {
        if self.shared.is_closing() {
            return Err(SendError::Closed);
        }
        // A frame longer than the connection's frame limit would only make the peer close it.
        if len > self.shared.max_queue_bytes || len > self.shared.max_frame_len + FRAME_HEADER_LEN {
            return Err(SendError::TooLarge);
        }
        Ok(())
    }
}
