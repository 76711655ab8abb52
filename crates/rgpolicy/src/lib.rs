//! rgpolicy: the envelope address parser, smtpd's view of the control files,
//! and the relay decision.
//!
//! Owns no global state. [`addr`] turns the argument of `MAIL FROM:` /
//! `RCPT TO:` into the one parsed address that is both checked and queued;
//! [`controls::Controls`] is one session's lazily loaded view of
//! `CONTROLDIR`; [`decide::decide_rcpt`] is the relay decision of SPEC
//! section 5 as one function from (client facts, envelope, controls) to
//! (verdict, rule). The control files and the decision order are documented
//! in `man/relaygate-control.5`. [`abuse`] reads the abuse defences'
//! control files (SPEC section 8).
#![forbid(unsafe_code)]

pub mod abuse;
pub mod addr;
pub mod controls;
pub mod decide;
mod domains;
mod lazy;
pub mod recipients;

pub use rgcore::Failure;
