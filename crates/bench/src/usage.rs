//! The process's CPU time and peak resident memory, from `getrusage(2)`.
//!
//! Each run of `cargo xtask bench` is its own process, so the peak is that run's.

/// CPU time (user + system) and peak RSS of this process so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// User + system CPU seconds.
    pub cpu_s: f64,
    /// Peak resident set size, MB (10^6 bytes).
    pub peak_rss_mb: f64,
}

/// Reads this process's usage.
pub fn now() -> Usage {
    let usage = rusage::self_usage();
    let seconds = |t: (i64, i64)| t.0 as f64 + t.1 as f64 / 1e6;
    Usage {
        cpu_s: seconds(usage.user) + seconds(usage.system),
        // ru_maxrss is in KiB on Linux.
        peak_rss_mb: usage.max_rss_kib as f64 * 1024.0 / 1e6,
    }
}

#[allow(unsafe_code)]
mod rusage {
    //! The one unsafe call of the benchmark, kept to itself.

    pub(super) struct Raw {
        pub(super) user: (i64, i64),
        pub(super) system: (i64, i64),
        pub(super) max_rss_kib: i64,
    }

    pub(super) fn self_usage() -> Raw {
        // SAFETY: getrusage writes a `struct rusage` into the zeroed value we own; RUSAGE_SELF is valid.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
        if rc != 0 {
            return Raw { user: (0, 0), system: (0, 0), max_rss_kib: 0 };
        }
        Raw {
            user: (usage.ru_utime.tv_sec, usage.ru_utime.tv_usec),
            system: (usage.ru_stime.tv_sec, usage.ru_stime.tv_usec),
            max_rss_kib: usage.ru_maxrss,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_time_grows_with_work_and_rss_is_positive() {
        let before = super::now();
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = super::now();
        assert!(after.cpu_s > before.cpu_s, "{before:?} -> {after:?}");
        assert!(after.peak_rss_mb > 0.5, "{after:?}");
    }
}
