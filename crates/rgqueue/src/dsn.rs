//! Delivery status notifications (RFC 3464): the bounce `deliver` writes into
//! the spool when recipients fail permanently.
//!
//! Owns the DSN's bytes and nothing else: [`build`] is a pure function from a
//! [`Bounce`] to a `multipart/report` message in qmail's internal form (LF
//! line ends); the caller queues it. Everything we generate is 7-bit
//! printable ASCII: addresses and replies come from the network, so each is
//! cleaned to printable ASCII and folded before it reaches a header, and no
//! CR or LF of theirs can start a header of ours. Only the embedded original
//! keeps its bytes.

use rgcore::diag::printable;
use rgsmtp::received::rfc5322_date;

/// The largest original sent whole (`message/rfc822`); a larger one is
/// returned as its header block only (`text/rfc822-headers`).
pub const WHOLE_LIMIT: usize = 64 * 1024;

/// Header lines are folded before this column where a space allows.
const FOLD_AT: usize = 76;
/// A word longer than this is cut, so no line reaches RFC 5322's 998.
const LONGEST_WORD: usize = 900;
/// At most this much of a spool id goes into the boundary (RFC 2046: 70).
const ID_IN_BOUNDARY: usize = 32;

/// One recipient that failed permanently.
#[derive(Debug, Clone)]
pub struct Failed<'a> {
    /// The recipient address as queued.
    pub rcpt: &'a [u8],
    /// The next hop's reply (or our own reason), printable ASCII.
    pub reply: &'a str,
    /// The next hop's name, `-` when none was reached.
    pub host: &'a str,
}

/// Everything a DSN says.
#[derive(Debug, Clone)]
pub struct Bounce<'a> {
    /// This host's name (`me`): the Reporting-MTA.
    pub me: &'a str,
    /// The From: address, `bouncefrom@me` (`MAILER-DAEMON@me`).
    pub from: &'a str,
    /// The To: address: the original envelope sender (or doublebounceto).
    pub to: &'a [u8],
    /// The original message's spool id.
    pub id: &'a str,
    /// The original envelope sender (empty for `<>`).
    pub original_sender: &'a [u8],
    /// When the original message was queued (UNIX seconds).
    pub arrival: u64,
    /// Now (UNIX seconds): the Date: header.
    pub now: u64,
    /// The failed recipients (at least one).
    pub failed: &'a [Failed<'a>],
    /// The original message (qmail's internal form: LF line ends).
    pub original: &'a [u8],
}

/// The DSN message in qmail's internal form (LF line ends), headers first.
pub fn build(b: &Bounce) -> Vec<u8> {
    let text = notification(b);
    let report = delivery_status(b);
    let (kind, original) = original_part(b.original);
    let boundary = boundary(b, &[text.as_bytes(), report.as_bytes(), original]);
    // message/rfc822 allows only 7bit/8bit, and a multipart may not claim
    // less than its parts: 8-bit bytes in the original mark both.
    let eight = !original.is_ascii();
    let mut out = top_headers(b, &boundary, eight).into_bytes();
    out.extend_from_slice(b"\nThis is a MIME-encapsulated message.\n");
    part(
        &mut out,
        &boundary,
        "Notification",
        "text/plain; charset=us-ascii",
        false,
    );
    out.extend_from_slice(text.as_bytes());
    part(
        &mut out,
        &boundary,
        "Delivery report",
        "message/delivery-status",
        false,
    );
    out.extend_from_slice(report.as_bytes());
    part(
        &mut out,
        &boundary,
        kind.description(),
        kind.content_type(),
        eight,
    );
    out.extend_from_slice(original);
    out.extend_from_slice(format!("\n--{boundary}--\n").as_bytes());
    out
}

/// The RFC 3463 status for a failed recipient: the reply's enhanced code
/// with its class made permanent (a `queuelifetime` expiry quotes `4.4.7`,
/// but Action: failed needs 5.4.7), else `5.0.0`.
pub fn status_of(reply: &str) -> String {
    match enhanced_code(reply) {
        Some((2, ..)) | None => "5.0.0".to_string(),
        Some((_, subject, detail)) => format!("5.{subject}.{detail}"),
    }
}

