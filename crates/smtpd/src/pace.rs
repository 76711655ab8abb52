//! Slow clients cannot hold the service (issue 11 item 8): a deadline on
//! the whole connection (`timeoutsession`) and a minimum data rate while
//! the client is in the middle of a command or a message (`minrate`), on
//! top of `timeoutsmtpd`, which counts only silence (so one byte every few
//! seconds would otherwise keep a connection slot forever).
//!
//! `minrate BYTES SECONDS` is a credit of time, as Apache's mod_reqtimeout
//! and Postfix's smtpd_min_data_rate are: the client starts with SECONDS
//! and can bank at most SECONDS; every byte it sends earns SECONDS/BYTES
//! seconds; every second smtpd waits for it while it is mid-request (a
//! command line begun and not ended, or a message after `354`) costs one.
//! Time between commands (the client thinking, or smtpd working) costs
//! nothing: silence there is `timeoutsmtpd`'s. Out of credit, or past the
//! session deadline: `421 4.4.2`, logged with `rule=minrate` or
//! `rule=timeoutsession`.
//!
//! Pure arithmetic on instants the driver passes in: the driver reads the
//! clock once before and once after each read (vDSO, no system call), and
//! the bound goes into the poll timeout it already has, so no read costs
//! an extra system call.

use std::path::Path;
use std::time::{Duration, Instant};

use rgcore::control;
use rgcore::Failure;

/// `timeoutsession` when absent: half an hour, enough for a 10 MB message
/// at modem speed (56 kbit/s) with time to spare.
pub const DEFAULT_SESSION: u64 = 1800;
/// `minrate` when absent: 512 bytes in every 60 seconds mid-request, about
/// 8.5 bytes a second (a slowloris sending a byte every 4 s fails after
/// about a minute; a 9600 baud link sends 100 times faster).
pub const DEFAULT_MINRATE: (u64, u64) = (512, 60);

/// The limits of one connection; `None` turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `timeoutsession`.
    pub session: Option<Duration>,
    /// `minrate`: bytes per period.
    pub minrate: Option<(u64, Duration)>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            session: Some(Duration::from_secs(DEFAULT_SESSION)),
            minrate: Some((DEFAULT_MINRATE.0, Duration::from_secs(DEFAULT_MINRATE.1))),
        }
    }
}

/// Read `timeoutsession` and `minrate` from `dir` (three-state: absent is
/// the default, `0` is off, unreadable or unparseable is a temporary
/// failure).
pub fn load(dir: &Path) -> Result<Limits, Failure> {
    let mut l = Limits::default();
    match control::number(dir, "timeoutsession")? {
        None => {}
        Some(0) => l.session = None,
        Some(n) => l.session = Some(Duration::from_secs(n)),
    }
    if let Some(line) = control::first_line(dir, "minrate")? {
        l.minrate = parse_minrate(&line).ok_or_else(|| {
            Failure::temp("unable to parse control file minrate: not `BYTES SECONDS`")
        })?;
    }
    Ok(l)
}

/// `BYTES SECONDS` (both positive), or `0` (off). `None`: unparseable.
pub fn parse_minrate(line: &str) -> Option<Option<(u64, Duration)>> {
    let mut f = line.split_ascii_whitespace();
    let bytes = f.next()?.parse::<u64>().ok()?;
    if bytes == 0 {
        return Some(None);
    }
    let secs = f.next()?.parse::<u64>().ok()?;
    if secs == 0 || f.next().is_some() {
        return None;
    }
    Some(Some((bytes, Duration::from_secs(secs))))
}

/// Which bound limits a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `timeoutsmtpd`: silence.
    Silence,
    /// `timeoutsession`.
    Session,
    /// `minrate`.
    Minrate,
}

impl Bound {
    /// The rule logged and the words said to the client, when this bound
    /// is one of ours (silence is the session's usual timeout).
    pub fn expiry(self) -> Option<(&'static str, &'static str)> {
        match self {
            Bound::Silence => None,
            Bound::Session => Some(("timeoutsession", "session time limit reached")),
            Bound::Minrate => Some(("minrate", "client too slow")),
        }
    }
}

/// One connection's clock.
#[derive(Debug, Clone)]
pub struct Pace {
    limits: Limits,
    /// When the connection began.
    start: Instant,
    /// When the session ends (`timeoutsession`).
    end: Option<Instant>,
    /// The `minrate` credit left.
    credit: Duration,
}

impl Pace {
    /// A connection that began at `start`.
    pub fn new(limits: Limits, start: Instant) -> Pace {
        Pace {
            limits,
            start,
            end: limits.session.and_then(|d| start.checked_add(d)),
            credit: limits.minrate.map_or(Duration::ZERO, |(_, s)| s),
        }
    }

    /// The limits read from the control files, counted from the start.
    pub fn set_limits(&mut self, limits: Limits) {
        *self = Pace::new(limits, self.start);
    }

