//! The retry schedule: after the n-th temporary failure the next attempt
//! is due min(60 * 2^(n-1), 3600) seconds later (SPEC: from 60 s to at most
//! 3600 s), and `queuelifetime` turns a temporary failure of an old message
//! into a permanent one.

/// First retry delay, seconds.
pub const FIRST_RETRY: u64 = 60;
/// Longest retry delay, seconds.
pub const MAX_RETRY: u64 = 3600;
/// Default `queuelifetime`, seconds (a week).
pub const QUEUE_LIFETIME: u64 = 604_800;

/// Seconds to wait after `attempts` attempts (the last one failed
/// temporarily); `attempts` counts that failed attempt, so 1 gives 60.
pub fn backoff(attempts: u32) -> u64 {
    let shift = attempts.saturating_sub(1).min(16);
    (FIRST_RETRY << shift).min(MAX_RETRY)
}

/// Has a message queued at `created` outlived `lifetime` at `now`?
pub fn expired(created: u64, now: u64, lifetime: u64) -> bool {
    now.saturating_sub(created) >= lifetime
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_60_to_3600() {
        let got: Vec<u64> = (1..=9).map(backoff).collect();
        assert_eq!(got, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(backoff(0), 60);
        assert_eq!(backoff(u32::MAX), 3600);
    }

    #[test]
    fn lifetime_boundary() {
        assert!(!expired(1000, 1000 + 599, 600));
        assert!(expired(1000, 1000 + 600, 600));
        // a clock that went back never expires a message
        assert!(!expired(5000, 4000, 600));
    }
}
