//! The `Received:` line smtpd prepends, and the RFC 5322 date in it.

/// qmail's `safeput`: keep letters, digits and `.@%+/=:-`, anything else
/// becomes `?`, so a HELO argument cannot forge header syntax.
pub fn sanitize(field: &[u8]) -> String {
    field
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b".@%+/=:-_".contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

/// What goes into the line.
pub struct Facts<'a> {
    /// The HELO/EHLO argument.
    pub helo: &'a [u8],
    /// `TCPREMOTEHOST`, when known.
    pub host: Option<&'a str>,
    /// The client's address.
    pub ip: &'a str,
    /// Our name (`me`).
    pub me: &'a str,
    /// TLS is on.
    pub tls: bool,
    /// The authenticated user.
    pub auth_user: Option<&'a str>,
    /// `RELAYUSER`: the POP-before-SMTP grant's user (shown when there is
    /// no AUTH user).
    pub relay_user: Option<&'a str>,
    /// Unix time of the line.
    pub now: u64,
}

/// `Received: from HELO (HOST [IP])\n  by ME (relaygate) with PROTO; DATE\n`
/// in qmail's internal form (LF line ends).
pub fn line(f: &Facts) -> String {
    let proto = match (f.tls, f.auth_user.is_some()) {
        (false, false) => "ESMTP",
        (true, false) => "ESMTPS",
        (false, true) => "ESMTPA",
        (true, true) => "ESMTPSA",
    };
    let host = f.host.map(|h| sanitize(h.as_bytes()));
    let auth = match (f.auth_user, f.relay_user) {
        (Some(u), _) => format!(" (authenticated user {})", sanitize(u.as_bytes())),
        (None, Some(u)) if !u.is_empty() => {
            format!(" (relaytable user {})", sanitize(u.as_bytes()))
        }
        (None, _) => String::new(),
    };
    format!(
        "Received: from {} ({} [{}])\n  by {} (relaygate) with {}{}; {}\n",
        sanitize(f.helo),
        host.as_deref().unwrap_or("unknown"),
        sanitize(f.ip.as_bytes()),
        sanitize(f.me.as_bytes()),
        proto,
        auth,
        rfc5322_date(f.now)
    )
}

/// `Sun, 22 Nov 2026 21:36:59 +0000` for a Unix time.
pub fn rfc5322_date(t: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = t / 86_400;
    let secs = t % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(m as usize).saturating_sub(1) % 12],
        y,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Howard Hinnant's days-since-epoch to (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_795_383_419),
            "Sun, 22 Nov 2026 21:36:59 +0000"
        );
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn fields_are_sanitised() {
        let l = line(&Facts {
            helo: b"evil)\n\tby (x",
            host: Some("h.example"),
            ip: "192.0.2.7",
            me: "mx.example.org",
            tls: true,
            auth_user: Some("u@example.org"),
            relay_user: Some("ignored@example.org"),
            now: 0,
        });
        assert!(l.starts_with("Received: from evil???by??x (h.example [192.0.2.7])\n  by mx.example.org (relaygate) with ESMTPSA (authenticated user u@example.org); Thu,"), "{l}");
        assert_eq!(l.matches('\n').count(), 2);
    }

    #[test]
    fn relay_user_is_named() {
        let l = line(&Facts {
            helo: b"c",
            host: None,
            ip: "127.0.0.10",
            me: "mx.example.org",
            tls: false,
            auth_user: None,
            relay_user: Some("alice@example.org (x"),
            now: 0,
        });
        assert!(
            l.contains("with ESMTP (relaytable user alice@example.org??x);"),
            "{l}"
        );
    }
}
