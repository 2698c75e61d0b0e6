//! Typed errors of the facade.

/// Starting a node failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The transport could not start (bad config, or the listen address is taken).
    #[error(transparent)]
    Transport(#[from] dotray_transport::StartError),
    /// The key file or network key file cannot be used.
    #[error(transparent)]
    KeyFile(#[from] crate::KeyFileError),
    /// The listen address or a seed's name does not resolve.
    #[error(transparent)]
    Resolve(#[from] dotray_node::ResolveError),
    /// Every seed refused this node (see `NodeBuilder::fail_if_refused`): the address of each and why.
    #[error("every seed refused this node: {}", describe_refusals(.0))]
    Refused(Vec<(std::net::SocketAddr, dotray_node::core::Refusal)>),
    /// The node stopped while starting.
    #[error("the node stopped while starting")]
    Stopped,
    /// A protocol or driver setting is invalid.
    #[error(transparent)]
    Config(#[from] dotray_node::core::InvalidNodeConfig),
    /// The data directory cannot be used: in use by another process, damaged, foreign, or not
    /// readable or writable (see [`crate::NodeBuilder::data_dir`]).
    #[error(transparent)]
    DataDir(#[from] dotray_store::StoreError),
    /// The key given to the builder is not the one stored in its data directory: starting would make
    /// the directory's stream and the node's id disagree.
    #[error("the data directory holds the key of node {stored:?}, not of the given {given:?}")]
    WrongKey {
        /// The node id of the stored key.
        stored: dotray_codec::NodeId,
        /// The node id of the key given.
        given: dotray_codec::NodeId,
    },
}

fn describe_refusals(refusals: &[(std::net::SocketAddr, dotray_node::core::Refusal)]) -> String {
    refusals.iter().map(|(addr, reason)| format!("{addr} ({reason})")).collect::<Vec<_>>().join(", ")
}

/// An operation on a running node failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The node has shut down.
    #[error("the node has shut down")]
    Stopped,
    /// `broadcast`: the message is longer than the node's `max_message_len` (see
    /// [`crate::NodeBuilder::max_message_len`]). Nothing was numbered or sent: the next broadcast
    /// goes out as if this one had not been tried. `send_to`: the message is longer than the node's
    /// `max_direct_len` (`dotray_node::core::Config::max_direct_len`); nothing was sent.
    #[error(transparent)]
    TooLong(#[from] dotray_node::core::MessageTooLong),
    /// `send_to`: the node is not connected and its address is unknown.
    #[error("unknown node")]
    UnknownNode,
    /// `send_to`: dialing the node failed.
    #[error("cannot reach the node: {0}")]
    Dial(#[from] dotray_transport::DialError),
    /// `send_to`: the message could not be queued.
    #[error("cannot send: {0}")]
    Send(#[from] dotray_transport::SendError),
    /// A remote node query failed.
    #[error(transparent)]
    Query(#[from] dotray_node::RemoteQueryError),
    /// `ack`: the position could not be stored (see [`crate::Node::ack`]).
    #[error("{0}")]
    Ack(String),
    /// `replay`: the node keeps no history, or it could not be read (see [`crate::Node::replay`]).
    #[error(transparent)]
    Replay(#[from] dotray_node::ReplayError),
}

impl From<dotray_node::AckError> for NodeError {
    fn from(error: dotray_node::AckError) -> Self {
        match error {
            dotray_node::AckError::DataDir(error) => Self::Ack(error),
            _ => Self::Stopped,
        }
    }
}

impl From<dotray_node::BroadcastError> for NodeError {
    fn from(error: dotray_node::BroadcastError) -> Self {
        match error {
            dotray_node::BroadcastError::TooLong(too_long) => Self::TooLong(too_long),
            _ => Self::Stopped,
        }
    }
}

impl From<dotray_node::Stopped> for NodeError {
    fn from(_: dotray_node::Stopped) -> Self {
        Self::Stopped
    }
}
