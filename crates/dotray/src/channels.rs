//! [`start_node`]: the channel-style entry point, for people coming from the Go library's
//! `StartNode(laddr, saddr, send, recv)`.

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{Message, Node, PeerAddr, SeedAddr, StartError};

/// Capacity of the two channels [`start_node`] returns. Broadcasting waits when the network is
/// saturated; receiving buffers this many messages before the node reports lag.
pub const CHANNEL_CAPACITY: usize = 1024;

/// Starts a node listening on `listen`, joining through `seed` (none: a new network), each an
/// `ip:port` or a `host:port` (see [`crate::NodeBuilder::listen`] and [`crate::NodeBuilder::seed`]),
/// and returns a
/// sender whose bytes are broadcast, a receiver of what the other nodes broadcast, and the node itself
/// (for queries and [`Node::shutdown`]).
///
/// The node keeps running while the sender, the receiver or the node handle is alive.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let (send, mut recv, _node) =
///     dotray::start_node("127.0.0.1:2001", Some("localhost:2000".into())).await?;
/// send.send("hello".into()).await?;
/// while let Some(message) = recv.recv().await {
///     println!("{:?}", message.payload);
/// }
/// # Ok(()) }
/// ```
pub async fn start_node(
    listen: impl Into<PeerAddr>,
    seed: Option<SeedAddr>,
) -> Result<(mpsc::Sender<Bytes>, mpsc::Receiver<Message>, Node), StartError> {
    let node = Node::builder().listen(listen).seeds(seed).start().await?;
    let (send_tx, mut send_rx) = mpsc::channel::<Bytes>(CHANNEL_CAPACITY);
    let (recv_tx, recv_rx) = mpsc::channel::<Message>(CHANNEL_CAPACITY);
    // Outgoing: until the application drops its sender or the node stops.
    let outgoing = node.clone();
    tokio::spawn(async move {
        while let Some(payload) = send_rx.recv().await {
            if outgoing.broadcast(payload).await.is_err() {
                break;
            }
        }
    });
    // Incoming: until the application drops its receiver or the node stops.
    let incoming = node.clone();
    tokio::spawn(async move {
        while let Some(message) = incoming.recv().await {
            if recv_tx.send(message).await.is_err() {
                break;
            }
        }
    });
    Ok((send_tx, recv_rx, node))
}
