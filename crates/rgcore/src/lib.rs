//! relaygate core: what every program shares.
//!
//! Owns no state. Holds the exit-code convention (0 / 100 / 111), the one-line
//! diagnostic format, the run-time directory defaults, qmail's three-state
//! control-file reads, IP address normalisation and matching, atomic file
//! replacement and chain-loading (exec the rest of argv).
#![forbid(unsafe_code)]

pub mod atomic;
pub mod chain;
pub mod control;
pub mod diag;
pub mod exit;
pub mod ip;
pub mod paths;
pub mod reply;
pub mod testing;

pub use diag::Failure;
