//! Timers as data. The core asks for a timer with `Action::SetTimer { at, timer }`; the driver hands the
//! same value back to `handle_timer` when it fires. A timer never needs cancelling: the periodic ones
//! reschedule themselves, and [`Timer::Refill`] carries a generation number, so an old one that fires
//! after a newer one was scheduled is recognised and ignored.

/// A timer of the membership core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Ping every active peer and declare down those that missed too many pongs. Every
    /// `ping_interval`.
    Ping,
    /// Start a peer exchange with a random active peer. Every `shuffle_interval` (±25 %).
    Shuffle,
    /// Dial one peer outside the active view to heal partitions. Every `heal_interval` (±25 %).
    Heal,
    /// Expire transient connections, dial intents, exchanges and queries. Every `sweep_interval`.
    Sweep,
    /// One peer exchange right after the active view gained its first peer (a join or rejoin).
    /// One-shot; a late one only causes one extra exchange.
    JoinExchange,
    /// Try again to fill the active view once a backoff has passed.
    Refill {
        /// Only the most recently scheduled refill timer is acted on.
        generation: u64,
    },
}
