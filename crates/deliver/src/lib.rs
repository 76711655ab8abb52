//! deliver: the queue manager (qmail-send's job). Takes each message from
//! `SPOOLDIR/new`, runs `remote` for each next hop, keeps per-recipient
//! state in `SPOOLDIR/info`, retries, bounces, removes finished messages.
//! Design and formats: docs/DELIVERY.md, deliver(8), spool(5).
#![forbid(unsafe_code)]

pub mod bounce;
pub mod config;
pub mod dispatch;
pub mod job;
pub mod log;
pub mod queue;
pub mod run;

pub use run::{run, Options};
