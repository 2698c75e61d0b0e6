//! A chat over dotray: every line typed on stdin is broadcast to every node; every line from others is
//! printed with its sender's address.
//!
//! ```text
//! cargo run --example chat -- 127.0.0.1:3000                    # the first node
//! cargo run --example chat -- 127.0.0.1:3001 127.0.0.1:3000     # a second one, joining the first
//! cargo run --example chat -- localhost:3002 localhost:3001     # host names work too
//! ```
//!
//! It uses the channel-style entry point, [`dotray::start_node`]: a sender for what to broadcast and a
//! receiver for what arrives. Ctrl-D (end of input) leaves the network gracefully.

use anyhow::{Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:3000".to_owned());
    let seed = args.next().map(|s| s.parse::<dotray::SeedAddr>()).transpose().context("seed host:port")?;

    let (send, mut recv, node) = dotray::start_node(listen, seed).await?;
    println!("chatting as {} on {} — type a line and press enter", node.id(), node.local_addr());

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
            // A line typed here goes to everyone.
            line = lines.next_line() => match line? {
                Some(line) if !line.trim().is_empty() => send.send(line.into()).await?,
                Some(_) => {}
                None => break, // end of input
            },
            // A line from someone else.
            message = recv.recv() => match message {
                Some(m) => {
                    let from = m.origin_addr.map(|a| a.to_string()).unwrap_or_else(|| m.origin.to_string());
                    println!("[{from}] {}", String::from_utf8_lossy(&m.payload));
                }
                None => break,
            },
        }
    }
    node.shutdown().await;
    Ok(())
}
