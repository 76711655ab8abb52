//! relaygate accounts and authentication.
//!
//! Owns the account formats (`CONTROLDIR/users` and `users.cdb`, see
//! `man/users.5`), password hashing (SHA-512-crypt), the CRAM-MD5 key pair,
//! the credential check behind `checkpassword`, and the client side of the
//! checkpassword interface that `smtpd` uses for SMTP AUTH
//! ([`run_checkpassword`], [`cram_challenge`]). Holds no state of its own:
//! everything lives in the files it reads and writes.
#![deny(unsafe_code)]

pub mod account;
pub mod check;
pub mod cram;
pub mod hash;
mod run;
pub mod store;
#[allow(unsafe_code)]
mod sys;

pub use account::Account;
pub use check::{check, parse_input, Credentials, InputError, Verdict};
pub use cram::CramKeys;
pub use run::{
    cram_challenge, run_checkpassword, run_checkpassword_timeout, CheckOutcome, CHECK_TIMEOUT,
};
