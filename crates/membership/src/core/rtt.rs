//! Smoothed round-trip time, computed like TCP's SRTT (RFC 6298, section 2).
//!
//! Each pong gives one sample `R`. The first sample sets `SRTT = R` and `RTTVAR = R / 2`; later ones
//! update `RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|` and `SRTT = 7/8 SRTT + 1/8 R`. The gains 1/8 and 1/4 are
//! the RFC's: one outlier moves the estimate by an eighth, while a lasting change is tracked within a few
//! samples.

use std::time::Duration;

/// Smoothed round-trip time of one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
}

impl RttEstimator {
    /// An estimator with no sample yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one measured round trip and returns the new smoothed value.
    pub fn update(&mut self, sample: Duration) -> Duration {
        let srtt = match self.srtt {
            None => {
                self.rttvar = sample / 2;
                sample
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(sample);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                (srtt * 7 + sample) / 8
            }
        };
        self.srtt = Some(srtt);
        srtt
    }

    /// The smoothed round-trip time, if any sample arrived.
    pub fn smoothed(&self) -> Option<Duration> {
        self.srtt
    }

    /// The round-trip time variation (RFC 6298 RTTVAR).
    pub fn variation(&self) -> Duration {
        self.rttvar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_sets_the_estimate_then_moves_by_an_eighth() {
        let mut rtt = RttEstimator::new();
        assert_eq!(rtt.smoothed(), None);
        assert_eq!(rtt.update(Duration::from_millis(80)), Duration::from_millis(80));
        assert_eq!(rtt.variation(), Duration::from_millis(40));
        // 7/8 * 80 + 1/8 * 160 = 90.
        assert_eq!(rtt.update(Duration::from_millis(160)), Duration::from_millis(90));
        // 3/4 * 40 + 1/4 * |80 - 160| = 50.
        assert_eq!(rtt.variation(), Duration::from_millis(50));
    }

    #[test]
    fn converges_to_a_lasting_change() {
        let mut rtt = RttEstimator::new();
        rtt.update(Duration::from_millis(10));
        for _ in 0..50 {
            rtt.update(Duration::from_millis(100));
        }
        let s = rtt.smoothed().unwrap();
        assert!(s > Duration::from_millis(99) && s <= Duration::from_millis(100), "{s:?}");
    }
}
