//! Attempts waiting for a slot and attempts running: `concurrencyremote`
//! in all, `concurrencyperhost` per next hop, taken round-robin over the
//! next hops so one slow destination cannot starve the others.

use std::cmp::Reverse;
use std::collections::{HashMap, VecDeque};
use std::path::Path;

use rgqueue::route::domain_of;
use rgqueue::state::Status;

use crate::config::Config;
use crate::job::{self, Job, Running};
use crate::queue::{now, Queue};

/// Recipients per attempt at most (qmail-remote takes any number; a bound
/// keeps argv and one hop's transaction reasonable).
const MAX_RCPTS: usize = 100;

#[derive(Default)]
pub struct Dispatch {
    waiting: HashMap<String, VecDeque<Job>>,
    order: VecDeque<String>,
    pub running: Vec<Running>,
    per_host: HashMap<String, usize>,
}

impl Dispatch {
    pub fn idle(&self) -> bool {
        self.running.is_empty() && self.waiting.is_empty()
    }

    /// Plan the due recipients of message `id`: group them by route into
    /// jobs, mark them busy, and queue the jobs.
    pub fn plan(&mut self, q: &mut Queue, id: &str, cfg: &Config) {
        let t = now();
        let Some(m) = q.msgs.get_mut(id) else { return };
        let mut groups: Vec<Job> = Vec::new();
        let mut later: Option<u64> = None;
        for (i, r) in m.state.rcpts.iter().enumerate() {
            if r.status != Status::Pending || m.busy[i] {
                continue;
            }
            if r.next > t {
                later = Some(later.map_or(r.next, |l| l.min(r.next)));
                continue;
            }
            let rcpt = String::from_utf8_lossy(&m.rcpts[i]);
            let route = cfg.routes.route(domain_of(&rcpt, &cfg.me));
            m.busy[i] = true;
            match groups
                .iter_mut()
                .find(|j| j.route == route && j.rcpts.len() < MAX_RCPTS)
            {
                Some(j) => j.rcpts.push(i),
                None => groups.push(Job {
                    id: id.to_string(),
                    route,
                    rcpts: vec![i],
                }),
            }
        }
        if let Some(l) = later {
            q.due.push(Reverse((l, id.to_string())));
        }
        for job in groups {
            let key = job.route.to_string();
            let w = self.waiting.entry(key.clone()).or_default();
            if w.is_empty() {
                self.order.push_back(key);
            }
            w.push_back(job);
        }
    }

    /// Start waiting jobs while there are slots. Jobs that cannot start
    /// (remote missing, no spool file) end at once with a temporary result.
    pub fn start(
        &mut self,
        q: &mut Queue,
        cfg: &Config,
        prog: &Path,
    ) -> Vec<(Job, Vec<job::Result>)> {
        let mut failed = Vec::new();
        let mut skipped = 0;
        while self.running.len() < cfg.concurrency && skipped < self.order.len() {
            let Some(key) = self.order.pop_front() else {
                break;
            };
            let busy = self.per_host.get(&key).copied().unwrap_or(0);
            if busy >= cfg.per_host {
                self.order.push_back(key);
                skipped += 1;
                continue;
            }
            skipped = 0;
            let Some(job) = self.waiting.get_mut(&key).and_then(VecDeque::pop_front) else {
                self.waiting.remove(&key);
                continue;
            };
            if self.waiting.get(&key).is_some_and(|w| !w.is_empty()) {
                self.order.push_back(key.clone());
            } else {
                self.waiting.remove(&key);
            }
            match self.spawn(q, job, prog) {
                Ok(r) => {
                    *self.per_host.entry(key).or_default() += 1;
                    self.running.push(r);
                }
                Err((job, why)) => {
                    let n = job.rcpts.len();
                    failed.push((job, vec![job::Result::temp(&why); n]));
                }
            }
        }
        failed
    }

    fn spawn(&self, q: &Queue, job: Job, prog: &Path) -> Result<Running, (Job, String)> {
        let Some(m) = q.msgs.get(&job.id) else {
            return Err((job, "4.3.0 message vanished".into()));
        };
        let rcpts: Vec<&[u8]> = job.rcpts.iter().map(|&i| m.rcpts[i].as_slice()).collect();
        let path = q.new_path(&job.id);
        let sender = m.sender.clone();
        job::spawn(prog, job.clone(), &path, &sender, &rcpts)
            .map_err(|e| (job, format!("4.3.0 unable to run {}: {e}", prog.display())))
    }

    /// A running job finished: free its slot.
    pub fn release(&mut self, job: &Job) {
        let key = job.route.to_string();
        if let Some(n) = self.per_host.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_host.remove(&key);
            }
        }
    }

    /// SIGTERM: forget what has not started (it stays pending on disk).
    pub fn drop_waiting(&mut self) {
        self.waiting.clear();
        self.order.clear();
    }
}
