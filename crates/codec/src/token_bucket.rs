//! A token bucket: the budget every layer puts on what a peer can make this node do per second
//! (dials to addresses others named, streams a neighbour introduces, ...). Time is passed in, so
//! sans-IO cores and the simulator use it with their own clocks.

use std::time::Instant;

/// Tokens refilled at `rate` per second up to `burst`; one action takes one token.
///
/// ```
/// use std::time::{Duration, Instant};
/// use dotray_codec::TokenBucket;
///
/// let start = Instant::now();
/// let mut budget = TokenBucket::new(2, 3, start);
/// assert_eq!((0..10).filter(|_| budget.take(start)).count(), 3); // the burst
/// assert!(budget.take(start + Duration::from_millis(500))); // one more after half a second
/// ```
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        Self { tokens: f64::from(burst), rate: f64::from(rate), burst: f64::from(burst), last: now }
    }

    /// Takes a token if there is one at `now`. A `now` earlier than a previous call's counts as that
    /// call's time.
    pub fn take(&mut self, now: Instant) -> bool {
        self.take_n(1, now)
    }

    /// Takes `n` tokens if there are that many at `now` (none otherwise): a budget of bytes, say.
    pub fn take_n(&mut self, n: u32, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= f64::from(n) {
            self.tokens -= f64::from(n);
            true
        } else {
            false
        }
    }

    /// The whole tokens there are at `now`, taking none: how much an action may cost that is
    /// charged later, once its cost is known.
    pub fn available(&mut self, now: Instant) -> u32 {
        self.refill(now);
        // At most `burst`, itself a `u32`.
        self.tokens as u32
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.rate).min(self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut budget = TokenBucket::new(2, 8, t0);
        assert_eq!((0..20).filter(|_| budget.take(t0)).count(), 8);
        let later = t0 + Duration::from_secs(10);
        assert_eq!((0..100).filter(|_| budget.take(later)).count(), 8, "refilled up to the burst only");
        let mut steady = 0;
        for ms in (0..10_000).step_by(50) {
            steady += usize::from(budget.take(later + Duration::from_millis(ms)));
        }
        assert!((19..=21).contains(&steady), "2 per second over 10 s: {steady}");
    }

    #[test]
    fn available_counts_without_taking() {
        let t0 = Instant::now();
        let mut budget = TokenBucket::new(10, 100, t0);
        assert!(budget.take_n(95, t0));
        assert_eq!(budget.available(t0), 5);
        assert_eq!(budget.available(t0), 5, "looking takes nothing");
        assert_eq!(budget.available(t0 + Duration::from_secs(1)), 15);
        assert_eq!(budget.available(t0 + Duration::from_secs(60)), 100, "at most the burst");
    }

    #[test]
    fn many_at_once_or_none() {
        let t0 = Instant::now();
        let mut bytes = TokenBucket::new(1_000, 4_000, t0);
        assert!(bytes.take_n(3_000, t0));
        assert!(!bytes.take_n(1_500, t0), "only 1,000 left: nothing is taken");
        assert!(bytes.take_n(1_000, t0));
        assert!(bytes.take_n(500, t0 + Duration::from_millis(500)));
    }

    #[test]
    fn time_going_back_refills_nothing() {
        let t0 = Instant::now() + Duration::from_secs(5);
        let mut budget = TokenBucket::new(1, 1, t0);
        assert!(budget.take(t0));
        assert!(!budget.take(t0 - Duration::from_secs(5)));
        assert!(!budget.take(t0 + Duration::from_millis(900)));
        assert!(budget.take(t0 + Duration::from_millis(1_000)));
    }
}
