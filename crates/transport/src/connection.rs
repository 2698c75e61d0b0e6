//! One connection's life: handshake, registration, the reader loop, the writer task, and the close.
//!
//! ```text
//!   TCP connected ──► handshake: Noise, then Hellos (bounded by handshake_timeout)
//!                        │ ok                       │ failed or banned: goodbye with the reason
//!                        │                          │ (except to a failed Noise), typed error
//!                        ▼
//!                   registry.admit ── rejected ──► goodbye(DuplicateConnection), close
//!                        │ admitted (wait for a replaced connection's Disconnected)
//!                        ▼
//!        spawn writer ◄──┴──► emit Connected, then the read loop (`reader` module):
//!   (seals frames into chunks)   opens chunks, decodes frames:
//!                              frames → Frames events (awaiting room: back-pressure)
//!                              goodbye / EOF / idle / bad frame / local close → leave the loop
//!                              (a bad frame or a reported violation also bans the peer's node id)
//!                        ▼
//!   close: stop or flush the writer (goodbye), unregister, emit Disconnected, mark done
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use dotray_codec::proto::GoodbyeReason;
use dotray_codec::{FrameCodec, NodeId};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, field, info_span};

use crate::config::MAX_WRITE_SLICES;
use crate::context::Context;
use crate::handshake::{self, Established, GOODBYE_WRITE_TIMEOUT, Local, PeerHello};
use crate::peer_sender::{Closing, ConnShared};
use crate::per_address::AddressSlot;
use crate::reader;
use crate::registry::{Admission, Entry};
use crate::sealed::{SealedBytes, Sealer};
use crate::{
    ConnectedPeer, DialError, Direction, DisconnectReason, HandshakeError, PeerSender, TransportEvent,
};

/// The writer seals a batch this many bytes at a time and writes each part: the sealed copy a
/// connection holds is about this large (plus one chunk), however large the batch, while each write
/// still carries dozens of small frames or a large frame's worth.
const SEAL_WRITE_BYTES: usize = 64 * 1024;

/// Where a dial wants its outcome.
pub(crate) type DialReply = oneshot::Sender<Result<ConnectedPeer, DialError>>;

/// Runs a connection from TCP connect to close. `dialed` is the address and the node id (if known)
/// that a dial asked for; `_slots` hold this connection's inbound or outbound slot, and an inbound
/// one's share of its address's count, until the function returns.
pub(crate) async fn run(
    ctx: Arc<Context>,
    stream: TcpStream,
    dialed: Option<(SocketAddr, Option<NodeId>)>,
    _slots: (OwnedSemaphorePermit, Option<AddressSlot>),
    reply: Option<DialReply>,
) {
    let direction = if dialed.is_some() { Direction::Outbound } else { Direction::Inbound };
    let remote = stream.peer_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let span = info_span!(parent: &ctx.span, "conn", %remote, outbound = direction.is_outbound(), peer = field::Empty);
    run_inner(ctx, stream, direction, dialed, remote, reply).instrument(span).await
}

