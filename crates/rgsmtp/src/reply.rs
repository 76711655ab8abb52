//! Every fixed reply text of the session in one table (qmail-smtpd's
//! `err_*`), so a reply is changed, reviewed and grepped in one place. The
//! few replies that carry a value (`221 me`, `250 ok id=...`, `421 me
//! timeout`, `554 5.5.0 protocol violation: what`) are built where they are
//! sent. Refusals that an [`crate::Env`] hands back as a [`Reply`] are
//! [`Fixed`] (code and text apart).

use crate::Reply;

pub use rgcore::reply::Fixed;

impl From<Fixed> for Reply {
    /// A fixed reply as one an [`crate::Env`] returns.
    fn from(f: Fixed) -> Reply {
        Reply {
            code: f.code,
            text: f.text.to_string(),
        }
    }
}

/// `421 4.7.0 too many errors, closing connection`
pub const TOO_MANY_ERRORS: &str = "421 4.7.0 too many errors, closing connection";
/// `421 4.3.0 unable to read controls`
pub const CONTROLS: &str = "421 4.3.0 unable to read controls";
/// `454 4.7.0 TLS not available`
pub const TLS_UNAVAILABLE: &str = "454 4.7.0 TLS not available";
/// `235 2.7.0 authentication successful`
pub const AUTH_OK: &str = "235 2.7.0 authentication successful";
/// `454 4.7.0 temporary authentication failure`
pub const AUTH_TEMP: &str = "454 4.7.0 temporary authentication failure";
/// `535 5.7.8 authentication failed`
pub const AUTH_FAILED: &str = "535 5.7.8 authentication failed";
/// `421 4.7.0 too many authentication failures, closing connection`
pub const TOO_MANY_AUTH_FAILURES: &str =
    "421 4.7.0 too many authentication failures, closing connection";
/// `421 4.7.1 too many authentication failures from your address
/// (authfailures), closing connection`: the client's address is banned.
pub const AUTH_BANNED: &str =
    "421 4.7.1 too many authentication failures from your address (authfailures), closing connection";
