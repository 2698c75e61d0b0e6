//! [`Direction`]: which side of a connection dialed the other.

/// Which side opened a connection: the one word for it in every layer (the transport's connection
/// events, membership's view of its links, the node query's answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The other node dialed this one.
    Inbound,
    /// This node dialed the other.
    Outbound,
}

impl Direction {
    /// True for [`Direction::Outbound`].
    pub fn is_outbound(self) -> bool {
        self == Self::Outbound
    }
}
