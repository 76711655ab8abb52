//! rgrules: ucspi-tcp's access rules, compiled and looked up.
//!
//! Owns no state. [`compile`] turns tcprules input (ucspi-tcp 0.88 syntax plus
//! IPv4 CIDR and IPv6) into cdb records; [`lookup`] finds the rule for a
//! client in ucspi-tcp's order; [`decode`] reads a rule's data (deny flag and
//! environment variables). The record format is ucspi-tcp's: key = address,
//! data = `D\0` for deny, then `+NAME=VALUE\0` per variable.
//!
//! IPv6 encoding (ucspi-tcp never looks these keys up, because its IPv4
//! tcpserver only asks for dotted-quad keys): a whole address is stored under
//! its RFC 5952 text (`2001:db8::1`), a network under `ADDR/LEN` with the host
//! bits cleared (`2001:db8::/32`), and the key [`V6_LENGTHS_KEY`] lists the
//! prefix lengths in use (`64,48,32`) so a lookup tries only those.
#![forbid(unsafe_code)]

mod compile;
mod data;
mod lookup;

pub use compile::{compile, ParseError, Records};
pub use data::{decode, entries, Rule};
pub use lookup::{lookup, Found};

/// The key listing the IPv6 prefix lengths present, longest first, as
/// decimal numbers separated by commas. Starts with `:`, so no address that
/// ucspi-tcp's tcpserver asks for can collide with it.
pub const V6_LENGTHS_KEY: &[u8] = b":v6-prefix-lengths";