/// The enhanced status code (class, subject, detail) at the start of a
/// reply, after its basic code if any: `550 5.1.1 ...`, `550-5.1.1 ...`,
/// `4.4.7 ...`. `None` when it has none.
pub fn enhanced_code(reply: &str) -> Option<(u8, u16, u16)> {
    let rest = skip_basic_code(reply.trim_start());
    let word = rest.split(' ').next()?;
    let mut fields = word.split('.');
    let class = match fields.next()? {
        "2" => 2,
        "4" => 4,
        "5" => 5,
        _ => return None,
    };
    let subject = code_number(fields.next()?)?;
    let detail = code_number(fields.next()?)?;
    match fields.next() {
        Some(_) => None,
        None => Some((class, subject, detail)),
    }
}

fn skip_basic_code(reply: &str) -> &str {
    let b = reply.as_bytes();
    let basic =
        b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && matches!(b[3], b' ' | b'-');
    if basic {
        reply.get(4..).unwrap_or("")
    } else {
        reply
    }
}

fn code_number(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// How the original comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Whole,
    Headers,
}

impl Kind {
    fn content_type(self) -> &'static str {
        match self {
            Kind::Whole => "message/rfc822",
            Kind::Headers => "text/rfc822-headers",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Kind::Whole => "Undelivered Message",
            Kind::Headers => "Undelivered Message Headers",
        }
    }
}

/// The whole original when small enough, else its header block (cut at a
/// header line's start if even that is too large).
fn original_part(original: &[u8]) -> (Kind, &[u8]) {
    if original.len() <= WHOLE_LIMIT {
        return (Kind::Whole, original);
    }
    // a message starting with an empty line has no header block
    let end = if original.first() == Some(&b'\n') {
        0
    } else {
        match original.windows(2).position(|w| w == b"\n\n") {
            Some(i) => i + 1,
            None => original.len(),
        }
    };
    (Kind::Headers, cap_headers(&original[..end]))
}

fn cap_headers(headers: &[u8]) -> &[u8] {
    if headers.len() <= WHOLE_LIMIT {
        return headers;
    }
    // the last line start within the limit that begins a new field, so no
    // field is returned cut in the middle
    let cut = (1..=WHOLE_LIMIT)
        .rev()
        .find(|&i| headers[i - 1] == b'\n' && !matches!(headers.get(i), Some(b' ' | b'\t')));
    &headers[..cut.unwrap_or(0)]
}

