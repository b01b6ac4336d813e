//! When to take checkpoints and when one is complete: a plain state
//! machine, driven by the executor with the clock and the tasks' answers,
//! free of I/O and threads.
//!
//! One checkpoint is in flight at a time. A periodic checkpoint starts
//! `interval` after the previous one started (and not sooner than
//! `min_pause` after it ended); a requested savepoint starts as soon as
//! nothing is in flight. A checkpoint completes when every task has
//! acknowledged it; a decline, a timeout, or a source that finishes before
//! injecting the barrier aborts it. Once a source has finished no periodic
//! checkpoint starts: the rest of the input is covered by the final
//! checkpoint written when the job ends.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A task: its stage and subtask.
pub type TaskId = (u32, u32);

/// What a checkpoint is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Periodic, for recovery; pruned when newer ones complete.
    Checkpoint,
    /// Requested; kept until removed by hand.
    Savepoint,
    /// Requested on stop: after it the job ends without draining.
    StopWithSavepoint,
}

impl Kind {
    /// Whether it is retained as a savepoint.
    pub fn is_savepoint(self) -> bool {
        !matches!(self, Kind::Checkpoint)
    }
}

/// Timing of checkpoints, ms.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Between the starts of two periodic checkpoints.
    pub interval: i64,
    /// Shortest time between the end of one checkpoint and the start of the next.
    pub min_pause: i64,
    /// A checkpoint not complete after this long is aborted.
    pub timeout: i64,
}

/// What the executor must do.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<S> {
    /// Inject barrier `id` into every source.
    Trigger {
        /// The checkpoint.
        id: u64,
        /// Its kind.
        kind: Kind,
    },
    /// Every task acknowledged: persist the metadata, then commit the sinks.
    Complete {
        /// The checkpoint.
        id: u64,
        /// Its kind.
        kind: Kind,
        /// Each task's snapshot.
        snapshots: BTreeMap<TaskId, S>,
    },
    /// The checkpoint failed; processing goes on.
    Abort {
        /// The checkpoint.
        id: u64,
        /// Its kind.
        kind: Kind,
        /// Why.
        reason: String,
    },
}

struct InFlight<S> {
    id: u64,
    kind: Kind,
    started: i64,
    waiting: BTreeSet<TaskId>,
    acks: BTreeMap<TaskId, S>,
}

/// The checkpoint coordinator of one job.
pub struct Coordinator<S> {
    timing: Timing,
    tasks: BTreeSet<TaskId>,
    sources: BTreeSet<TaskId>,
    next_id: u64,
    in_flight: Option<InFlight<S>>,
    last_start: i64,
    last_end: i64,
    requests: VecDeque<Kind>,
    finished_source: Option<TaskId>,
}

impl<S> Coordinator<S> {
    /// Coordinates `tasks`, of which `sources` read sources; the first
    /// checkpoint gets `first_id` (one past the one restored from). `now`
    /// counts as the start of the previous checkpoint.
    pub fn new(timing: Timing, tasks: BTreeSet<TaskId>, sources: BTreeSet<TaskId>, first_id: u64, now: i64) -> Self {
        Coordinator {
            timing,
            tasks,
            sources,
            next_id: first_id,
            in_flight: None,
            last_start: now,
            last_end: now,
            requests: VecDeque::new(),
            finished_source: None,
        }
    }

    /// The id the next checkpoint will get.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// The checkpoint in flight, if any.
    pub fn in_flight(&self) -> Option<(u64, Kind)> {
        self.in_flight.as_ref().map(|f| (f.id, f.kind))
    }

    /// Asks for a savepoint. Refused once a source has finished (its
    /// position can no longer carry a barrier).
    pub fn request(&mut self, kind: Kind) -> Result<(), String> {
        if let Some((stage, subtask)) = self.finished_source {
            return Err(format!(
                "source subtask {subtask} (stage {stage}) has finished reading; the job is in its final phase"
            ));
        }
        self.requests.push_back(kind);
        Ok(())
    }

