//! Time stamps at the start of a log line, as the loggers write them:
//! TAI64N (multilog, s6-log `t`, svlogd `-t`), ISO 8601 (s6-log `T`,
//! `journalctl -o short-iso`), svlogd `-tt` (`2026-11-29_22:00:00.12345`)
//! and syslog (`Nov 29 22:00:00 host ident[pid]: `, `journalctl -o short`).
//! Owns the calendar arithmetic; every time is Unix seconds, UTC.

/// 2^62: the TAI64 label of 1970-01-01 00:00:00 TAI.
const TAI64_EPOCH: u64 = 1 << 62;
/// TAI - UTC at the Unix epoch. daemontools' `tai64n` adds exactly this
/// to `time()` (no leap seconds) and `tai64nlocal` subtracts it again;
/// s6-log's 27 leap seconds more only move a line by half a minute.
const TAI_OFFSET: i64 = 10;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// What the stamp parser needs besides the line: the current time, for
/// the year syslog stamps leave out.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    pub now: i64,
}

/// A line split into its time (None: the line has no stamp) and the rest;
/// `Err` for a stamp that starts right but does not parse.
pub fn split(line: &str, ctx: Ctx) -> Result<(Option<i64>, &str), &'static str> {
    let b = line.as_bytes();
    if b.first() == Some(&b'@') {
        let (t, rest) = tai64n(line)?;
        // s6-log with both `t` and `T`: the ISO stamp follows
        return Ok(match iso(rest) {
            Some((_, rest)) => (Some(t), rest),
            None => (Some(t), rest),
        });
    }
    if b.len() >= 10 && b[4] == b'-' && b[..4].iter().all(u8::is_ascii_digit) {
        let (t, rest) = iso(line).ok_or("bad ISO time stamp")?;
        return Ok((Some(t), syslog_tag(rest)));
    }
    if let Some(m) = MONTHS.iter().position(|m| line.starts_with(m)) {
        if b.get(3) == Some(&b' ') {
            let (t, rest) = syslog(line, m, ctx).ok_or("bad syslog time stamp")?;
            return Ok((Some(t), syslog_tag(rest)));
        }
    }
    Ok((None, line))
}

/// `@` + 24 hex digits (seconds label, nanoseconds) + blanks.
fn tai64n(line: &str) -> Result<(i64, &str), &'static str> {
    let hex = line.get(1..25).ok_or("short TAI64N stamp")?;
    let secs = u64::from_str_radix(hex.get(..16).ok_or("short TAI64N stamp")?, 16)
        .map_err(|_| "bad TAI64N stamp")?;
    if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err("bad TAI64N stamp");
    }
    let rest = line.get(25..).ok_or("short TAI64N stamp")?;
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return Err("bad TAI64N stamp");
    }
    let label = secs
        .checked_sub(TAI64_EPOCH)
        .ok_or("TAI64N stamp before 1970")?;
    let unix = i64::try_from(label).map_err(|_| "TAI64N stamp out of range")? - TAI_OFFSET;
    Ok((unix, rest.trim_start_matches(' ')))
}

/// `YYYY-MM-DD` then `T`, `_` or a blank, `HH:MM:SS`, an optional
/// fraction, an optional zone (`Z`, `+HH:MM`, `+HHMM`; none means UTC,
/// as svlogd writes), then blanks.
fn iso(s: &str) -> Option<(i64, &str)> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let d = b.get(from..from + len)?;
        if !d.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(d).ok()?.parse().ok()
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b'_' | b' '))
    {
        return None;
    }
    let secs = clock(b.get(11..)?)?;
    let mut i = 19;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let (zone, used) = zone(b.get(i..)?)?;
    i += used;
    if !(i == b.len() || b.get(i) == Some(&b' ')) {
        return None;
    }
    let t = date(y, mo, d)? * 86400 + secs - zone;
    Some((t, s.get(i..)?.trim_start_matches(' ')))
}

