//! Permanent failures into DSNs: to the sender, or for null-sender mail to
//! `doublebounceto` (with qmail's double-bounce sender `#@[]`, which never
//! bounces again), or dropped with a log line. Never a bounce loop.

use std::io;
use std::path::Path;

use rgqueue::dsn::{self, Bounce, Failed};
use rgqueue::state::Status;
use rgspool::SpoolWriter;

use crate::config::Config;
use crate::log;
use crate::queue::{now, Msg};

/// qmail's double-bounce sender: `remote` sends it as `<>`, and its own
/// failures are only logged.
pub const DOUBLE_BOUNCE: &[u8] = b"#@[]";

fn io_err(e: rgspool::QueueError) -> io::Error {
    io::Error::other(e.msg)
}

/// Write the DSN for `m`'s failed recipients as `new/NAME`; Ok(false) when
/// it is dropped instead (logged).
pub fn write(
    spooldir: &Path,
    cfg: &Config,
    id: &str,
    spoolfile: &Path,
    m: &Msg,
    name: &str,
) -> io::Result<bool> {
    let failed: Vec<usize> = (0..m.rcpts.len())
        .filter(|&i| m.state.rcpts[i].status == Status::Failed)
        .collect();
    let (to, env_sender): (Vec<u8>, &[u8]) = if m.sender == DOUBLE_BOUNCE {
        log::dropped(id, failed.len(), "a double bounce failed");
        return Ok(false);
    } else if m.sender.is_empty() {
        match &cfg.doublebounceto {
            Some(to) => (to.as_bytes().to_vec(), DOUBLE_BOUNCE),
            None => {
                log::dropped(id, failed.len(), "null sender and no doublebounceto");
                return Ok(false);
            }
        }
    } else {
        (m.sender.clone(), b"")
    };
    let original = rgspool::read(spoolfile)?.message;
    let items: Vec<Failed> = failed
        .iter()
        .map(|&i| Failed {
            rcpt: &m.rcpts[i],
            reply: &m.state.rcpts[i].reply,
            host: &m.state.rcpts[i].host,
        })
        .collect();
    let text = dsn::build(&Bounce {
        me: &cfg.me,
        from: &cfg.bouncefrom,
        to: &to,
        id,
        original_sender: &m.sender,
        arrival: m.state.created,
        now: now(),
        failed: &items,
        original: &original,
    });
    let mut w = SpoolWriter::create(spooldir).map_err(io_err)?;
    w.write(&text).map_err(io_err)?;
    let env = rgspool::envelope(env_sender, &[&to]);
    w.commit_named(&env, name).map_err(io_err)?;
    log::bounce(id, name, &to, failed.len());
    Ok(true)
}
