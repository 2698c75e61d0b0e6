//! [`Config`]: every limit and timeout of the transport, with documented defaults.

use std::net::SocketAddr;
use std::time::Duration;

pub use dotray_codec::InvalidConfig;

/// Transport settings. Build with `Config::default()` and change what you need; [`Config::validate`]
/// runs when the transport starts.
///
/// ```
/// use std::time::Duration;
/// let config = dotray_transport::Config {
///     network_id: "my-chain-testnet".into(),
///     handshake_timeout: Duration::from_secs(2),
///     ..Default::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    /// Name of the network. Nodes refuse connections from nodes with another name, so separate networks
    /// on one host never merge by accident. Default `"dotray"`. At most [`MAX_NETWORK_ID_LEN`] bytes.
    pub network_id: String,
    /// The key of a private network. Default `None`: an open network, which any key pair may join.
    /// With a key, only nodes that have the same key can complete a handshake with this one; others
    /// are dropped after their first message, learning nothing (see [`crate::NetworkKey`]). Unlike
    /// `network_id`, which keeps honest networks apart, this keeps strangers out.
    pub network_key: Option<crate::NetworkKey>,
    /// Address advertised to peers as this node's listen address. Default `None`: the address the
    /// listener is bound to (an unspecified ip such as `0.0.0.0` tells peers to use the ip they see).
    pub advertise_addr: Option<SocketAddr>,
    /// Most connections accepted from others at once, handshakes in progress included. Beyond it new
    /// sockets are closed at once, so file descriptors and memory stay bounded under a connection flood.
    /// Default 64: the membership layer needs about 5 active and a few transient connections; the rest is
    /// headroom for joins arriving at a seed.
    pub max_inbound: usize,
    /// Most inbound connections from one remote address at once (an IPv6 address counts by its /64),
    /// handshakes included; beyond it new sockets from there are closed at once. Default 16: more
    /// than the membership layer keeps with any one node (one connection per pair of nodes), so only
    /// several nodes behind one address come near it, while one host can take at most a quarter of
    /// `max_inbound`.
    pub max_inbound_per_address: usize,
    /// Most connections this node dials at once (handshakes in progress included). Default 32.
    pub max_outbound: usize,
    /// Time from TCP connect to the end of the handshake (the Noise messages and both `Hello`s). A peer
    /// that says nothing, or dribbles bytes, is cut off after it. Default 5 s: a handshake is two round
    /// trips and a few hundred microseconds of cryptography, even on a slow link well under a second; a
    /// hung (SIGSTOPped) process whose kernel still accepts is caught here.
    pub handshake_timeout: Duration,
    /// Time allowed for the TCP connect of a dial. Default 5 s (well beyond a LAN or WAN SYN round trip,
    /// short enough that a dead seed is abandoned quickly).
    pub connect_timeout: Duration,
    /// A connection over which no complete frame arrives for this long is closed. Membership pings every
    /// active link each second, so a healthy link is never idle this long. Default 30 s.
    pub idle_timeout: Duration,
    /// A write that makes no progress for this long (the peer stopped reading) closes the connection.
    /// Default 10 s.
    pub write_timeout: Duration,
    /// Largest frame accepted or sent, prefix excluded. Default [`dotray_codec::DEFAULT_MAX_FRAME_LEN`]
    /// (4 MiB).
    pub max_frame_len: usize,
    /// Bytes of frames that may wait in one connection's outbound queue. A sender that finds the queue
    /// full gets [`crate::SendError::QueueFull`] (try path) or waits (async path): nothing is dropped
    /// silently and memory per peer stays bounded. Default 8 MiB: at loopback speed, milliseconds of
    /// data; two maximum-size frames.
    pub max_queue_bytes: usize,
    /// The writer gathers queued frames into one write of about this many bytes (and at most
    /// [`MAX_WRITE_SLICES`] queued slices: one per run of small frames copied together, one per larger
    /// frame, two per split frame), sealed into as few chunks as they fill. Default 256 KiB: large
    /// enough that small frames cost a fraction of a syscall and of an encryption call each, small
    /// enough not to delay the first frame.
    pub write_batch_bytes: usize,
    /// Capacity of the event channel to the layer above, in events. When it is full, readers wait
    /// (TCP back-pressure reaches the senders) instead of buffering without bound. An event carries
    /// the frames of one read (up to `max_read_buffer_len` bytes), so this bounds the bytes waiting
    /// here too. Default 8: up to ~2 MB of frames wait, enough to keep the layer above busy while
    /// connections read. Frames are slices of the read buffers, so every waiting event keeps a read
    /// buffer from being reused: with many more, a reader on a busy connection runs megabytes ahead of
    /// the layer above into freshly allocated (and page-faulted) memory instead of warm buffers, and a
    /// CPU-bound node buffers that much more before back-pressure reaches the publisher (figures in
    /// `docs/PERFORMANCE.md`).
    pub event_queue_len: usize,
    /// Room kept in each connection's read buffer for the next read, while the peer sends little.
    /// Default 64 KiB: one read syscall takes in dozens of small frames or one 64 KiB frame; the buffer
    /// grows up to one maximum frame when a larger frame arrives. Every connection's buffer is filled in
    /// turn, so this is resident memory per connection, for every connection of the node.
    pub read_buffer_len: usize,
    /// Largest room a connection's reads grow to while the peer keeps more queued than one read takes
    /// (each read that fills its room doubles it; a read of less than an eighth halves it, down to
    /// `read_buffer_len`). Default 256 KiB: a busy connection of small frames makes a third fewer read
    /// syscalls than with reads of 64 KiB. Only connections that carry a burst grow, and only while
    /// it lasts; at or below `read_buffer_len`, reads never grow.
    pub max_read_buffer_len: usize,
    /// The kernel's receive buffer of every connection (`SO_RCVBUF`; see the `socket` module), which
    /// bounds the bytes a peer can have in flight towards this node, and so the kernel memory one
    /// connection holds; a link's throughput is at most this much per round trip. Default `None`:
    /// the kernel's autotuning (on Linux up to `net.ipv4.tcp_rmem`'s maximum, megabytes). Capping it does not shorten the wait of a message behind a flood: the
    /// bytes wait in the sender's queue instead, where a full queue demotes the link and its messages
    /// take the slower repair path (measurements in `docs/PERFORMANCE.md`).
    pub socket_receive_buffer: Option<usize>,
    /// Most bytes a connection leaves unsent in the kernel before its writer waits
    /// (`TCP_NOTSENT_LOWAT`, Linux only; see the `socket` module); the rest waits in the
    /// connection's queue, counted against [`Config::max_queue_bytes`]. Default `None`: the kernel's
    /// send buffer fills (on Linux up to `net.ipv4.tcp_wmem`'s maximum), for the reason given at
    /// [`Config::socket_receive_buffer`].
    pub socket_unsent_max: Option<usize>,
    /// Length of the kernel's queue of connections waiting to be accepted (the `listen` backlog). A burst
    /// of connection attempts beyond it is dropped by the kernel before this node sees it. Default 1024
    /// (Linux caps it at `net.core.somaxconn`).
    pub listen_backlog: u32,
    /// Pause after a failed `accept` (for example when the process is out of file descriptors), so the
    /// accept loop does not spin. Default 100 ms.
    pub accept_error_backoff: Duration,
    /// Most node ids remembered by the ban list (bans in force, and past offenders remembered so that
    /// a repeat offence is banned longer). A new offender at the limit evicts the entry that expires
    /// first. `0` turns banning off: a peer that breaks the protocol is only disconnected. Default
    /// 1,024: an honest network has a handful of broken nodes at most (this node talks to about 5
    /// active and 30 backup peers), and each entry is a few hundred bytes, so the list stays under
    /// half a MiB even when flooded with fresh ids, each of which costs the sender a full handshake.
    pub max_bans: usize,
    /// How long a node that broke the protocol is refused after its first offence; each further
    /// offence doubles it, up to [`Config::max_ban_duration`]. Default 60 s: the membership layer
    /// redials a failed peer after 1 s, doubling to 60 s (its `backoff_initial` and `backoff_max`),
    /// so a minute outlasts its fastest reconnect loop, and a node banned for a one-off fault (a bug
    /// fixed by a restart, a rare race) is back within a minute.
    pub ban_duration: Duration,
    /// Longest ban, reached after repeated offences (60 s doubled six times is past it). Also how
    /// long a node must stay clean after a ban ends before its offences are forgotten. Default 1 h: a
    /// persistently broken node then costs a handshake an hour, and a node with a configured id that
    /// was fixed waits an hour at worst (a node with a random id, the default, is a new id after a
    /// restart and is not banned at all).
    pub max_ban_duration: Duration,
}

