//! Using `dotray-codec` on its own: typed protobuf envelopes over a plain TCP socket.
//!
//! A project that wants dotray's wire format but not its network (a monitoring tool, a peer written in
//! another style, a test harness) depends on `dotray-codec` alone. This example starts a tiny echo
//! server on a loopback port, connects to it, sends a ping and a data frame, and prints what comes back.
//!
//! Run it with `cargo run --example codec_only`.

use anyhow::{Context, Result};
use bytes::Bytes;
use dotray_codec::{FrameCodec, proto};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

#[tokio::main]
async fn main() -> Result<()> {
    // Port 0: the operating system picks a free port; we read it back.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("echo server listening on {addr}");

    // The server: wrap each accepted socket in `Framed` and send every envelope straight back.
    let server = tokio::spawn(async move {
        let (socket, _) = listener.accept().await?;
        let mut frames = Framed::new(socket, FrameCodec::new());
        while let Some(envelope) = frames.next().await {
            // A decode error (garbage, oversize frame) ends the loop: the connection is dropped.
            let envelope = envelope?;
            frames.send(&envelope).await?;
        }
        Ok::<_, dotray_codec::CodecError>(())
    });

    // The client: same codec, the other end of the socket.
    let socket = TcpStream::connect(addr).await?;
    let mut frames = Framed::new(socket, FrameCodec::new());
    let outgoing = [
        proto::Envelope::from(proto::Ping { nonce: 1, sent_at_micros: 0 }),
        proto::Envelope::from(proto::Data {
            stream_ref: 1,
            seq: 1,
            hops: 0,
            payload: Bytes::from_static(b"hello over the dotray codec"),
        }),
    ];
    for envelope in &outgoing {
        frames.send(envelope).await?;
        let echoed = frames.next().await.context("server closed early")??;
        anyhow::ensure!(&echoed == envelope, "the echo differs from what was sent");
        match &echoed.body {
            Some(proto::Body::Data(data)) => {
                println!("echoed data #{}: {:?}", data.seq, String::from_utf8_lossy(&data.payload))
            }
            _ => println!("echoed {:?}", echoed.kind()),
        }
    }

    // Closing our side ends the server's loop cleanly.
    drop(frames);
    server.await??;
    println!("done");
    Ok(())
}
