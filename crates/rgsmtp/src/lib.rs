//! rgsmtp: the SMTP session of `smtpd`, sans I/O.
//!
//! Owns the protocol, nothing else: [`session::Session`] takes the bytes the
//! client sent and produces replies, log lines, decoded message bytes and
//! [`session::Action`]s (open/commit the queue, run checkpassword, record a
//! hack attempt); it never touches a socket, a file or a clock of its own.
//! [`data::Decoder`] is the streaming DATA decoder (CRLF.CRLF, dot-stuffing,
//! bare LF/CR/NUL, size and hop limits), usable and fuzzable on its own.
//! [`received`] builds the `Received:` line; [`b64`] is AUTH's base64;
//! [`reply`] holds every fixed reply text.
#![forbid(unsafe_code)]

pub mod b64;
pub mod data;
pub mod received;
pub mod reply;
pub mod session;

pub use data::{Decoder, Verdict};
pub use session::{
    Action, AuthOutcome, Config, Env, Hangup, MailOk, QueueOutcome, RcptOutcome, RcptVerdict,
    Refusal, Reply, Session, Wants,
};

#[cfg(test)]
mod tests;