async fn run_inner(
    ctx: Arc<Context>,
    stream: TcpStream,
    direction: Direction,
    dialed: Option<(SocketAddr, Option<NodeId>)>,
    remote: SocketAddr,
    reply: Option<DialReply>,
) {
    let config = &ctx.config;
    crate::socket::connected(&stream, config);
    let local_addr = stream.local_addr().unwrap_or(remote);
    let (mut read_half, mut write_half) = stream.into_split();
    let (dialed, expected) = match dialed {
        Some((addr, expected)) => (Some(addr), expected),
        None => (None, None),
    };

    // 1. Handshake, bounded in time as a whole (a peer dribbling bytes does not extend it). A banned
    //    node id is refused once its hello is known.
    let refuse = |peer: &PeerHello| refuse_banned(&ctx, peer, remote);
    let local = Local {
        hello: &ctx.hello,
        identity: &ctx.identity,
        direction,
        expected,
        timeout: config.handshake_timeout,
    };
    let handshake = handshake::handshake(&mut read_half, &mut write_half, local, remote, refuse);
    let result = tokio::select! {
        _ = ctx.root.cancelled() => return finish_failed_dial(reply, DialError::Shutdown),
        r = handshake => r,
    };
    let Established { peer, mut sealer, opener, sealed, plain } = match result {
        Ok(established) => established,
        Err(error) => return handshake_failed(&ctx, write_half, direction, remote, error, reply).await,
    };
    tracing::Span::current().record("peer", field::debug(peer.id));

    // 2. Register, applying the one-connection-per-pair rule.
    let shared = Arc::new(ConnShared::new(
        peer.id,
        remote,
        ctx.bans.clone(),
        config.max_queue_bytes,
        config.max_frame_len,
        ctx.root.child_token(),
    ));
    let conn_id = ctx.next_conn_id();
    let done = CancellationToken::new();
    let entry = Entry {
        conn_id,
        outbound: direction.is_outbound(),
        nonce: peer.nonce,
        dialed,
        listen_addr: peer.listen_addr,
        remote_addr: remote,
        local_addr,
        shared: shared.clone(),
        done: done.clone(),
    };
    match ctx.registry.admit(peer.id, entry) {
        Admission::Rejected => {
            debug!("duplicate connection, keeping the other one");
            write_goodbye(&mut write_half, &mut sealer, GoodbyeReason::DuplicateConnection).await;
            return finish_failed_dial(reply, DialError::AlreadyConnected(peer.id));
        }
        Admission::Admitted { wait_for: Some(old_done) } => {
            // Let the replaced connection report its Disconnected first.
            tokio::select! {
                _ = old_done.cancelled() => {}
                _ = shared.close.cancelled() => {}
            }
        }
        Admission::Admitted { wait_for: None } => {}
    }

    // 3. Writer task, then announce the connection.
    let writer = tokio::spawn(
        write_loop(ctx.clone(), write_half, sealer, shared.clone()).instrument(tracing::Span::current()),
    );
    let connected = ConnectedPeer {
        id: peer.id,
        listen_addr: peer.listen_addr,
        remote_addr: remote,
        local_addr,
        direction,
        dialed,
        sender: PeerSender { shared: shared.clone() },
    };
    debug!(listen = ?peer.listen_addr, "connected");
    if !ctx.emit(TransportEvent::Connected(connected.clone()), &shared.close).await {
        shared.begin_close(Closing {
            goodbye: Some(GoodbyeReason::Shutdown),
            flush: false,
            reason: DisconnectReason::Shutdown,
        });
    }
    if let Some(reply) = reply {
        let _ = reply.send(Ok(connected));
    }

    // 4. Read until the connection ends, for whatever reason.
    let decoder = FrameCodec::with_max_frame_len(config.max_frame_len);
    let stream = reader::SealedStream { socket: read_half, sealed, opener };
    reader::read_loop(&ctx, stream, plain, decoder, &shared, &peer).await;

    // 5. Close: the writer flushes (graceful) or stops, says goodbye if we are the ones closing.
    let closing = shared.closing();
    shared.begin_close(closing.clone());
    let _ = writer.await;
    ctx.registry.remove(peer.id, conn_id);
    debug!(reason = ?closing.reason, "disconnected");
    // Waits for room like every event, but not past the start of shutdown: then it is reported only
    // if the channel has room, because a receiver that is not read (its owner is awaiting
    // `Transport::shutdown`) would otherwise hold shutdown forever.
    let disconnected = TransportEvent::Disconnected { peer: peer.id, reason: closing.reason };
    if !ctx.emit(disconnected, &ctx.root).await && !ctx.events.is_closed() {
        ctx.stats.events_dropped_at_shutdown.fetch_add(1, Ordering::Relaxed);
        debug!("event channel full at shutdown: Disconnected not reported");
    }
    done.cancel();
}

/// Drains the outbound queue, sealed into chunks, until the connection closes.
async fn write_loop(
    ctx: Arc<Context>,
    mut writer: OwnedWriteHalf,
    mut sealer: Sealer,
    shared: Arc<ConnShared>,
) {
    let (write_timeout, batch_bytes) = (ctx.config.write_timeout, ctx.config.write_batch_bytes);
    let mut batch: Vec<Bytes> = Vec::with_capacity(MAX_WRITE_SLICES);
    let mut out = SealedBytes::default();
    // One close future for the loop (see `read_loop`).
    let closed = shared.close.cancelled();
    tokio::pin!(closed);
    'writing: loop {
        // Wait until something is queued, or for the close. A graceful close still drains what is
        // queued below; a close with an empty queue ends the loop. Once per idle period the reader
        // asks for the sealing buffers back (see `ConnShared::request_buffer_release`).
        while !shared.has_queued() {
            if shared.take_buffer_release() {
                out = SealedBytes::default();
                sealer.shrink();
            }
            tokio::select! {
                biased;
                _ = shared.work.notified() => {}
                _ = &mut closed => {
                    if !shared.has_queued() {
                        break 'writing;
                    }
                }
            }
        }
        if shared.is_closing() && !shared.closing().flush {
            break;
        }
        // Let every other task that is ready run once before writing: the tasks that feed this queue
        // (a router relaying a batch of frames it just read, a publisher) usually have more frames to
        // add, and they join this write instead of each costing a syscall of its own (without it the
        // writer, woken on the other core by the first frame, writes one to three frames per
        // write; see docs/PERFORMANCE.md). Costs one extra poll per batch; under light load the
        // delay is a scheduler turn (microseconds).
        tokio::task::yield_now().await;
        // Everything queued by now, up to one write's worth, sealed and written SEAL_WRITE_BYTES at a
        // time (so the sealed copy a connection holds stays small whatever the batch).
        let (bytes, frames) = shared.take_batch(&mut batch, MAX_WRITE_SLICES, batch_bytes);
        let failure = seal_and_write(&mut writer, &mut sealer, &batch, &mut out, write_timeout).await;
        batch.clear();
        if let Some(reason) = failure {
            debug!(?reason, "write failed");
            shared.begin_close(Closing { goodbye: None, flush: false, reason });
            return;
        }
        shared.wrote(bytes);
        ctx.stats.bytes_written.fetch_add(bytes as u64, Ordering::Relaxed);
        ctx.stats.frames_written.fetch_add(frames, Ordering::Relaxed);
        if shared.is_closing() && !shared.has_queued() {
            break;
        }
    }
    let closing = shared.closing();
    if let Some(reason) = closing.goodbye {
        // A violating peer learns what it did wrong.
        let detail = match &closing.reason {
            DisconnectReason::ProtocolViolation(what) => what.as_str(),
            _ => "",
        };
        let frame = handshake::goodbye_frame(reason, detail);
        out.clear();
        if sealer.seal(&[frame], &mut out).is_ok() {
            let _ = timeout(GOODBYE_WRITE_TIMEOUT.min(write_timeout), writer.write_all(out.as_slice())).await;
        }
    }
    let _ = timeout(GOODBYE_WRITE_TIMEOUT.min(write_timeout), writer.shutdown()).await;
}

