//! The messages deliver knows: loaded from `new/` with their state from
//! `info/`, their due times, results applied, permanent failures turned into
//! DSNs, finished messages removed. Owns every write under `new/` and `info/`
//! except the spool writers' renames into `new/`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rgqueue::schedule::{backoff, expired};
use rgqueue::state::{id_time, State, Status};

use crate::bounce;
use crate::config::Config;
use crate::job::{Outcome, Result};
use crate::log;

/// How long to wait before trying again to write a state or a DSN that
/// could not be written (a full disk, say).
pub const RETRY_WRITE: u64 = 15;

/// One message in the spool.
pub struct Msg {
    pub sender: Vec<u8>,
    pub rcpts: Vec<Vec<u8>>,
    pub state: State,
    /// Recipients in an attempt now.
    pub busy: Vec<bool>,
    /// State changed since it was last written.
    pub dirty: bool,
}

impl Msg {
    pub fn in_flight(&self) -> bool {
        self.busy.iter().any(|&b| b)
    }
}

/// The spool as deliver sees it.
pub struct Queue {
    pub spooldir: PathBuf,
    pub msgs: HashMap<String, Msg>,
    /// (due time, id); stale entries are skipped when popped.
    pub due: BinaryHeap<Reverse<(u64, String)>>,
    /// Files in `new/` that are not valid spool files: logged once.
    damaged: HashSet<String>,
    /// Something was unlinked from `new/` since the last fsync of it.
    pub unsynced: bool,
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

impl Queue {
    pub fn new(spooldir: &Path) -> Queue {
        Queue {
            spooldir: spooldir.to_path_buf(),
            msgs: HashMap::new(),
            due: BinaryHeap::new(),
            damaged: HashSet::new(),
            unsynced: false,
        }
    }

    pub fn new_path(&self, id: &str) -> PathBuf {
        self.spooldir.join("new").join(id)
    }

    pub fn info_path(&self, id: &str) -> PathBuf {
        self.spooldir.join("info").join(id)
    }

