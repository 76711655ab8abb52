//! Delivery status notifications (RFC 3464): SKELETON, being written.

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
pub fn build(_b: &Bounce) -> Vec<u8> {
    Vec::new()
}