/// A boundary that occurs in none of the parts: derived from the id and the
/// time, with a counter bumped until no part contains it.
fn boundary(b: &Bounce, parts: &[&[u8]]) -> String {
    let id: String = token(b.id).chars().take(ID_IN_BOUNDARY).collect();
    (0u64..)
        .map(|n| format!("=_rg.{id}.{}.{n}", b.now))
        .find(|cand| !parts.iter().any(|p| contains(p, cand.as_bytes())))
        .unwrap_or_default()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn top_headers(b: &Bounce, boundary: &str, eight: bool) -> String {
    let subject = if b.original_sender.is_empty() {
        "Postmaster Copy: Undelivered Mail"
    } else {
        "Undelivered Mail Returned to Sender"
    };
    let mut h = String::new();
    h += &field("Date", &rfc5322_date(b.now));
    h += &field("From", &format!("Mail Delivery System <{}>", clean(b.from)));
    h += &field("To", &recipient_list(b.to));
    h += &field("Subject", subject);
    h += &field("Message-ID", &message_id(b));
    h += &field("Auto-Submitted", "auto-replied");
    h += &field("MIME-Version", "1.0");
    let ct = format!("multipart/report; report-type=delivery-status; boundary=\"{boundary}\"");
    h += &field("Content-Type", &ct);
    if eight {
        h += &field("Content-Transfer-Encoding", "8bit");
    }
    h
}

fn recipient_list(to: &[u8]) -> String {
    if to.is_empty() {
        "undisclosed-recipients:;".to_string()
    } else {
        format!("<{}>", clean_bytes(to))
    }
}

/// `<ID.NOW.HASH.dsn@ME>`: the hash of the failed recipients tells apart
/// two DSNs of one message written in the same second.
fn message_id(b: &Bounce) -> String {
    let mut domain: String =
        b.me.chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
            .collect();
    if domain.is_empty() {
        domain = "localhost".to_string();
    }
    let hash = b
        .failed
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, f| fnv(fnv(h, f.rcpt), b"\0"));
    format!(
        "<{}.{}.{:08x}.dsn@{domain}>",
        token(b.id),
        b.now,
        hash as u32
    )
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &c in bytes {
        h = (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// The id reduced to characters safe in a Message-ID and a boundary.
fn token(id: &str) -> String {
    let t: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    if t.is_empty() {
        "dsn".to_string()
    } else {
        t
    }
}

fn part(out: &mut Vec<u8>, boundary: &str, description: &str, ctype: &str, eight: bool) {
    out.extend_from_slice(format!("\n--{boundary}\n").as_bytes());
    out.extend_from_slice(field("Content-Description", description).as_bytes());
    out.extend_from_slice(field("Content-Type", ctype).as_bytes());
    if eight {
        out.extend_from_slice(field("Content-Transfer-Encoding", "8bit").as_bytes());
    }
    out.push(b'\n');
}

/// The human part, in the qmail-send and Postfix tradition.
fn notification(b: &Bounce) -> String {
    let mut t = format!("This is the mail system at host {}.\n\n", clean(b.me));
    t += &wrap(
        "I'm sorry to have to inform you that your message could not be delivered to \
         one or more recipients. This is a permanent error; I've given up. The \
         recipients and the replies that decided are below; your message is attached.",
        0,
        "",
    );
    t += "\n\n";
    if b.original_sender.is_empty() {
        t += &wrap(
            "The message had a null envelope sender (it was itself a bounce), so this \
             report goes to the postmaster instead.",
            0,
            "",
        );
        t += "\n\n";
    }
    t += &format!("The message's queue id is {}.\n", clean(b.id));
    for f in b.failed {
        t += &format!("\n{}\n", wrap(&explanation(f), 0, "    "));
    }
    t
}

fn explanation(f: &Failed) -> String {
    let rcpt = clean_bytes(f.rcpt);
    let reply = clean(f.reply);
    match f.host {
        "-" | "" => format!("<{rcpt}>: {reply}"),
        host => format!("<{rcpt}>: host {} said: {reply}", clean(host)),
    }
}

/// The message/delivery-status body: the per-message fields, then one
/// group per recipient, each group ending in a blank line.
fn delivery_status(b: &Bounce) -> String {
    let mut s = field("Reporting-MTA", &format!("dns; {}", clean(b.me)));
    s += &field("X-Relaygate-Queue-ID", &clean(b.id));
    if !b.original_sender.is_empty() {
        s += &field(
            "X-Relaygate-Sender",
            &format!("rfc822; {}", clean_bytes(b.original_sender)),
        );
    }
    s += &field("Arrival-Date", &rfc5322_date(b.arrival));
    for f in b.failed {
        s.push('\n');
        s += &field(
            "Final-Recipient",
            &format!("rfc822; {}", clean_bytes(f.rcpt)),
        );
        s += &field("Action", "failed");
        s += &field("Status", &status_of(f.reply));
        if !matches!(f.host, "-" | "") {
            s += &field("Remote-MTA", &format!("dns; {}", clean(f.host)));
        }
        s += &field("Diagnostic-Code", &format!("smtp; {}", clean(f.reply)));
        s += &field("Last-Attempt-Date", &rfc5322_date(b.now));
    }
    s
}

/// `Name: value\n`, the value cleaned and folded.
fn field(name: &str, value: &str) -> String {
    let mut out = format!("{name}: ");
    out += &wrap(&clean(value), out.len(), " ");
    out.push('\n');
    out
}

/// Printable ASCII only, whitespace runs (and so any CR, LF or tab) made
/// one space, and no word longer than [`LONGEST_WORD`].
fn clean(s: &str) -> String {
    let spaced: String = s
        .chars()
        .map(|c| if c.is_ascii_whitespace() { ' ' } else { c })
        .collect();
    let spaced = printable(&spaced);
    let mut words = Vec::new();
    for word in spaced.split(' ').filter(|w| !w.is_empty()) {
        // printable ASCII: every byte index is a char boundary
        let mut rest = word;
        while rest.len() > LONGEST_WORD {
            let (head, tail) = rest.split_at(LONGEST_WORD);
            words.push(head);
            rest = tail;
        }
        words.push(rest);
    }
    words.join(" ")
}

fn clean_bytes(s: &[u8]) -> String {
    clean(&String::from_utf8_lossy(s))
}

/// Breaks `text` (single spaces between words) into lines of at most
/// [`FOLD_AT`] columns where the words allow, the first line starting at
/// column `start`; lines after the first start with `indent` in place of
/// the space they were broken at. With `indent` " " this is RFC 5322
/// folding: unfolding gives the text back. The first word always stays on
/// the first line (a header's value starts beside its name), and nothing is
/// broken before the first word of a line, so no line is all whitespace.
fn wrap(text: &str, start: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut col = start;
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 && col + 1 + word.len() > FOLD_AT && col > indent.len() {
            out.push('\n');
            out.push_str(indent);
            col = indent.len();
        } else if i > 0 {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += word.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    const ORIGINAL: &[u8] =
        b"Received: from x by y\nFrom: <s@example.org>\nSubject: hello\n\nbody line\n";

    fn failed<'a>(rcpt: &'a [u8], reply: &'a str, host: &'a str) -> Failed<'a> {
        Failed { rcpt, reply, host }
    }

    fn bounce<'a>(failed: &'a [Failed<'a>], original: &'a [u8]) -> Bounce<'a> {
        Bounce {
            me: "mx.example.net",
            from: "MAILER-DAEMON@mx.example.net",
            to: b"s@example.org",
            id: "1700000000.123.4",
            original_sender: b"s@example.org",
            arrival: 1_700_000_000,
            now: 1_700_000_600,
            failed,
            original,
        }
    }

    /// A message split the way a MIME reader would: top headers, boundary,
    /// and each part as (headers, body).
    struct Parsed {
        headers: String,
        boundary: String,
        parts: Vec<(String, Vec<u8>)>,
    }

    fn split_once<'a>(hay: &'a [u8], needle: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
        let i = hay.windows(needle.len()).position(|w| w == needle)?;
        Some((&hay[..i], &hay[i + needle.len()..]))
    }

    fn parse(msg: &[u8]) -> Parsed {
        let (head, body) = split_once(msg, b"\n\n").expect("header block");
        let headers = String::from_utf8(head.to_vec()).expect("ascii headers");
        let unfolded = headers.replace("\n ", " ");
        let b = unfolded
            .split("boundary=\"")
            .nth(1)
            .expect("boundary param");
        let boundary = b[..b.find('"').expect("closing quote")].to_string();
        let open = format!("\n--{boundary}\n");
        let close = format!("\n--{boundary}--\n");
        let (inner, after) = split_once(body, close.as_bytes()).expect("closing delimiter");
        assert!(after.is_empty(), "nothing after the closing delimiter");
        let mut chunks = Vec::new();
        let mut rest = inner;
        while let Some((before, next)) = split_once(rest, open.as_bytes()) {
            chunks.push(before);
            rest = next;
        }
        chunks.push(rest);
        let parts = chunks[1..]
            .iter()
            .map(|c| {
                let (h, b) = split_once(c, b"\n\n").expect("part header block");
                (
                    String::from_utf8(h.to_vec()).expect("ascii part headers"),
                    b.to_vec(),
                )
            })
            .collect();
        Parsed {
            headers,
            boundary,
            parts,
        }
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8(b.to_vec()).expect("utf-8")
    }

    /// Every byte we generate (all but the original) is printable ASCII or LF.
    fn assert_seven_bit(p: &Parsed) {
        let ours = [p.headers.as_bytes(), &p.parts[0].1, &p.parts[1].1];
        for bytes in ours {
            assert!(bytes
                .iter()
                .all(|&c| c == b'\n' || (0x20..0x7f).contains(&c)));
        }
    }

    #[test]
    fn structure_and_one_recipient() {
        let f = [failed(
            b"a@example.com",
            "550 5.1.1 <a@example.com>: user unknown",
            "mx.example.com",
        )];
        let msg = build(&bounce(&f, ORIGINAL));
        let p = parse(&msg);
        for h in [
            "Date: Tue, 14 Nov 2023 22:23:20 +0000\n",
            "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\n",
            "To: <s@example.org>\n",
            "Subject: Undelivered Mail Returned to Sender\n",
            "Auto-Submitted: auto-replied\n",
            "MIME-Version: 1.0\n",
        ] {
            assert!(
                format!("{}\n", p.headers).contains(h),
                "{h} in {}",
                p.headers
            );
        }
        assert!(p
            .headers
            .contains("Message-ID: <1700000000.123.4.1700000600."));
        assert!(p
            .headers
            .contains("multipart/report; report-type=delivery-status;"));
        assert!(!p.headers.contains("Content-Transfer-Encoding"));
        assert_eq!(p.parts.len(), 3);
        assert!(p.parts[0]
            .0
            .contains("Content-Type: text/plain; charset=us-ascii"));
        assert!(p.parts[1]
            .0
            .contains("Content-Type: message/delivery-status"));
        assert!(p.parts[2].0.contains("Content-Type: message/rfc822"));
        assert_eq!(
            p.parts[2].1, ORIGINAL,
            "the original comes back byte for byte"
        );
        let human = text(&p.parts[0].1);
        assert!(human.contains("<a@example.com>: host mx.example.com said: 550 5.1.1"));
        assert!(human.contains("could not be delivered"));
        let ds = text(&p.parts[1].1);
        let want = "Reporting-MTA: dns; mx.example.net\nX-Relaygate-Queue-ID: 1700000000.123.4\n\
                    X-Relaygate-Sender: rfc822; s@example.org\n\
                    Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\n\n\
                    Final-Recipient: rfc822; a@example.com\nAction: failed\nStatus: 5.1.1\n\
                    Remote-MTA: dns; mx.example.com\n\
                    Diagnostic-Code: smtp; 550 5.1.1 <a@example.com>: user unknown\n\
                    Last-Attempt-Date: Tue, 14 Nov 2023 22:23:20 +0000\n";
        assert_eq!(ds, want);
        assert_seven_bit(&p);
    }

    #[test]
    fn several_recipients_one_group_each() {
        let f = [
            failed(b"a@example.com", "550 5.1.1 no such user", "mx.example.com"),
            failed(b"b@example.com", "552 mailbox full", "mx.example.com"),
            failed(b"c@nowhere.example", "no such domain", "-"),
        ];
        let p = parse(&build(&bounce(&f, ORIGINAL)));
        let ds = text(&p.parts[1].1);
        let groups: Vec<&str> = ds.split("\n\n").collect();
        assert_eq!(
            groups.len(),
            4,
            "per-message block and three recipients: {ds}"
        );
        assert!(groups[1].contains("Final-Recipient: rfc822; a@example.com\n"));
        assert!(groups[1].contains("Status: 5.1.1\n"));
        assert!(groups[2].contains("Final-Recipient: rfc822; b@example.com\n"));
        assert!(
            groups[2].contains("Status: 5.0.0\n"),
            "no enhanced code: 5.0.0"
        );
        assert!(groups[3].contains("Final-Recipient: rfc822; c@nowhere.example\n"));
        assert!(
            !groups[3].contains("Remote-MTA"),
            "no hop reached: no Remote-MTA"
        );
        assert!(groups[3].contains("Diagnostic-Code: smtp; no such domain\n"));
        let human = text(&p.parts[0].1);
        for r in [
            "<a@example.com>: host",
            "<b@example.com>: host",
            "<c@nowhere.example>: no such domain",
        ] {
            assert!(human.contains(r), "{r} in {human}");
        }
    }

    #[test]
    fn status_codes() {
        assert_eq!(status_of("550 5.1.1 user unknown"), "5.1.1");
        assert_eq!(status_of("550-5.7.1 first line 550 5.7.1 second"), "5.7.1");
        assert_eq!(status_of("554 5.123.45 odd but valid"), "5.123.45");
        assert_eq!(status_of("550 user unknown"), "5.0.0");
        assert_eq!(status_of("550 5.1 user unknown"), "5.0.0");
        assert_eq!(status_of("550 5.1.1.1 too many"), "5.0.0");
        assert_eq!(status_of("550 6.1.1 bad class"), "5.0.0");
        assert_eq!(status_of("550 5.1234.1 too long"), "5.0.0");
        assert_eq!(status_of(""), "5.0.0");
        assert_eq!(status_of("\u{e9}\u{e9}\u{e9}\u{e9}"), "5.0.0");
        assert_eq!(
            status_of("250 2.1.5 ok"),
            "5.0.0",
            "a success code is no failure status"
        );
        assert_eq!(enhanced_code("451 4.3.0 try later"), Some((4, 3, 0)));
    }

    #[test]
    fn lifetime_expiry_is_permanent() {
        assert_eq!(
            status_of("4.4.7 message too old; last reply: 451 4.3.0 busy"),
            "5.4.7"
        );
        assert_eq!(status_of("451 4.4.1 connection timed out"), "5.4.1");
        let f = [failed(
            b"a@example.com",
            "4.4.7 message too old: 421 4.4.2 timeout",
            "mx.example.com",
        )];
        let p = parse(&build(&bounce(&f, ORIGINAL)));
        let ds = text(&p.parts[1].1);
        assert!(ds.contains("Action: failed\nStatus: 5.4.7\n"), "{ds}");
        assert!(ds.contains("Diagnostic-Code: smtp; 4.4.7 message too old"));
    }

    #[test]
    fn no_header_injection_from_reply_or_address() {
        let f = [failed(
            b"a@example.com\r\nBcc: victim@example.org\n\nX",
            "550 no\r\nBcc: evil@example.org\r\n\r\n--fake\ttab\x1b[31m",
            "mx.example.com\nX-Evil: 1",
        )];
        let mut b = bounce(&f, ORIGINAL);
        b.to = b"s@example.org\r\nBcc: more@example.org";
        b.me = "me.example\nX-Me: 1";
        b.id = "1.2.3\n\nX-Id: 1";
        let msg = build(&b);
        let p = parse(&msg);
        assert_seven_bit(&p);
        let all = text(&msg[..msg.len() - ORIGINAL.len()]);
        for line in all.lines() {
            for bad in ["Bcc:", "X-Evil:", "X-Me:", "X-Id:", "--fake"] {
                assert!(!line.starts_with(bad), "injected line {line:?}");
            }
        }
        assert!(p
            .headers
            .contains("To: <s@example.org Bcc: more@example.org>"));
        assert!(text(&p.parts[1].1)
            .contains("Diagnostic-Code: smtp; 550 no Bcc: evil@example.org --fake tab?[31m\n"));
        let mid = p
            .headers
            .lines()
            .find(|l| l.starts_with("Message-ID:"))
            .expect("Message-ID");
        assert!(mid.ends_with(".dsn@me.exampleX-Me1>"), "{mid}");
    }

    #[test]
    fn long_reply_is_folded_not_cut() {
        let reply = format!("550 5.7.1 {}", "word ".repeat(100)) + &"x".repeat(2000);
        let f = [failed(b"a@example.com", &reply, "mx.example.com")];
        let p = parse(&build(&bounce(&f, ORIGINAL)));
        let ds = text(&p.parts[1].1);
        for l in ds.lines() {
            assert!(l.len() <= LONGEST_WORD + 1, "{l:?}");
            assert!(
                !l.starts_with(' ') || !l.trim().is_empty(),
                "a blank folded line"
            );
        }
        assert!(
            ds.lines().filter(|l| l.starts_with(' ')).count() >= 8,
            "folded: {ds}"
        );
        let unfolded = ds.replace("\n ", " ");
        assert!(unfolded.contains(&format!(
            "Diagnostic-Code: smtp; 550 5.7.1 {}",
            "word ".repeat(100)
        )));
    }

    #[test]
    fn huge_original_returns_headers_only() {
        let mut original = b"From: <s@example.org>\nSubject: big\nX-Long: a\n b\n\n".to_vec();
        let head_len = original.len();
        original.extend_from_slice(&b"0123456789abcdef\n".repeat(5000));
        let f = [failed(
            b"a@example.com",
            "552 5.3.4 too big",
            "mx.example.com",
        )];
        let p = parse(&build(&bounce(&f, &original)));
        assert!(p.parts[2].0.contains("Content-Type: text/rfc822-headers"));
        assert_eq!(
            p.parts[2].1,
            &original[..head_len - 1],
            "the header block, without the empty line"
        );
        let small = vec![b'x'; WHOLE_LIMIT];
        let p = parse(&build(&bounce(&f, &small)));
        assert!(
            p.parts[2].0.contains("Content-Type: message/rfc822"),
            "64 KiB exactly is sent whole"
        );
    }

    #[test]
    fn huge_header_block_is_cut_at_a_field() {
        let mut original = Vec::new();
        while original.len() <= WHOLE_LIMIT + 100 {
            original.extend_from_slice(b"X-Filler: 0123456789\n continued\n");
        }
        let (kind, part) = original_part(&original);
        assert_eq!(kind, Kind::Headers);
        assert!(part.len() <= WHOLE_LIMIT && part.ends_with(b" continued\n"));
        let blank_first = [b"\n".as_slice(), &vec![b'y'; WHOLE_LIMIT]].concat();
        let (_, none) = original_part(&blank_first);
        assert!(
            none.is_empty(),
            "a message starting with a blank line has no headers"
        );
    }

    #[test]
    fn boundary_never_occurs_in_the_parts() {
        let f = [failed(
            b"a@example.com",
            "550 5.1.1 --=_rg.1700000000.123.4.1700000600.1",
            "mx",
        )];
        let b = bounce(&f, ORIGINAL);
        let guessed = format!("=_rg.{}.{}.0", b.id, b.now);
        let original = [ORIGINAL, format!("--{guessed}\n--{guessed}--\n").as_bytes()].concat();
        let b = bounce(&f, &original);
        let msg = build(&b);
        let p = parse(&msg);
        assert_ne!(p.boundary, guessed);
        assert!(!contains(&original, p.boundary.as_bytes()));
        assert!(!contains(f[0].reply.as_bytes(), p.boundary.as_bytes()));
        assert!(p.boundary.len() <= 70);
        assert_eq!(p.parts.len(), 3);
        assert_eq!(p.parts[2].1, original);
    }

    #[test]
    fn eight_bit_original_is_declared() {
        let original = "Subject: caf\u{e9}\n\ncaf\u{e9}\n".as_bytes();
        let f = [failed(b"a@example.com", "550 5.1.1 no", "mx")];
        let p = parse(&build(&bounce(&f, original)));
        assert!(p.headers.contains("Content-Transfer-Encoding: 8bit"));
        assert!(p.parts[2].0.contains("Content-Transfer-Encoding: 8bit"));
        assert!(!p.parts[0].0.contains("Content-Transfer-Encoding"));
    }

    #[test]
    fn double_bounce_says_so() {
        let f = [failed(b"a@example.com", "550 5.1.1 no", "mx")];
        let mut b = bounce(&f, ORIGINAL);
        b.original_sender = b"";
        b.to = b"postmaster@example.net";
        let p = parse(&build(&b));
        assert!(p
            .headers
            .contains("Subject: Postmaster Copy: Undelivered Mail"));
        assert!(text(&p.parts[0].1).contains("null envelope sender"));
        assert!(
            !text(&p.parts[1].1).contains("X-Relaygate-Sender"),
            "no sender to name"
        );
    }

    #[test]
    fn a_value_starts_beside_its_name() {
        let f = [failed(b"a@example.com", "550 no", "mx")];
        let mut b = bounce(&f, ORIGINAL);
        b.id = "1795989300.706583153.10028338";
        b.me = "a-rather-long-host-name.example.org";
        let p = parse(&build(&b));
        let mid = p
            .headers
            .lines()
            .find(|l| l.starts_with("Message-ID:"))
            .expect("Message-ID");
        assert!(
            mid.starts_with("Message-ID: <1795989300.706583153.10028338."),
            "{mid}"
        );
        assert!(
            mid.ends_with(".dsn@a-rather-long-host-name.example.org>"),
            "{mid}"
        );
    }

    #[test]
    fn message_ids_differ_per_failed_set() {
        let one = [failed(b"a@example.com", "550 no", "mx")];
        let two = [failed(b"b@example.com", "550 no", "mx")];
        let id = |m: &[u8]| {
            parse(m)
                .headers
                .lines()
                .find(|l| l.starts_with("Message-ID"))
                .map(String::from)
        };
        assert_ne!(
            id(&build(&bounce(&one, ORIGINAL))),
            id(&build(&bounce(&two, ORIGINAL)))
        );
    }

    /// Python's `email` package reads what we wrote: a real MIME parser,
    /// not our own idea of the structure.
    const PY: &str = r#"
import email, sys
m = email.message_from_bytes(sys.stdin.buffer.read())
assert not m.defects, m.defects
print("type", m.get_content_type())
print("report-type", m.get_param("report-type"))
print("bcc", m.get_all("Bcc"))
print("to", m["To"])
parts = m.get_payload()
print("parts", " ".join(p.get_content_type() for p in parts))
for p in parts:
    assert not p.defects, p.defects
groups = parts[1].get_payload()
print("reporting-mta", groups[0]["Reporting-MTA"])
print("arrival", groups[0]["Arrival-Date"])
for g in groups[1:]:
    print("rcpt", g["Final-Recipient"], "|", g["Action"], "|", g["Status"], "|", g["Remote-MTA"], "|", g["Diagnostic-Code"].replace("\n", ""))
orig = parts[2].get_payload(0)
print("orig-subject", orig["Subject"])
print("orig-body", repr(orig.get_payload()))
"#;

    /// `python3 -c script` with `msg` on stdin: its output, or `None` when
    /// python3 is missing outside CI (a skip; CI installs it).
    fn python(script: &str, msg: &[u8]) -> Option<String> {
        let mut child = match Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(_) if std::env::var_os("CI").is_none() => {
                eprintln!("skipping: python3 not installed");
                return None;
            }
            Err(e) => panic!("python3 is required for this test (CI installs it): {e}"),
        };
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(msg)
            .expect("write to python3");
        let out = child.wait_with_output().expect("python3 output");
        assert!(
            out.status.success(),
            "python3: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(text(&out.stdout))
    }

    #[test]
    fn python_email_parses_the_report() {
        let f = [
            failed(
                b"a@example.com",
                "550 5.1.1 <a@example.com>: user unknown",
                "mx.example.com",
            ),
            failed(
                b"b@example.com",
                "4.4.7 message too old: 451 try later",
                "-",
            ),
            failed(
                b"c@example.com\r\nBcc: x@evil",
                "550 no\r\nBcc: y@evil",
                "mx.example.com",
            ),
        ];
        let reply = format!("554 5.6.0 {}", "long ".repeat(40));
        let long = [failed(b"d@example.com", &reply, "mx.example.com")];
        let Some(out) = python(PY, &build(&bounce(&f, ORIGINAL))) else {
            return;
        };
        let want = "type multipart/report\nreport-type delivery-status\nbcc None\nto <s@example.org>\n\
            parts text/plain message/delivery-status message/rfc822\n\
            reporting-mta dns; mx.example.net\narrival Tue, 14 Nov 2023 22:13:20 +0000\n\
            rcpt rfc822; a@example.com | failed | 5.1.1 | dns; mx.example.com | smtp; 550 5.1.1 <a@example.com>: user unknown\n\
            rcpt rfc822; b@example.com | failed | 5.4.7 | None | smtp; 4.4.7 message too old: 451 try later\n\
            rcpt rfc822; c@example.com Bcc: x@evil | failed | 5.0.0 | dns; mx.example.com | smtp; 550 no Bcc: y@evil\n\
            orig-subject hello\norig-body 'body line\\n'\n";
        assert_eq!(out, want);
        let out = python(PY, &build(&bounce(&long, ORIGINAL))).unwrap_or_default();
        assert!(
            out.contains(&format!(
                "| 5.6.0 | dns; mx.example.com | smtp; {}\n",
                reply.trim_end()
            )),
            "{out}"
        );
    }

    #[test]
    fn python_email_parses_headers_only_and_eight_bit() {
        let mut original = "Subject: caf\u{e9}\n\n".as_bytes().to_vec();
        original.extend_from_slice(&b"\xff\xfe 8-bit line\n".repeat(8000));
        let f = [failed(
            b"a@example.com",
            "552 5.3.4 too big",
            "mx.example.com",
        )];
        let script = "import email, sys\nm = email.message_from_bytes(sys.stdin.buffer.read())\n\
                      p = m.get_payload()\nassert not m.defects\n\
                      print(m.get_content_type(), p[2].get_content_type(), len(p))";
        let Some(out) = python(script, &build(&bounce(&f, &original))) else {
            return;
        };
        assert_eq!(out, "multipart/report text/rfc822-headers 3\n");
    }
}