/// Seals `batch` into `out` and writes it, whenever [`SEAL_WRITE_BYTES`] are sealed and at the end.
/// Returns why the connection must close, if it must.
async fn seal_and_write(
    writer: &mut OwnedWriteHalf,
    sealer: &mut Sealer,
    batch: &[Bytes],
    out: &mut SealedBytes,
    write_timeout: Duration,
) -> Option<DisconnectReason> {
    for slice in batch {
        for piece in slice.chunks(SEAL_WRITE_BYTES) {
            if sealer.push(piece, out).is_err() {
                return Some(DisconnectReason::Unauthentic);
            }
            if out.as_slice().len() >= SEAL_WRITE_BYTES {
                if let Some(failure) = write_out(writer, out, write_timeout).await {
                    return Some(failure);
                }
            }
        }
    }
    if sealer.finish(out).is_err() {
        return Some(DisconnectReason::Unauthentic);
    }
    write_out(writer, out, write_timeout).await
}

/// Writes what `out` holds, if anything, and clears it.
async fn write_out(
    writer: &mut OwnedWriteHalf,
    out: &mut SealedBytes,
    write_timeout: Duration,
) -> Option<DisconnectReason> {
    if out.as_slice().is_empty() {
        return None;
    }
    let written = timeout(write_timeout, writer.write_all(out.as_slice())).await;
    out.clear();
    match written {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(DisconnectReason::Io(e.kind())),
        Err(_) => Some(DisconnectReason::WriteTimeout),
    }
}

/// Best-effort sealed goodbye on a connection that is being abandoned after its handshake.
async fn write_goodbye(writer: &mut OwnedWriteHalf, sealer: &mut Sealer, reason: GoodbyeReason) {
    let mut out = SealedBytes::default();
    if sealer.seal(&[handshake::goodbye_frame(reason, "")], &mut out).is_ok() {
        let _ = timeout(GOODBYE_WRITE_TIMEOUT, writer.write_all(out.as_slice())).await;
    }
    let _ = timeout(GOODBYE_WRITE_TIMEOUT, writer.shutdown()).await;
}

/// The error that refuses `peer` if its node id is banned; logs the refusal.
fn refuse_banned(ctx: &Context, peer: &PeerHello, remote: SocketAddr) -> Option<HandshakeError> {
    let ban = ctx.bans.refusal(peer.id, tokio::time::Instant::now())?;
    debug!(
        peer = ?peer.id,
        %remote,
        remaining = ?ban.remaining,
        offences = ban.offences,
        reason = %ban.reason,
        "refused a banned peer"
    );
    Some(HandshakeError::Banned {
        peer: peer.id,
        remaining: ban.remaining,
        offences: ban.offences,
        reason: ban.reason,
    })
}

async fn handshake_failed(
    ctx: &Context,
    mut writer: OwnedWriteHalf,
    direction: Direction,
    remote: SocketAddr,
    error: HandshakeError,
    reply: Option<DialReply>,
) {
    debug!(%error, "handshake failed");
    // The handshake said goodbye if it had something to say.
    let _ = timeout(GOODBYE_WRITE_TIMEOUT, writer.shutdown()).await;
    match direction {
        Direction::Outbound => finish_failed_dial(reply, DialError::Handshake(error)),
        Direction::Inbound => {
            // Reported only if the event channel has room: a flood of bad connections must not keep
            // sockets (their inbound permits) or tasks waiting for the layer above to read.
            let event = TransportEvent::HandshakeFailed { remote, error };
            if let Err(mpsc::error::TrySendError::Full(_)) = ctx.events.try_send(event) {
                ctx.stats.handshake_events_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn finish_failed_dial(reply: Option<DialReply>, error: DialError) {
    if let Some(reply) = reply {
        let _ = reply.send(Err(error));
    }
}
