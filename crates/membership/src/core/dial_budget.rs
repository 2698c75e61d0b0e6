//! A token bucket for dials to addresses other nodes named: the origin of a peer-exchange walk that
//! ends here, the joiner at the end of a `ForwardJoin` walk.
//!
//! Those dials answer one message each, so without a budget a peer could turn one cheap message into
//! one connection attempt to any address of its choosing: a reflection (make many nodes connect to a
//! victim) or a port scan in this node's name. Honest walks end at a node a few times a minute, and
//! in bursts of a few when many nodes join at once; the bucket's burst covers those, and its rate
//! bounds what a hostile neighbour can make this node do.

use std::time::Instant;

/// Tokens for dials named by others, refilled at `rate` per second up to `burst`.
#[derive(Debug, Clone)]
pub(crate) struct DialBudget {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl DialBudget {
    pub(crate) fn new(rate: u32, burst: u32, now: Instant) -> Self {
        Self { tokens: f64::from(burst), rate: f64::from(rate), burst: f64::from(burst), last: now }
    }

    /// Takes a token if there is one at `now`.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut budget = DialBudget::new(2, 8, t0);
        assert_eq!((0..20).filter(|_| budget.take(t0)).count(), 8);
        let later = t0 + Duration::from_secs(10);
        assert_eq!((0..100).filter(|_| budget.take(later)).count(), 8, "refilled up to the burst only");
        let mut steady = 0;
        for ms in (0..10_000).step_by(50) {
            steady += usize::from(budget.take(later + Duration::from_millis(ms)));
        }
        assert!((19..=21).contains(&steady), "2 per second over 10 s: {steady}");
    }
}
