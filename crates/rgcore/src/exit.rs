//! Exit codes shared by every relaygate program (qmail's convention).

/// Success.
pub const OK: i32 = 0;
/// Permanent failure: retrying the same thing will fail the same way.
pub const PERM: i32 = 100;
/// Temporary failure: try again later.
pub const TEMP: i32 = 111;
