//! Direct-message flood: many connections hand the target direct messages as fast as it reads them,
//! each frame padded to the frame limit.
//!
//! A direct message is accepted from any connection, even one that never joined, and waits in the
//! application's event queue until read. Each frame here carries a direct message of the longest
//! length allowed plus an unknown field that fills the frame up to the 4 MiB limit: a decoder skips
//! unknown fields, so a node that keeps the payload as a slice of its read buffer keeps the whole
//! 4 MiB frame alive with it. The honest nodes must keep their memory and deliveries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use dotray_codec::{DEFAULT_MAX_FRAME_LEN, FRAME_HEADER_LEN, OutFrame, encode_frame, proto};
use tokio::time::Instant;

use crate::sybil::Sybil;
use crate::{Report, Result};

/// Connections flooding the target at once.
const CONNECTIONS: usize = 16;
/// Payload of each direct message: the default `max_direct_len`.
const PAYLOAD: usize = 64 << 10;
/// A field number no envelope uses: decoders skip it.
const UNKNOWN_FIELD: u64 = 2_047;
/// Pause before a closed connection is replaced by a new identity.
const RECONNECT_DELAY: Duration = Duration::from_millis(200);

/// Runs the attack against `target` until `deadline`.
pub async fn run(target: SocketAddr, deadline: Instant, report: &mut Report) -> Result<()> {
    let frame = padded_direct()?;
    report.add("frame_bytes", frame.len() as u64);
    let sent = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (frame, sent, closed) = (frame.clone(), sent.clone(), closed.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let Ok(mut sybil) = Sybil::connect(target).await else {
                    tokio::time::sleep(RECONNECT_DELAY).await;
                    continue;
                };
                while Instant::now() < deadline {
                    if sybil.serve_pending() {
                        closed.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    // A full queue (the target reads no faster) waits a little, like a real sender.
                    match sybil.send_frame(&OutFrame::from(frame.clone())) {
                        Ok(()) => {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                    tokio::task::yield_now().await;
                }
                sybil.close().await;
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    report.add("frames_sent", sent.load(Ordering::Relaxed));
    report.add("closed_by_target", closed.load(Ordering::Relaxed));
    Ok(())
}

/// One frame: a `Direct` of `PAYLOAD` bytes, padded with an unknown field to just under the default
/// frame limit.
fn padded_direct() -> Result<Bytes> {
    let envelope = proto::Envelope::from(proto::Direct { payload: Bytes::from(vec![7u8; PAYLOAD]) });
    let frame = encode_frame(&envelope, DEFAULT_MAX_FRAME_LEN)?;
    // Tag (2 bytes), length (4 bytes), padding: the whole frame at most the limit.
    let padding = DEFAULT_MAX_FRAME_LEN - (frame.len() - FRAME_HEADER_LEN) - 6;
    let mut out = BytesMut::with_capacity(DEFAULT_MAX_FRAME_LEN + FRAME_HEADER_LEN);
    out.put_u32(0);
    out.put_slice(&frame[FRAME_HEADER_LEN..]);
    put_varint(&mut out, (UNKNOWN_FIELD << 3) | 2);
    put_varint(&mut out, padding as u64);
    // Not protobuf inside (an endless varint): the list-bound walk of the codec stops at once.
    out.put_bytes(0xff, padding);
    let len = u32::try_from(out.len() - FRAME_HEADER_LEN)?;
    out[..FRAME_HEADER_LEN].copy_from_slice(&len.to_be_bytes());
    Ok(out.freeze())
}

/// Protobuf's base-128 varint.
fn put_varint(out: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use dotray_codec::FrameCodec;
    use tokio_util::codec::Decoder;

    #[test]
    fn the_padded_frame_decodes_to_the_direct_message_alone() {
        let frame = padded_direct().expect("frame");
        assert!(frame.len() <= DEFAULT_MAX_FRAME_LEN + FRAME_HEADER_LEN);
        assert!(frame.len() > DEFAULT_MAX_FRAME_LEN - 64, "padded to the limit: {}", frame.len());
        let mut buf = BytesMut::from(&frame[..]);
        let envelope = FrameCodec::new().decode(&mut buf).expect("decodes").expect("whole frame");
        match envelope.body {
            Some(proto::envelope::Body::Direct(direct)) => assert_eq!(direct.payload.len(), PAYLOAD),
            other => panic!("not a direct message: {other:?}"),
        }
    }
}
