//! The service: lock the spool, recover, then loop: notice new messages
//! (inotify on `new/`, a full rescan every minute), start due attempts,
//! collect results, settle messages; signals through a signalfd.

use std::cmp::Reverse;
use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use rgcore::Failure;

use crate::config::{remote_program, Config};
use crate::dispatch::Dispatch;
use crate::job::{Job, Result};
use crate::log;
use crate::queue::{now, Queue};

const RESCAN: Duration = Duration::from_secs(60);
/// qmail-clean's job: temp files older than this are a crashed writer's.
const TMP_AGE: u64 = 86_400;

pub struct Options {
    pub spooldir: PathBuf,
    pub controldir: PathBuf,
    /// `-1`: one pass over all due work, then exit.
    pub once: bool,
}

struct Deliver {
    opts: Options,
    cfg: Config,
    prog: PathBuf,
    q: Queue,
    d: Dispatch,
    stopping: bool,
    /// remotes whose results are in but which have not exited yet.
    reaping: Vec<std::process::Child>,
}

fn lock(spooldir: &Path) -> std::result::Result<Flock<File>, Failure> {
    let path = spooldir.join("lock");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Failure::io(&format!("open {}", path.display()), &e))?;
    Flock::lock(f, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
        Failure::temp(format!(
            "unable to lock {}: {} (is another deliver running?)",
            path.display(),
            e.desc()
        ))
    })
}

/// Run until SIGTERM (or, with `once`, until no work is due).
pub fn run(opts: Options) -> std::result::Result<(), Failure> {
    let cfg = Config::read(&opts.controldir)?;
    let mut q = Queue::new(&opts.spooldir);
    let sd = opts.spooldir.display().to_string();
    q.prepare()
        .map_err(|e| Failure::io(&format!("use spool directory {sd}"), &e))?;
    let _lock = lock(&opts.spooldir)?;
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGALRM,
        Signal::SIGHUP,
        Signal::SIGTERM,
        Signal::SIGINT,
    ] {
        mask.add(s);
    }
    mask.thread_block()
        .map_err(|e| Failure::temp(format!("unable to block signals: {}", e.desc())))?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| Failure::temp(format!("unable to make a signalfd: {}", e.desc())))?;
    let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
        .and_then(|i| {
            let flags = AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CLOSE_WRITE;
            i.add_watch(&opts.spooldir.join("new"), flags).map(|_| i)
        })
        .map_err(|e| Failure::temp(format!("unable to watch {sd}/new: {}", e.desc())))?;
    q.recover()
        .map_err(|e| Failure::io(&format!("recover {sd}/info"), &e))?;
    match q.clean_tmp(TMP_AGE) {
        Ok(0) => {}
        Ok(n) => log::info(&format!("removed {n} stale files from {sd}/tmp")),
        Err(e) => log::warn(&format!("unable to clean {sd}/tmp: {e}")),
    }
    let mut me = Deliver {
        prog: remote_program(),
        opts,
        cfg,
        q,
        d: Dispatch::default(),
        stopping: false,
        reaping: Vec::new(),
    };
    me.q.scan()
        .map_err(|e| Failure::io(&format!("read {sd}/new"), &e))?;
    // recovery first: DSNs of recipients that failed before a crash are
    // rewritten before any new work is taken
    let ids: Vec<String> = me.q.msgs.keys().cloned().collect();
    for id in ids {
        me.q.settle(&id, &me.cfg);
    }
    log::info(&format!(
        "start spool={sd} messages={} concurrency={} perhost={} remote={}",
        me.q.msgs.len(),
        me.cfg.concurrency,
        me.cfg.per_host,
        me.prog.display()
    ));
    me.event_loop(&sfd, &ino);
    log::info(&format!("stop messages={}", me.q.msgs.len()));
    Ok(())
}

impl Deliver {
    fn event_loop(&mut self, sfd: &SignalFd, ino: &Inotify) {
        let mut last_scan = Instant::now();
        loop {
            self.plan_due();
            let failed = self.d.start(&mut self.q, &self.cfg, &self.prog);
            for (job, res) in failed {
                self.record(job, res);
            }
            self.q.sync_new();
            if self.finished() {
                return;
            }
            let timeout = self.timeout(last_scan);
            let (sig, notify, ready) = self.wait(sfd, ino, timeout);
            if sig {
                self.signals(sfd);
            }
            if notify {
                self.notified(ino);
            }
            // free the slots first and refill them, then record: the next
            // attempts start while this one's files are written
            let mut done = Vec::new();
            for k in ready.into_iter().rev() {
                if self.d.running[k].read_some() {
                    let r = self.d.running.swap_remove(k);
                    self.d.release(&r.job);
                    let (job, res, child) = r.finish();
                    self.reaping.extend(child);
                    done.push((job, res));
                }
            }
            if !done.is_empty() && !self.stopping {
                let failed = self.d.start(&mut self.q, &self.cfg, &self.prog);
                done.extend(failed);
            }
            for (job, res) in done {
                self.record(job, res);
            }
            self.reaping
                .retain_mut(|c| matches!(c.try_wait(), Ok(None)));
            if last_scan.elapsed() >= RESCAN && !self.stopping {
                last_scan = Instant::now();
                self.rescan();
            }
        }
    }