/// Longest accepted [`Config::network_id`], in bytes.
pub const MAX_NETWORK_ID_LEN: usize = 64;

/// Most queued slices gathered into one write (a frame is one slice, a split frame two).
pub const MAX_WRITE_SLICES: usize = 256;

impl Default for Config {
    fn default() -> Self {
        Self {
            network_id: "dotray".to_owned(),
            network_key: None,
            advertise_addr: None,
            max_inbound: 64,
            max_inbound_per_address: 16,
            max_outbound: 32,
            handshake_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(10),
            max_frame_len: dotray_codec::DEFAULT_MAX_FRAME_LEN,
            max_queue_bytes: 8 * 1024 * 1024,
            write_batch_bytes: 256 * 1024,
            event_queue_len: 8,
            read_buffer_len: 64 * 1024,
            max_read_buffer_len: 256 * 1024,
            socket_receive_buffer: None,
            socket_unsent_max: None,
            listen_backlog: 1024,
            accept_error_backoff: Duration::from_millis(100),
            max_bans: 1024,
            ban_duration: Duration::from_secs(60),
            max_ban_duration: Duration::from_secs(60 * 60),
        }
    }
}

impl Config {
    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        InvalidConfig::check_nonzero([
            ("max_inbound", self.max_inbound == 0),
            ("max_inbound_per_address", self.max_inbound_per_address == 0),
            ("max_outbound", self.max_outbound == 0),
            ("write_batch_bytes", self.write_batch_bytes == 0),
            ("event_queue_len", self.event_queue_len == 0),
            ("read_buffer_len", self.read_buffer_len == 0),
            ("listen_backlog", self.listen_backlog == 0),
            ("socket_receive_buffer", self.socket_receive_buffer == Some(0)),
            ("socket_unsent_max", self.socket_unsent_max == Some(0)),
            ("handshake_timeout", self.handshake_timeout.is_zero()),
            ("connect_timeout", self.connect_timeout.is_zero()),
            ("idle_timeout", self.idle_timeout.is_zero()),
            ("write_timeout", self.write_timeout.is_zero()),
            // `max_bans = 0` turns bans off; the ban period itself must be positive.
            ("ban_duration", self.ban_duration.is_zero()),
        ])?;
        let check = InvalidConfig::check;
        check(self.network_id.len() <= MAX_NETWORK_ID_LEN, "network_id is longer than 64 bytes")?;
        check(self.max_frame_len >= 1024, "max_frame_len must be at least 1 KiB")?;
        check(self.max_frame_len <= u32::MAX as usize, "max_frame_len must fit the 4-byte prefix")?;
        check(
            self.max_queue_bytes >= self.max_frame_len + dotray_codec::FRAME_HEADER_LEN,
            "max_queue_bytes must hold at least one maximum-size frame",
        )?;
        check(self.max_queue_bytes <= u32::MAX as usize, "max_queue_bytes must be below 4 GiB")?;
        check(self.max_ban_duration >= self.ban_duration, "max_ban_duration must be at least ban_duration")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn queue_must_hold_a_frame() {
        let config = Config { max_queue_bytes: 1000, ..Default::default() };
        assert!(matches!(config.validate(), Err(InvalidConfig::Inconsistent(_))));
    }

    #[test]
    fn a_zero_limit_is_named() {
        let config = Config { max_inbound: 0, ..Default::default() };
        assert_eq!(config.validate(), Err(InvalidConfig::Zero("max_inbound")));
        let config = Config { idle_timeout: Duration::ZERO, ..Default::default() };
        assert_eq!(config.validate(), Err(InvalidConfig::Zero("idle_timeout")));
    }

    #[test]
    fn ban_periods_must_be_consistent() {
        let zero = Config { ban_duration: Duration::ZERO, ..Default::default() };
        assert_eq!(zero.validate(), Err(InvalidConfig::Zero("ban_duration")));
        let shorter_max = Config { max_ban_duration: Duration::from_secs(1), ..Default::default() };
        assert!(shorter_max.validate().is_err());
        let off = Config { max_bans: 0, ..Default::default() };
        assert_eq!(off.validate(), Ok(()));
    }

    #[test]
    fn long_network_id_is_refused() {
        let config = Config { network_id: "x".repeat(65), ..Default::default() };
        assert!(config.validate().is_err());
    }
}
