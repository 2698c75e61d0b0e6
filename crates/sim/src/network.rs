//! The simulated network's parameters: latency, loss, connect timeout.

use std::time::Duration;

use rand::Rng;

/// How the simulated network behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    /// Shortest one-way latency of a message or connection step.
    pub latency_min: Duration,
    /// Longest one-way latency; each message draws uniformly between the two. Per connection and
    /// direction, messages still arrive in order (TCP).
    pub latency_max: Duration,
    /// Probability that a message is lost. TCP never loses a message on a live connection, so this is 0
    /// by default; set it to model a badly degraded path (pongs that never come).
    pub loss: f64,
    /// How long a dial to an unreachable address (across a partition, or a silently dead host) takes
    /// to fail. A dial to a crashed process on a live host is refused after one round trip instead.
    pub connect_timeout: Duration,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            latency_min: Duration::from_millis(1),
            latency_max: Duration::from_millis(20),
            loss: 0.0,
            connect_timeout: Duration::from_secs(3),
        }
    }
}

impl NetworkConfig {
    /// Draws one one-way latency.
    pub(crate) fn latency<R: Rng>(&self, rng: &mut R) -> Duration {
        if self.latency_max <= self.latency_min {
            return self.latency_min;
        }
        rng.random_range(self.latency_min..=self.latency_max)
    }

    /// Decides whether one message is lost.
    pub(crate) fn lost<R: Rng>(&self, rng: &mut R) -> bool {
        self.loss > 0.0 && rng.random_bool(self.loss.min(1.0))
    }
}