    fn finished(&mut self) -> bool {
        if self.stopping || self.opts.once {
            self.reaping
                .retain_mut(|c| matches!(c.try_wait(), Ok(None)));
        }
        if self.stopping {
            return self.d.running.is_empty() && self.reap_all();
        }
        self.opts.once
            && self.d.idle()
            && self.q.next_due().is_none_or(|t| t > now())
            && self.reap_all()
    }

    /// Wait for the remotes that are closing their connections: deliver
    /// leaves no child behind when it exits.
    fn reap_all(&mut self) -> bool {
        for mut c in self.reaping.drain(..) {
            let _ = c.wait();
        }
        true
    }

    fn timeout(&self, last_scan: Instant) -> Duration {
        let mut t = RESCAN.saturating_sub(last_scan.elapsed());
        if !self.stopping {
            if let Some(due) = self.q.next_due() {
                t = t.min(Duration::from_secs(due.saturating_sub(now())));
            }
        }
        // a due time inside the current second is rechecked promptly
        t.max(Duration::from_millis(if t.is_zero() { 0 } else { 50 }))
    }

    /// Wait for a signal, an inotify event or output of a running remote.
    fn wait(&self, sfd: &SignalFd, ino: &Inotify, t: Duration) -> (bool, bool, Vec<usize>) {
        let mut fds = vec![
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(ino.as_fd(), PollFlags::POLLIN),
        ];
        for r in &self.d.running {
            fds.push(PollFd::new(r.out.as_fd(), PollFlags::POLLIN));
        }
        let ms =
            PollTimeout::try_from(t.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX);
        if poll(&mut fds, ms).is_err() {
            return (false, false, Vec::new());
        }
        let hit = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
        let ready = fds[2..]
            .iter()
            .enumerate()
            .filter(|(_, f)| hit(f))
            .map(|(k, _)| k)
            .collect();
        (hit(&fds[0]), hit(&fds[1]), ready)
    }

    fn signals(&mut self, sfd: &SignalFd) {
        while let Ok(Some(si)) = sfd.read_signal() {
            match Signal::try_from(si.ssi_signo as i32) {
                Ok(Signal::SIGALRM) => {
                    log::info("SIGALRM: every waiting recipient is due now");
                    self.q.all_due_now();
                }
                Ok(Signal::SIGHUP) => match Config::read(&self.opts.controldir) {
                    Ok(c) => {
                        log::info("SIGHUP: control files reread");
                        self.cfg = c;
                    }
                    Err(f) => log::warn(&format!("SIGHUP: keeping the old controls: {}", f.msg)),
                },
                Ok(Signal::SIGTERM | Signal::SIGINT) => {
                    log::info(&format!(
                        "stopping: waiting for {} attempts in flight",
                        self.d.running.len()
                    ));
                    self.stopping = true;
                    self.d.drop_waiting();
                }
                _ => {}
            }
        }
    }

    fn notified(&mut self, ino: &Inotify) {
        let mut overflow = false;
        while let Ok(events) = ino.read_events() {
            if events.is_empty() {
                break;
            }
            for ev in events {
                if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    overflow = true;
                } else if let Some(name) = ev.name.as_ref().and_then(|n| n.to_str()) {
                    if !self.stopping {
                        self.q.load(name);
                    }
                }
            }
        }
        if overflow {
            self.rescan();
        }
    }

    fn rescan(&mut self) {
        if let Err(e) = self.q.scan() {
            log::warn(&format!(
                "unable to read {}/new: {e}",
                self.q.spooldir.display()
            ));
        }
        if let Err(e) = self.q.clean_tmp(TMP_AGE) {
            log::warn(&format!(
                "unable to clean {}/tmp: {e}",
                self.q.spooldir.display()
            ));
        }
    }

    /// Pop every message that is due and plan its attempts.
    fn plan_due(&mut self) {
        if self.stopping {
            return;
        }
        let t = now();
        while let Some(Reverse((due, _))) = self.q.due.peek() {
            if *due > t {
                break;
            }
            let Some(Reverse((_, id))) = self.q.due.pop() else {
                break;
            };
            if self.q.msgs.contains_key(&id) {
                self.q.settle(&id, &self.cfg);
                self.d.plan(&mut self.q, &id, &self.cfg);
            }
        }
    }

    /// Results of one attempt into the queue.
    fn record(&mut self, job: Job, res: Vec<Result>) {
        let route = job.route.kind();
        for (&i, r) in job.rcpts.iter().zip(&res) {
            self.q.apply(&job.id, i, r, route, &self.cfg);
        }
        self.q.settle(&job.id, &self.cfg);
        if let Some(m) = self.q.msgs.get(&job.id) {
            let next = m
                .state
                .rcpts
                .iter()
                .zip(&m.busy)
                .filter(|(r, b)| r.status == rgqueue::state::Status::Pending && !**b)
                .map(|(r, _)| r.next)
                .min();
            if let Some(n) = next {
                self.q.due.push(Reverse((n, job.id.clone())));
            }
        }
    }
}