    /// What to do at `now`: start a checkpoint or abort one that timed out.
    pub fn poll(&mut self, now: i64) -> Option<Action<S>> {
        if let Some(f) = &self.in_flight {
            if now - f.started >= self.timing.timeout {
                let reason =
                    format!("not acknowledged within {} ms by {} task(s)", self.timing.timeout, f.waiting.len());
                return self.abort(now, reason);
            }
            return None;
        }
        if self.finished_source.is_some() {
            return None;
        }
        let kind = if let Some(kind) = self.requests.pop_front() {
            kind
        } else if now - self.last_start >= self.timing.interval && now - self.last_end >= self.timing.min_pause {
            Kind::Checkpoint
        } else {
            return None;
        };
        let id = self.next_id;
        self.next_id += 1;
        self.last_start = now;
        self.in_flight = Some(InFlight { id, kind, started: now, waiting: self.tasks.clone(), acks: BTreeMap::new() });
        Some(Action::Trigger { id, kind })
    }

    /// `task` took its snapshot for checkpoint `id`.
    pub fn ack(&mut self, task: TaskId, id: u64, snapshot: S, now: i64) -> Option<Action<S>> {
        let f = self.in_flight.as_mut().filter(|f| f.id == id)?;
        if !f.waiting.remove(&task) {
            return None;
        }
        f.acks.insert(task, snapshot);
        if !f.waiting.is_empty() {
            return None;
        }
        let f = self.in_flight.take().expect("checked above");
        self.last_end = now;
        Some(Action::Complete { id: f.id, kind: f.kind, snapshots: f.acks })
    }

    /// `task` could not take its snapshot for checkpoint `id`.
    pub fn decline(&mut self, task: TaskId, id: u64, reason: &str, now: i64) -> Option<Action<S>> {
        self.in_flight.as_ref().filter(|f| f.id == id && f.waiting.contains(&task))?;
        self.abort(now, format!("task {}/{} declined: {reason}", task.0, task.1))
    }

    /// A source finished reading: no periodic checkpoint starts any more,
    /// and one in flight that the source did not reach is aborted.
    pub fn source_finished(&mut self, task: TaskId, now: i64) -> Option<Action<S>> {
        if !self.sources.contains(&task) {
            return None;
        }
        self.finished_source.get_or_insert(task);
        self.in_flight.as_ref().filter(|f| f.waiting.contains(&task))?;
        self.abort(now, format!("source subtask {} finished before the barrier reached it", task.1))
    }

