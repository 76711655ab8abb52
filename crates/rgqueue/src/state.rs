//! The per-recipient state of one message, `SPOOLDIR/info/ID`: its text
//! format (docs/DELIVERY.md, man/spool.5), parsing, and the atomic write
//! (temp file, fsync, rename, fsync the directory).

use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// First line of every state file.
pub const MAGIC: &str = "rgqueue1";

/// Where one recipient stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// To be tried at `next`.
    Pending,
    Delivered,
    /// Failed permanently; its DSN is not written yet.
    Failed,
    /// Its DSN (or double bounce, or the log line that dropped it) is done.
    Bounced,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Delivered => "delivered",
            Status::Failed => "failed",
            Status::Bounced => "bounced",
        }
    }
    fn parse(w: &str) -> Option<Status> {
        Some(match w {
            "pending" => Status::Pending,
            "delivered" => Status::Delivered,
            "failed" => Status::Failed,
            "bounced" => Status::Bounced,
            _ => return None,
        })
    }
    /// Nothing more will be done for it.
    pub fn is_done(self) -> bool {
        matches!(self, Status::Delivered | Status::Bounced)
    }
}

/// One recipient's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rcpt {
    pub status: Status,
    pub attempts: u32,
    /// UNIX time of the next attempt (pending only; 0 = now).
    pub next: u64,
    /// The last next hop tried, `-` for none.
    pub host: String,
    /// The last reply, printable ASCII, `-` for none.
    pub reply: String,
}

impl Rcpt {
    /// A recipient never tried.
    pub fn fresh() -> Rcpt {
        Rcpt {
            status: Status::Pending,
            attempts: 0,
            next: 0,
            host: "-".into(),
            reply: "-".into(),
        }
    }
}

/// The state of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// When the message was queued (UNIX seconds).
    pub created: u64,
    /// DSNs written so far for this message.
    pub bounces: u32,
    /// One record per envelope recipient, in envelope order.
    pub rcpts: Vec<Rcpt>,
}

/// Only printable ASCII and no line breaks: the state file is one record
/// per line, and a reply comes from the network.
fn field(s: &str, blank_ok: bool) -> String {
    let p = rgcore::diag::printable(s);
    let p = if blank_ok { p } else { p.replace(' ', "_") };
    if p.is_empty() {
        "-".into()
    } else {
        p
    }
}

impl State {
    /// A message never tried, with `n` recipients.
    pub fn fresh(created: u64, n: usize) -> State {
        State {
            created,
            bounces: 0,
            rcpts: vec![Rcpt::fresh(); n],
        }
    }

    /// Every recipient done?
    pub fn is_done(&self) -> bool {
        self.rcpts.iter().all(|r| r.status.is_done())
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{MAGIC}\ncreated {}\nbounces {}\n",
            self.created, self.bounces
        );
        for (i, r) in self.rcpts.iter().enumerate() {
            let _ = writeln!(
                s,
                "r {i} {} {} {} {} {}",
                r.status.word(),
                r.attempts,
                r.next,
                field(&r.host, false),
                field(&r.reply, true)
            );
        }
        s
    }

    /// Parse a state file for a message with `n` recipients. Anything
    /// that does not fit is `None` (damaged: the caller starts afresh).
    pub fn parse(text: &str, n: usize) -> Option<State> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let created = lines.next()?.strip_prefix("created ")?.parse().ok()?;
        let bounces = lines.next()?.strip_prefix("bounces ")?.parse().ok()?;
        let mut rcpts = Vec::with_capacity(n);
        for (i, line) in lines.enumerate() {
            let mut f = line.splitn(7, ' ');
            if f.next()? != "r" || f.next()?.parse::<usize>().ok()? != i {
                return None;
            }
            rcpts.push(Rcpt {
                status: Status::parse(f.next()?)?,
                attempts: f.next()?.parse().ok()?,
                next: f.next()?.parse().ok()?,
                host: f.next()?.to_string(),
                reply: f.next()?.to_string(),
            });
        }
        (rcpts.len() == n).then_some(State {
            created,
            bounces,
            rcpts,
        })
    }

    /// Replace `path` with this state atomically and durably.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        rgcore::atomic::write_file(path, self.render().as_bytes())
    }

    /// Read `path`: Ok(None) when it does not exist or is damaged.
    pub fn read(path: &Path, n: usize) -> io::Result<Option<State>> {
        match std::fs::read(path) {
            Ok(b) => Ok(std::str::from_utf8(&b)
                .ok()
                .and_then(|t| State::parse(t, n))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The time in a spool id (`SECONDS.NANOS.INODE`), if it has one.
pub fn id_time(id: &str) -> Option<u64> {
    id.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        let mut s = State::fresh(1_700_000_000, 3);
        s.bounces = 1;
        s.rcpts[0].status = Status::Delivered;
        s.rcpts[0].attempts = 1;
        s.rcpts[0].host = "mx.example.org".into();
        s.rcpts[0].reply = "250 2.0.0 ok queued as X".into();
        s.rcpts[1].status = Status::Pending;
        s.rcpts[1].attempts = 2;
        s.rcpts[1].next = 1_700_000_120;
        s.rcpts[1].reply = "451 4.3.0 try again\r\nlater".into();
        s.rcpts[2].status = Status::Failed;
        s
    }

    #[test]
    fn round_trip() {
        let s = sample();
        let text = s.render();
        let back = State::parse(&text, 3).unwrap();
        assert_eq!(back.rcpts[0], s.rcpts[0]);
        assert_eq!(back.rcpts[1].reply, "451 4.3.0 try again??later");
        assert_eq!(back.rcpts[2].status, Status::Failed);
        assert_eq!((back.created, back.bounces), (s.created, 1));
        assert!(text.lines().count() == 6, "one line per record: {text}");
    }

    #[test]
    fn damaged_files_are_none() {
        let text = sample().render();
        assert!(State::parse(&text, 2).is_none(), "wrong recipient count");
        assert!(State::parse(&text, 4).is_none());
        assert!(State::parse(&text.replace("rgqueue1", "rgqueue2"), 3).is_none());
        assert!(State::parse(&text.replace("pending", "pendin"), 3).is_none());
        assert!(State::parse(&text.replace("r 1 ", "r 7 "), 3).is_none());
        let cut = &text[..text.find("r 2").unwrap() + 4];
        assert!(State::parse(cut, 3).is_none(), "a cut file is damaged");
        assert!(State::parse("", 0).is_none());
    }

    #[test]
    fn host_with_blank_stays_one_field() {
        let mut s = State::fresh(1, 1);
        s.rcpts[0].host = "a b".into();
        s.rcpts[0].reply = String::new();
        let back = State::parse(&s.render(), 1).unwrap();
        assert_eq!(back.rcpts[0].host, "a_b");
        assert_eq!(back.rcpts[0].reply, "-");
    }

    #[test]
    fn write_read_and_id_time() {
        let dir = rgcore::testing::TempDir::new("rgqueue-state").unwrap();
        let p = dir.join("1.2.3");
        assert_eq!(State::read(&p, 3).unwrap(), None);
        sample().write(&p).unwrap();
        assert_eq!(State::read(&p, 3).unwrap().unwrap().bounces, 1);
        assert_eq!(id_time("1700000000.123456789.42"), Some(1_700_000_000));
        assert_eq!(id_time("junk"), None);
    }
}