/// `HH:MM:SS` at the start of `b`: seconds since midnight.
fn clock(b: &[u8]) -> Option<i64> {
    let two = |i: usize| -> Option<i64> {
        let d = b.get(i..i + 2)?;
        d.iter()
            .all(u8::is_ascii_digit)
            .then(|| i64::from(d[0] - b'0') * 10 + i64::from(d[1] - b'0'))
    };
    if b.get(2) != Some(&b':') || b.get(5) != Some(&b':') {
        return None;
    }
    let (h, m, s) = (two(0)?, two(3)?, two(6)?);
    (h < 24 && m < 60 && s < 61).then_some(h * 3600 + m * 60 + s)
}

/// An optional zone: its offset east of UTC in seconds, and its length.
fn zone(b: &[u8]) -> Option<(i64, usize)> {
    match b.first() {
        Some(b'Z') => Some((0, 1)),
        Some(&sign @ (b'+' | b'-')) => {
            let digits: Vec<u8> = b[1..]
                .iter()
                .take(5)
                .take_while(|c| c.is_ascii_digit() || **c == b':')
                .copied()
                .collect();
            let plain: Vec<u8> = digits.iter().filter(|c| **c != b':').copied().collect();
            if plain.len() != 4 {
                return None;
            }
            let n = |i: usize| i64::from(plain[i] - b'0');
            let off = (n(0) * 10 + n(1)) * 3600 + (n(2) * 10 + n(3)) * 60;
            Some((if sign == b'-' { -off } else { off }, 1 + digits.len()))
        }
        _ => Some((0, 0)),
    }
}

/// `Mon DD HH:MM:SS[.frac] ` (day space-padded). Syslog has no year: the
/// current one, or the one before when that would put the line more than a
/// day into the future (December's logs read in January).
fn syslog(s: &str, month: usize, ctx: Ctx) -> Option<(i64, &str)> {
    let b = s.as_bytes();
    let day: i64 = s.get(4..6)?.trim_start().parse().ok()?;
    if b.get(6) != Some(&b' ') {
        return None;
    }
    let secs = clock(b.get(7..)?)?;
    let mut i = 15;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    if b.get(i) != Some(&b' ') {
        return None;
    }
    let (year, _, _) = civil(ctx.now.div_euclid(86400));
    let mo = month as i64 + 1;
    let mut t = date(year, mo, day)? * 86400 + secs;
    if t > ctx.now + 86400 {
        t = date(year - 1, mo, day)? * 86400 + secs;
    }
    Some((t, s.get(i..)?.trim_start_matches(' ')))
}