/// `553 5.7.1 sender address not owned by user` (`senders`).
pub const SENDER_NOT_OWNED: Fixed = Fixed {
    code: 553,
    text: "5.7.1 sender address not owned by user",
};
/// `451 4.7.1 sending limit reached` (`sendlimits`).
pub const SENDLIMIT: Fixed = Fixed {
    code: 451,
    text: "4.7.1 sending limit reached",
};
/// `421 4.7.1 too many refused relay attempts from your address
/// (probelimits), closing connection`: the client's address is banned.
pub const PROBE_BANNED: Fixed = Fixed {
    code: 421,
    text:
        "4.7.1 too many refused relay attempts from your address (probelimits), closing connection",
};
/// `250 2.0.0 ok`
pub const OK: &str = "250 2.0.0 ok";
/// `451 4.3.0 temporary queue failure, try again later`
pub const QUEUE_TEMP: &str = "451 4.3.0 temporary queue failure, try again later";
/// `452 4.3.1 insufficient system storage`
pub const DISK_FULL: &str = "452 4.3.1 insufficient system storage";
/// `554 5.3.0 permanent queue failure`
pub const QUEUE_PERM: &str = "554 5.3.0 permanent queue failure";
/// `500 5.5.2 line too long`
pub const LINE_TOO_LONG: &str = "500 5.5.2 line too long";
/// `501 5.5.2 syntax error: NUL or bare CR in command`
pub const NUL_OR_CR: &str = "501 5.5.2 syntax error: NUL or bare CR in command";
/// `250 2.0.0 flushed`
pub const RSET: &str = "250 2.0.0 flushed";
/// `214 2.0.0 relaygate smtpd: see RFC 5321`
pub const HELP: &str = "214 2.0.0 relaygate smtpd: see RFC 5321";
/// `502 5.5.1 VRFY disabled`
pub const VRFY_DISABLED: &str = "502 5.5.1 VRFY disabled";
/// `252 2.5.2 send some mail, I'll try my best`
pub const VRFY: &str = "252 2.5.2 send some mail, I'll try my best";
/// `502 5.5.1 command not implemented`
pub const UNIMPLEMENTED: &str = "502 5.5.1 command not implemented";
/// `503 5.5.1 send HELO or EHLO first`
pub const NEED_HELO: &str = "503 5.5.1 send HELO or EHLO first";
/// `503 5.5.1 nested MAIL command`
pub const NESTED_MAIL: &str = "503 5.5.1 nested MAIL command";
/// `530 5.7.0 authentication required`
pub const AUTH_REQUIRED: &str = "530 5.7.0 authentication required";
/// `501 5.5.4 syntax: MAIL FROM:<address>`
pub const SYNTAX_MAIL: &str = "501 5.5.4 syntax: MAIL FROM:<address>";
/// `501 5.5.4 syntax: SIZE=number`
pub const SYNTAX_SIZE: &str = "501 5.5.4 syntax: SIZE=number";
/// `552 5.3.4 message size exceeds fixed maximum message size`
pub const SIZE_DECLARED_TOO_BIG: &str = "552 5.3.4 message size exceeds fixed maximum message size";
/// `250 2.1.0 ok`
pub const MAIL_OK: &str = "250 2.1.0 ok";
/// `503 5.5.1 need MAIL before RCPT`
pub const NEED_MAIL_RCPT: &str = "503 5.5.1 need MAIL before RCPT";
/// `501 5.5.4 syntax: RCPT TO:<address>`
pub const SYNTAX_RCPT: &str = "501 5.5.4 syntax: RCPT TO:<address>";
/// `452 4.5.3 too many recipients`
pub const TOO_MANY_RCPTS: &str = "452 4.5.3 too many recipients";
/// `250 2.1.5 ok`
pub const RCPT_OK: &str = "250 2.1.5 ok";
/// `503 5.5.1 need MAIL before DATA`
pub const NEED_MAIL_DATA: &str = "503 5.5.1 need MAIL before DATA";
/// `503 5.5.1 need RCPT before DATA`
pub const NEED_RCPT: &str = "503 5.5.1 need RCPT before DATA";
/// `501 5.5.4 syntax: DATA`
pub const SYNTAX_DATA: &str = "501 5.5.4 syntax: DATA";
/// `354 go ahead, end with <CRLF>.<CRLF>`
pub const DATA_GO: &str = "354 go ahead, end with <CRLF>.<CRLF>";
/// `503 5.5.1 TLS already active`
pub const TLS_ACTIVE: &str = "503 5.5.1 TLS already active";
/// `501 5.5.4 syntax: STARTTLS`
pub const SYNTAX_STARTTLS: &str = "501 5.5.4 syntax: STARTTLS";
/// `220 2.0.0 ready to start TLS`
pub const TLS_GO: &str = "220 2.0.0 ready to start TLS";
/// `503 5.5.1 AUTH not available`
pub const AUTH_UNAVAILABLE: &str = "503 5.5.1 AUTH not available";
/// `503 5.5.1 send EHLO first`
pub const NEED_EHLO: &str = "503 5.5.1 send EHLO first";
/// `503 5.5.1 already authenticated`
pub const AUTH_TWICE: &str = "503 5.5.1 already authenticated";
/// `503 5.5.1 AUTH not allowed during a mail transaction`
pub const AUTH_IN_TXN: &str = "503 5.5.1 AUTH not allowed during a mail transaction";
/// `501 5.5.4 syntax: AUTH mechanism [initial-response]`
pub const SYNTAX_AUTH: &str = "501 5.5.4 syntax: AUTH mechanism [initial-response]";
/// `504 5.5.4 unrecognized authentication type`
pub const AUTH_MECH_UNKNOWN: &str = "504 5.5.4 unrecognized authentication type";
/// `501 5.5.4 CRAM-MD5 takes no initial response`
pub const CRAM_NO_INITIAL: &str = "501 5.5.4 CRAM-MD5 takes no initial response";
/// `501 5.0.0 authentication cancelled`
pub const AUTH_CANCELLED: &str = "501 5.0.0 authentication cancelled";
/// `501 5.5.2 malformed base64 in AUTH response`
pub const AUTH_BAD_BASE64: &str = "501 5.5.2 malformed base64 in AUTH response";
/// `501 5.5.2 empty user name`
pub const AUTH_EMPTY_USER: &str = "501 5.5.2 empty user name";
/// `501 5.5.2 malformed CRAM-MD5 response`
pub const AUTH_BAD_CRAM: &str = "501 5.5.2 malformed CRAM-MD5 response";
/// `501 5.5.2 malformed PLAIN response`
pub const AUTH_BAD_PLAIN: &str = "501 5.5.2 malformed PLAIN response";
/// `501 5.5.2 malformed credentials`
pub const AUTH_BAD_CREDENTIALS: &str = "501 5.5.2 malformed credentials";
/// `554 5.6.0 message contains bare LF, bare CR or NUL; refused`
pub const BARE_LF_CR_NUL: &str = "554 5.6.0 message contains bare LF, bare CR or NUL; refused";
/// `552 5.3.4 message exceeds the size limit`
pub const TOO_BIG: &str = "552 5.3.4 message exceeds the size limit";
/// `554 5.4.6 too many hops`
pub const TOO_MANY_HOPS: &str = "554 5.4.6 too many hops";
/// `501 5.5.4 syntax: BODY=7BIT or BODY=8BITMIME`
pub const SYNTAX_BODY: &str = "501 5.5.4 syntax: BODY=7BIT or BODY=8BITMIME";
/// `555 5.5.4 unsupported MAIL parameter`
pub const MAIL_PARAM: &str = "555 5.5.4 unsupported MAIL parameter";
/// `538 5.7.11 encryption required for requested authentication mechanism`
pub const AUTH_NEEDS_TLS: &str =
    "538 5.7.11 encryption required for requested authentication mechanism";
