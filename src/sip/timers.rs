//! RFC 3261 transaction timers, all derived from T1 (`$SIPPROFILE_SIP_T1_MS`,
//! default 500 ms) so tests can run retransmission and timeout paths quickly.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Timers {
    pub t1: Duration,
    pub t2: Duration,
}

impl Timers {
    pub fn from_env() -> Timers {
        let ms = std::env::var("SIPPROFILE_SIP_T1_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|v| (1..=60_000).contains(v))
            .unwrap_or(500);
        Timers::with_t1(Duration::from_millis(ms))
    }
    pub fn with_t1(t1: Duration) -> Timers {
        // RFC 3261: T2 = 4 s when T1 = 500 ms; scaled with T1.
        Timers { t1, t2: t1 * 8 }
    }
    /// Timer F: non-INVITE transaction timeout, 64·T1.
    pub fn timer_f(&self) -> Duration {
        self.t1 * 64
    }
    /// Next Timer E interval after `prev` (doubling, capped at T2).
    pub fn next_e(&self, prev: Duration) -> Duration {
        (prev * 2).min(self.t2)
    }
}

/// The longest a registration ever waits for anything (a retry, a refresh):
/// longer waits a peer asks for are cut to this. One day: a registrar that
/// wants more is treated as wanting a day, and the engine's deadlines stay
/// far from `Instant`'s range.
pub const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// Seconds a peer sent (Retry-After, Expires, Min-Expires…) as a wait,
/// clamped to [`MAX_WAIT`]: no number from the network can overflow a time.
pub fn peer_seconds(secs: u64) -> Duration {
    Duration::from_secs(secs.min(MAX_WAIT.as_secs()))
}

/// `now + after`, saturating: never panics, whatever `after` is.
pub fn deadline(now: std::time::Instant, after: Duration) -> std::time::Instant {
    now.checked_add(after.min(MAX_WAIT))
        .or_else(|| now.checked_add(MAX_WAIT))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn peer_numbers_never_overflow_a_deadline() {
        let now = Instant::now();
        assert_eq!(peer_seconds(u64::MAX), MAX_WAIT);
        assert_eq!(peer_seconds(30), Duration::from_secs(30));
        assert_eq!(deadline(now, Duration::MAX), now + MAX_WAIT);
        assert_eq!(
            deadline(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert_eq!(deadline(now, peer_seconds(u64::MAX)), now + MAX_WAIT);
    }
}