/// After a syslog or journalctl stamp: `host ident[pid]: message` or
/// `host ident: message`; the message. Anything else stays as it is.
fn syslog_tag(rest: &str) -> &str {
    let Some((host, after)) = rest.split_once(' ') else {
        return rest;
    };
    if host.is_empty() || host.ends_with(':') {
        return rest;
    }
    match after.split_once(": ") {
        Some((ident, msg)) if !ident.is_empty() && !ident.contains(' ') => msg,
        _ => rest,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date; None when invalid.
pub fn date(y: i64, m: i64, d: i64) -> Option<i64> {
    if !(1..=12).contains(&m) || d < 1 || d > month_days(y, m) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146097 + doe - 719468)
}

fn month_days(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month, day) of a day number since 1970-01-01.
pub fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD HH:00` of the hour holding `t` (UTC).
pub fn hour_label(t: i64) -> String {
    let (y, m, d) = civil(t.div_euclid(86400));
    let h = t.rem_euclid(86400) / 3600;
    format!("{y:04}-{m:02}-{d:02} {h:02}:00")
}

/// `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn time_label(t: i64) -> String {
    let s = t.rem_euclid(86400);
    format!(
        "{}:{:02}:{:02}",
        &hour_label(t)[..13],
        (s % 3600) / 60,
        s % 60
    )
}

/// `--since`: `YYYY-MM-DD[ HH:MM[:SS]]` (or `T`), an ISO stamp with a
/// zone, `@UNIXTIME`, or an age `N[smhd]` before `now`.
pub fn parse_since(s: &str, now: i64) -> Option<i64> {
    if let Some(n) = s.strip_prefix('@') {
        return n.parse().ok();
    }
    if let Some(unit) = s.chars().last().filter(|c| "smhd".contains(*c)) {
        let n: i64 = s[..s.len() - 1].parse().ok()?;
        let mult = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => 86400,
        };
        return now.checked_sub(n.checked_mul(mult)?);
    }
    let full = match s.len() {
        10 => format!("{s} 00:00:00"),
        16 => format!("{s}:00"),
        _ => s.to_string(),
    };
    match iso(&full) {
        Some((t, "")) => Some(t),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: Ctx = Ctx { now: 1_796_000_000 }; // 2026-11-30

    #[test]
    fn calendar_round_trips() {
        assert_eq!(date(1970, 1, 1), Some(0));
        assert_eq!(date(2000, 3, 1), Some(11017));
        assert_eq!(civil(11017), (2000, 3, 1));
        for d in [-1000, 0, 59, 60, 10957, 20000, 30000] {
            let (y, m, dd) = civil(d);
            assert_eq!(date(y, m, dd), Some(d));
        }
        assert_eq!(date(2026, 2, 29), None);
        assert_eq!(date(2024, 2, 29).map(civil), Some((2024, 2, 29)));
    }

    #[test]
    fn tai64n_as_multilog_writes_it() {
        // tai64n of 2026-11-29 22:00:00 UTC: 2^62 + 10 + unix
        let unix = date(2026, 11, 29).unwrap() * 86400 + 22 * 3600;
        let line = format!(
            "@{:016x}{:08x} smtpd: pid=1",
            TAI64_EPOCH + 10 + unix as u64,
            5
        );
        assert_eq!(split(&line, CTX), Ok((Some(unix), "smtpd: pid=1")));
        assert!(split("@4000zz", CTX).is_err());
        assert!(split("@400000006565656500000000x", CTX).is_err());
        assert!(split("@000000006565656500000000 x", CTX).is_err());
    }

    #[test]
    fn iso_svlogd_and_zones() {
        let t = date(2026, 11, 29).unwrap() * 86400 + 22 * 3600;
        for l in [
            "2026-11-29_22:00:00.12345 smtpd: x",
            "2026-11-29T22:00:00Z smtpd: x",
            "2026-11-29 22:00:00.123456789  smtpd: x",
            "2026-11-29T23:00:00+0100 host relaygate-smtp[12]: smtpd: x",
            "2026-11-29T21:00:00-01:00 host tcpserver: smtpd: x",
        ] {
            assert_eq!(split(l, CTX), Ok((Some(t), "smtpd: x")), "{l}");
        }
        assert!(split("2026-13-29T22:00:00 x", CTX).is_err());
        assert!(split("2026-11-29T22:00 x", CTX).is_err());
    }

    #[test]
    fn syslog_year_and_tag() {
        let t = date(2026, 11, 29).unwrap() * 86400 + 22 * 3600;
        let l = "Nov 29 22:00:00 host relaygate-smtp[123]: smtpd: pid=1";
        assert_eq!(split(l, CTX), Ok((Some(t), "smtpd: pid=1")));
        let l = "Nov 29 22:00:00.123456 host deliver[9]: deliver: id=1";
        assert_eq!(split(l, CTX), Ok((Some(t), "deliver: id=1")));
        // December read at the end of November: last year's
        let l = "Dec  5 01:00:00 h x: y";
        let last = date(2025, 12, 5).unwrap() * 86400 + 3600;
        assert_eq!(split(l, CTX), Ok((Some(last), "y")));
        assert!(split("Nov 29 25:00:00 h x: y", CTX).is_err());
        assert_eq!(split("Novel idea", CTX), Ok((None, "Novel idea")));
    }

    #[test]
    fn since_forms() {
        let t = date(2026, 11, 29).unwrap() * 86400;
        assert_eq!(parse_since("2026-11-29", CTX.now), Some(t));
        assert_eq!(parse_since("2026-11-29 22:00", CTX.now), Some(t + 79200));
        assert_eq!(
            parse_since("2026-11-29T22:00:05Z", CTX.now),
            Some(t + 79205)
        );
        assert_eq!(parse_since("2h", CTX.now), Some(CTX.now - 7200));
        assert_eq!(parse_since("@5", CTX.now), Some(5));
        assert_eq!(parse_since("yesterday", CTX.now), None);
        assert_eq!(hour_label(t + 79205), "2026-11-29 22:00");
        assert_eq!(time_label(t + 79205), "2026-11-29 22:00:05");
    }
}
