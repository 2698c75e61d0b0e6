//! Waiting for a run to end: complete, stalled (no delivery for [`STALL_AFTER`]) or timed out
//! ([`TIME_LIMIT`] after the first publish). Polls the shared [`Tally`]; never waits unboundedly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::End;
use crate::spec::{STALL_AFTER, TIME_LIMIT};

/// How often the watcher looks at the counters.
const POLL: Duration = Duration::from_millis(2);

/// Waits until `counter` reaches `expected`, or the run stalls or times out.
pub async fn until_complete(counter: &AtomicU64, expected: u64) -> End {
    until(counter, expected, STALL_AFTER, TIME_LIMIT).await
}

/// As [`until_complete`] with explicit limits (used for warm-up rounds too).
pub async fn until(counter: &AtomicU64, expected: u64, stall_after: Duration, limit: Duration) -> End {
    let start = Instant::now();
    let mut last_value = counter.load(Ordering::Relaxed);
    let mut last_progress = start;
    loop {
        let value = counter.load(Ordering::Relaxed);
        if value >= expected {
            return End::Completed;
        }
        let now = Instant::now();
        if value != last_value {
            last_value = value;
            last_progress = now;
        } else if now - last_progress >= stall_after {
            return End::Stalled;
        }
        if now - start >= limit {
            return End::Timeout;
        }
        tokio::time::sleep(POLL).await;
    }
}