    fn abort(&mut self, now: i64, reason: String) -> Option<Action<S>> {
        let f = self.in_flight.take()?;
        self.last_end = now;
        // A requested savepoint is not retried: the request is answered with the failure.
        Some(Action::Abort { id: f.id, kind: f.kind, reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: Timing = Timing { interval: 1000, min_pause: 100, timeout: 10_000 };

    fn coordinator() -> Coordinator<&'static str> {
        let tasks: BTreeSet<TaskId> = [(0, 0), (0, 1), (1, 0), (1, 1)].into();
        let sources: BTreeSet<TaskId> = [(0, 0), (0, 1)].into();
        Coordinator::new(TIMING, tasks, sources, 1, 0)
    }

    #[test]
    fn completes_when_every_task_acknowledged() {
        let mut c = coordinator();
        assert_eq!(c.poll(999), None);
        assert_eq!(c.poll(1000), Some(Action::Trigger { id: 1, kind: Kind::Checkpoint }));
        assert_eq!(c.poll(1500), None, "one checkpoint in flight at a time");
        assert_eq!(c.ack((0, 0), 1, "a", 1100), None);
        assert_eq!(c.ack((0, 0), 1, "again", 1100), None, "a repeated ack changes nothing");
        assert_eq!(c.ack((0, 1), 7, "wrong id", 1100), None);
        assert_eq!(c.ack((0, 1), 1, "b", 1100), None);
        assert_eq!(c.ack((1, 0), 1, "c", 1200), None);
        let Some(Action::Complete { id: 1, kind: Kind::Checkpoint, snapshots }) = c.ack((1, 1), 1, "d", 1300) else {
            panic!("complete expected")
        };
        assert_eq!(snapshots.values().copied().collect::<Vec<_>>(), ["a", "b", "c", "d"]);
        assert_eq!(c.in_flight(), None);
        // The next one is due an interval after the previous start.
        assert_eq!(c.poll(1999), None);
        assert_eq!(c.poll(2000), Some(Action::Trigger { id: 2, kind: Kind::Checkpoint }));
    }

    #[test]
    fn a_slow_checkpoint_is_followed_by_a_pause() {
        let mut c = coordinator();
        c.poll(1000);
        for t in [(0, 0), (0, 1), (1, 0)] {
            c.ack(t, 1, "", 2500);
        }
        assert!(matches!(c.ack((1, 1), 1, "", 2950), Some(Action::Complete { .. })));
        assert_eq!(c.poll(3000), None, "min pause after the end");
        assert_eq!(c.poll(3050), Some(Action::Trigger { id: 2, kind: Kind::Checkpoint }));
    }

    #[test]
    fn declines_and_timeouts_abort_and_processing_goes_on() {
        let mut c = coordinator();
        c.poll(1000);
        c.ack((0, 0), 1, "", 1001);
        let Some(Action::Abort { id: 1, reason, .. }) = c.decline((1, 1), 1, "disk full", 1002) else { panic!() };
        assert!(reason.contains("task 1/1 declined: disk full"), "{reason}");
        assert_eq!(c.ack((0, 1), 1, "late ack", 1003), None, "acks of an aborted checkpoint are ignored");
        assert_eq!(c.poll(2000), Some(Action::Trigger { id: 2, kind: Kind::Checkpoint }));
        let Some(Action::Abort { id: 2, reason, .. }) = c.poll(12_000) else { panic!() };
        assert!(reason.contains("not acknowledged within 10000 ms by 4 task(s)"), "{reason}");
        assert_eq!(c.poll(13_000), Some(Action::Trigger { id: 3, kind: Kind::Checkpoint }));
    }

    #[test]
    fn savepoints_wait_for_the_checkpoint_in_flight_then_start_at_once() {
        let mut c = coordinator();
        c.poll(1000);
        c.request(Kind::Savepoint).unwrap();
        assert_eq!(c.poll(1001), None);
        for t in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            c.ack(t, 1, "", 1002);
        }
        assert_eq!(c.poll(1003), Some(Action::Trigger { id: 2, kind: Kind::Savepoint }));
        assert!(Kind::Savepoint.is_savepoint() && Kind::StopWithSavepoint.is_savepoint());
        assert!(!Kind::Checkpoint.is_savepoint());
    }

    #[test]
    fn a_finished_source_ends_periodic_checkpoints() {
        let mut c = coordinator();
        c.poll(1000);
        c.ack((0, 0), 1, "", 1001);
        // Source 0 acked (its barrier is out), so source 1 finishing is what blocks the checkpoint.
        let Some(Action::Abort { id: 1, reason, .. }) = c.source_finished((0, 1), 1002) else { panic!() };
        assert!(reason.contains("source subtask 1 finished"), "{reason}");
        assert_eq!(c.poll(5000), None);
        assert!(c.request(Kind::Savepoint).unwrap_err().contains("finished reading"));
        assert_eq!(c.source_finished((1, 0), 5001), None, "not a source");
        assert_eq!(c.next_id(), 2);
    }

    #[test]
    fn a_source_finishing_after_its_ack_does_not_abort() {
        let mut c = coordinator();
        c.poll(1000);
        c.ack((0, 0), 1, "", 1001);
        assert_eq!(c.source_finished((0, 0), 1002), None);
        for t in [(0, 1), (1, 0)] {
            c.ack(t, 1, "", 1003);
        }
        assert!(matches!(c.ack((1, 1), 1, "", 1004), Some(Action::Complete { id: 1, .. })));
    }
}