    /// How long the next read may wait at `now`, and which bound that is:
    /// `silence` (`timeoutsmtpd`), the session's end, and while `busy`
    /// (mid-request) the credit.
    pub fn wait(&self, silence: Duration, busy: bool, now: Instant) -> (Duration, Bound) {
        let mut w = (silence, Bound::Silence);
        if busy && self.limits.minrate.is_some() && self.credit < w.0 {
            w = (self.credit, Bound::Minrate);
        }
        if let Some(end) = self.end {
            let left = end.saturating_duration_since(now);
            if left <= w.0 {
                w = (left, Bound::Session);
            }
        }
        w
    }

    /// A read brought `n` bytes after waiting `waited`, `busy` or not.
    pub fn received(&mut self, n: usize, busy: bool, waited: Duration) {
        let Some((bytes, period)) = self.limits.minrate else {
            return;
        };
        if busy {
            self.credit = self.credit.saturating_sub(waited);
        }
        // n * period / bytes, without overflow for any read size
        let earned = period
            .checked_mul(u32::try_from(n).unwrap_or(u32::MAX))
            .map_or(period, |t| t / u32::try_from(bytes).unwrap_or(u32::MAX));
        self.credit = (self.credit + earned).min(period);
    }

    /// A bound for anything else that waits on the client (a TLS
    /// handshake): `limit`, the session's end, and one `minrate` period,
    /// since a handshake is mid-request from its first byte.
    pub fn handshake(&self, limit: Duration, now: Instant) -> (Duration, Bound) {
        let mut w = (limit, Bound::Silence);
        if let Some((_, period)) = self.limits.minrate {
            if period < w.0 {
                w = (period, Bound::Minrate);
            }
        }
        if let Some(end) = self.end {
            let left = end.saturating_duration_since(now);
            if left <= w.0 {
                w = (left, Bound::Session);
            }
        }
        w
    }

    /// Has the session's time run out at `now`?
    pub fn session_over(&self, now: Instant) -> bool {
        self.end.is_some_and(|e| now >= e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn pace(session: u64, bytes: u64, secs: u64, t0: Instant) -> Pace {
        Pace::new(
            Limits {
                session: Some(S(session)),
                minrate: Some((bytes, S(secs))),
            },
            t0,
        )
    }

    #[test]
    fn minrate_lines() {
        assert_eq!(parse_minrate("512 60"), Some(Some((512, S(60)))));
        assert_eq!(parse_minrate("0"), Some(None));
        assert_eq!(parse_minrate("0 60"), Some(None));
        assert_eq!(parse_minrate("512"), None);
        assert_eq!(parse_minrate("512 0"), None);
        assert_eq!(parse_minrate("512 60 1"), None);
        assert_eq!(parse_minrate("x 60"), None);
    }

    #[test]
    fn silence_between_commands_costs_no_credit() {
        let t0 = Instant::now();
        let mut p = pace(1800, 512, 60, t0);
        // idle: timeoutsmtpd decides
        assert_eq!(p.wait(S(1200), false, t0), (S(1200), Bound::Silence));
        p.received(10, false, S(500));
        assert_eq!(p.wait(S(1200), true, t0), (S(60), Bound::Minrate));
    }

    #[test]
    fn a_byte_every_four_seconds_runs_out_in_about_a_minute() {
        let t0 = Instant::now();
        let mut p = pace(1800, 512, 60, t0);
        let mut waited = Duration::ZERO;
        for _ in 0..100 {
            let (w, b) = p.wait(S(1200), true, t0);
            if w < S(4) {
                assert_eq!(b, Bound::Minrate);
                break;
            }
            p.received(1, true, S(4));
            waited += S(4);
        }
        assert!(waited >= S(56) && waited <= S(64), "{waited:?}");
    }

    #[test]
    fn a_steady_sender_never_runs_out_and_banks_at_most_the_period() {
        let t0 = Instant::now();
        let mut p = pace(1800, 512, 60, t0);
        for _ in 0..1000 {
            p.received(100, true, S(10)); // 10 bytes a second
        }
        assert!(p.wait(S(1200), true, t0).0 > S(50));
        p.received(1 << 30, true, Duration::ZERO);
        assert_eq!(p.wait(S(1200), true, t0), (S(60), Bound::Minrate));
    }

    #[test]
    fn the_session_deadline_bounds_every_wait() {
        let t0 = Instant::now();
        let p = pace(5, 512, 60, t0);
        assert_eq!(p.wait(S(1200), false, t0), (S(5), Bound::Session));
        assert_eq!(p.wait(S(1200), true, t0 + S(3)), (S(2), Bound::Session));
        assert_eq!(p.wait(S(1200), true, t0 + S(9)), (S(0), Bound::Session));
        assert!(p.session_over(t0 + S(5)));
        assert_eq!(p.handshake(S(1200), t0 + S(1)), (S(4), Bound::Session));
    }

    #[test]
    fn off_means_off() {
        let t0 = Instant::now();
        let mut p = Pace::new(
            Limits {
                session: None,
                minrate: None,
            },
            t0,
        );
        p.received(1, true, S(100_000));
        assert_eq!(p.wait(S(1200), true, t0), (S(1200), Bound::Silence));
        assert_eq!(p.handshake(S(1200), t0), (S(1200), Bound::Silence));
    }
}