    /// Make `info/` if missing.
    pub fn prepare(&self) -> io::Result<()> {
        for d in ["tmp", "new", "info"] {
            match fs::create_dir(self.spooldir.join(d)) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Start-up: drop temp files and the state of finished messages.
    pub fn recover(&mut self) -> io::Result<()> {
        for entry in fs::read_dir(self.spooldir.join("info"))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains(".tmp.") || !self.new_path(&name).exists() {
                remove(&entry.path())?;
            }
        }
        Ok(())
    }

    /// Remove files a crashed writer left in `tmp/` more than `age` seconds ago.
    pub fn clean_tmp(&self, age: u64) -> io::Result<usize> {
        let limit = std::time::SystemTime::now() - std::time::Duration::from_secs(age);
        let mut n = 0;
        for entry in fs::read_dir(self.spooldir.join("tmp"))? {
            let entry = entry?;
            let old = entry.metadata()?.modified()? < limit;
            if old && entry.file_type()?.is_file() {
                remove(&entry.path())?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Every file in `new/` not known yet.
    pub fn scan(&mut self) -> io::Result<()> {
        for path in rgspool::list(&self.spooldir)? {
            if let Some(id) = path.file_name().and_then(|n| n.to_str()) {
                let id = id.to_string();
                self.load(&id);
            }
        }
        Ok(())
    }

    /// Take `new/ID` in, due now (or as its state says).
    pub fn load(&mut self, id: &str) {
        if self.msgs.contains_key(id) || self.damaged.contains(id) || id.starts_with('.') {
            return;
        }
        let meta = match rgspool::read_meta(&self.new_path(id)) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => {
                log::warn(&format!("id={id} skipped: unable to read spool file: {e}"));
                if e.kind() == io::ErrorKind::InvalidData {
                    self.damaged.insert(id.to_string());
                }
                return;
            }
        };
        let n = meta.recipients.len();
        let state = match State::read(&self.info_path(id), n) {
            Ok(Some(s)) => s,
            Ok(None) => State::fresh(self.queued_at(id), n),
            Err(e) => {
                log::warn(&format!(
                    "id={id} skipped for now: unable to read its state: {e}"
                ));
                return;
            }
        };
        let first = state
            .rcpts
            .iter()
            .filter(|r| r.status == Status::Pending)
            .map(|r| r.next)
            .min()
            .unwrap_or(0);
        self.msgs.insert(
            id.to_string(),
            Msg {
                sender: meta.sender,
                rcpts: meta.recipients,
                state,
                busy: vec![false; n],
                dirty: false,
            },
        );
        self.due.push(Reverse((first, id.to_string())));
    }

    /// When `new/ID` was queued: the time in a writer's id; a DSN
    /// (`ID.bN`) carries its message's id, so its own file time counts.
    fn queued_at(&self, id: &str) -> u64 {
        let file_time = || {
            fs::metadata(self.new_path(id))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or_else(now, |d| d.as_secs())
        };
        match id_time(id) {
            Some(t) if id.split('.').count() == 3 => t,
            _ => file_time(),
        }
    }

    /// Record one recipient's result.
    pub fn apply(&mut self, id: &str, i: usize, r: &Result, route: &str, cfg: &Config) {
        let t = now();
        let Some(m) = self.msgs.get_mut(id) else {
            return;
        };
        let Some(rc) = m.state.rcpts.get_mut(i) else {
            return;
        };
        m.busy[i] = false;
        m.dirty = true;
        rc.attempts = rc.attempts.saturating_add(1);
        rc.host = r.host.clone();
        rc.reply = r.reply.clone();
        let status = match r.outcome {
            Outcome::Ok => {
                rc.status = Status::Delivered;
                "delivered"
            }
            Outcome::Perm => {
                rc.status = Status::Failed;
                "bounced"
            }
            Outcome::Temp if expired(m.state.created, t, cfg.lifetime) => {
                rc.status = Status::Failed;
                rc.reply = format!(
                    "4.4.7 message expired after {} seconds in the queue; last reply: {}",
                    t.saturating_sub(m.state.created),
                    r.reply
                );
                "bounced"
            }
            Outcome::Temp => {
                rc.next = t + backoff(rc.attempts);
                "deferred"
            }
        };
        log::attempt(&log::Attempt {
            id,
            rcpt: &m.rcpts[i],
            route,
            result: r,
            status,
            delay: t.saturating_sub(m.state.created),
        });
    }

    /// Bring a message's files up to date: DSNs for failed recipients, the
    /// state file, or the message removed when it is finished. On trouble
    /// the message is due again in RETRY_WRITE seconds.
    pub fn settle(&mut self, id: &str, cfg: &Config) {
        if let Err(e) = self.try_settle(id, cfg) {
            log::warn(&format!(
                "id={id} unable to update the queue: {e}; retrying"
            ));
            self.due
                .push(Reverse((now() + RETRY_WRITE, id.to_string())));
        }
    }

    fn try_settle(&mut self, id: &str, cfg: &Config) -> io::Result<()> {
        let info = self.info_path(id);
        let newp = self.new_path(id);
        let Some(m) = self.msgs.get_mut(id) else {
            return Ok(());
        };
        if m.state.rcpts.iter().any(|r| r.status == Status::Failed) {
            // the failure is on disk before its DSN exists
            if m.dirty {
                m.state.write(&info)?;
                m.dirty = false;
            }
            let name = format!("{id}.b{}", m.state.bounces + 1);
            let written = bounce::write(&self.spooldir, cfg, id, &newp, m, &name)?;
            for r in m
                .state
                .rcpts
                .iter_mut()
                .filter(|r| r.status == Status::Failed)
            {
                r.status = Status::Bounced;
            }
            if written {
                m.state.bounces += 1;
            }
            m.dirty = true;
            if written {
                self.load(&name);
            }
        }
        let Some(m) = self.msgs.get_mut(id) else {
            return Ok(());
        };
        if m.state.is_done() && !m.in_flight() {
            remove(&newp)?;
            remove(&info)?;
            self.msgs.remove(id);
            self.unsynced = true;
        } else if m.dirty {
            m.state.write(&info)?;
            m.dirty = false;
        }
        Ok(())
    }

    /// fsync `new/` after unlinks (once per batch, not per message).
    pub fn sync_new(&mut self) {
        if self.unsynced {
            self.unsynced = false;
            if let Err(e) = rgcore::atomic::fsync_dir(&self.spooldir.join("new")) {
                log::warn(&format!(
                    "unable to sync {}/new: {e}",
                    self.spooldir.display()
                ));
            }
        }
    }

    /// SIGALRM: every waiting recipient is due now.
    pub fn all_due_now(&mut self) {
        for (id, m) in self.msgs.iter_mut() {
            for (r, busy) in m.state.rcpts.iter_mut().zip(&m.busy) {
                if r.status == Status::Pending && !busy {
                    r.next = 0;
                }
            }
            self.due.push(Reverse((0, id.clone())));
        }
    }

    /// The earliest due time, if any.
    pub fn next_due(&self) -> Option<u64> {
        self.due.peek().map(|Reverse((t, _))| *t)
    }
}
