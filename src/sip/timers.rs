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
