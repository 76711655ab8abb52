//! The queue behind `deliver`: the per-recipient state file `info/ID`
//! (`state`), routes from `lmtproutes`/`smtproutes` (`route`), the retry
//! schedule (`schedule`) and delivery status notifications (`dsn`).
//! The layout and formats are in docs/DELIVERY.md and man/spool.5.
#![forbid(unsafe_code)]

pub mod dsn;
pub mod route;
pub mod schedule;
pub mod state;
