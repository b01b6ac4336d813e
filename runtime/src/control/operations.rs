//! Long operations of `weir serve`: stopping a pipeline at a savepoint,
//! taking a savepoint, swapping a step's function. Each may wait on
//! checkpoints for a minute or more, so the request that starts one checks
//! what it can at once (a bad request is still a 4xx), is answered `202`
//! with the operation, and the waiting goes on in a thread of the server;
//! `GET /v1/operations/ID` says where it stands and, once it is over, what
//! it did (the result a synchronous call would have returned) or why it
//! failed.
//!
//! The rules, kept here free of threads and I/O (the clock is passed in):
//! - one running operation of a kind per pipeline: a second stop, savepoint
//!   or swap of the same pipeline is refused (`409`, naming the running
//!   one) instead of queueing behind it, so no request waits on another;
//! - a tenant sees only its own operations;
//! - every running operation is kept, and the newest
//!   [`FINISHED_PER_TENANT`] finished ones per tenant: a tenant starting
//!   operations in a loop cannot grow the server's memory.
//!
//! Operations live in memory: a server restart forgets them (a stop or swap
//! under way then is given up as the pipeline restarts from its newest
//! complete checkpoint, which is what a poller sees on the pipeline).

use super::{ControlError, ErrorKind};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

/// Finished operations kept per tenant (the oldest go first).
pub const FINISHED_PER_TENANT: usize = 100;

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// `POST /v1/pipelines/{id}/stop`.
    Stop,
    /// `POST /v1/pipelines/{id}/savepoints`.
    Savepoint,
    /// `PUT /v1/pipelines/{id}/steps/{step}`.
    Swap,
}

impl OperationKind {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::Stop => "stop",
            OperationKind::Savepoint => "savepoint",
            OperationKind::Swap => "swap",
        }
    }
}

/// Where an operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationState {
    /// Under way.
    Running,
    /// Over; `result` says what it did.
    Done,
    /// Over; `error` says why it could not do it.
    Failed,
}

/// Why an operation failed: the error a synchronous call would have returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperationError {
    /// The HTTP status that error has.
    pub status: u16,
    /// A stable code.
    pub code: String,
    /// For people.
    pub message: String,
}

impl From<&ControlError> for OperationError {
    fn from(e: &ControlError) -> Self {
        OperationError { status: e.kind.status(), code: e.code.to_string(), message: e.message.clone() }
    }
}

/// An operation as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperationView {
    /// Its id (`op-` and 24 hex digits).
    pub id: String,
    /// What it does.
    pub kind: OperationKind,
    /// The pipeline it works on.
    pub pipeline: String,
    /// Where it stands.
    pub state: OperationState,
    /// When it was asked for, ms since the epoch.
    pub started_ms: i64,
    /// When it ended, ms since the epoch.
    pub finished_ms: Option<i64>,
    /// What it did (`done`): the stopped pipeline, the savepoint, the swap's outcome.
    pub result: Option<serde_json::Value>,
    /// Why it failed (`failed`).
    pub error: Option<OperationError>,
}

struct Entry {
    tenant: String,
    view: OperationView,
}

/// The operations of this server.
#[derive(Default)]
pub struct Operations {
    ops: BTreeMap<String, Entry>,
    /// Finished operations per tenant, oldest first.
    finished: BTreeMap<String, VecDeque<String>>,
}

impl Operations {
    /// Registers a running operation `id` of `tenant` on `pipeline`; refused
    /// while one of the same kind runs on that pipeline.
    pub fn begin(
        &mut self,
        id: String,
        tenant: &str,
        kind: OperationKind,
        pipeline: &str,
        now_ms: i64,
    ) -> Result<OperationView, ControlError> {
        if let Some(e) = self
            .ops
            .values()
            .find(|e| e.view.state == OperationState::Running && e.view.kind == kind && e.view.pipeline == pipeline)
        {
            return Err(ControlError::new(
                ErrorKind::Conflict,
                "operation_under_way",
                format!(
                    "pipeline {pipeline} has a {} under way: operation {} (GET /v1/operations/{})",
                    kind.as_str(),
                    e.view.id,
                    e.view.id
                ),
            ));
        }
        let view = OperationView {
            id: id.clone(),
            kind,
            pipeline: pipeline.to_string(),
            state: OperationState::Running,
            started_ms: now_ms,
            finished_ms: None,
            result: None,
            error: None,
        };
        self.ops.insert(id, Entry { tenant: tenant.to_string(), view: view.clone() });
        Ok(view)
    }

    /// Forgets a running operation whose request was refused before it started.
    pub fn abandon(&mut self, id: &str) {
        if self.ops.get(id).is_some_and(|e| e.view.state == OperationState::Running) {
            self.ops.remove(id);
        }
    }

    /// Ends operation `id` with what it did or why it failed; returns its view.
    pub fn finish(
        &mut self,
        id: &str,
        outcome: Result<serde_json::Value, &ControlError>,
        now_ms: i64,
    ) -> Option<OperationView> {
        let e = self.ops.get_mut(id)?;
        if e.view.state != OperationState::Running {
            return Some(e.view.clone());
        }
        e.view.finished_ms = Some(now_ms);
        match outcome {
            Ok(v) => {
                e.view.state = OperationState::Done;
                e.view.result = Some(v);
            }
            Err(err) => {
                e.view.state = OperationState::Failed;
                e.view.error = Some(err.into());
            }
        }
        let view = e.view.clone();
        let done = self.finished.entry(e.tenant.clone()).or_default();
        done.push_back(id.to_string());
        while done.len() > FINISHED_PER_TENANT {
            if let Some(old) = done.pop_front() {
                self.ops.remove(&old);
            }
        }
        Some(view)
    }

    /// Operation `id` if `tenant` owns it.
    pub fn get(&self, tenant: &str, id: &str) -> Option<OperationView> {
        self.ops.get(id).filter(|e| e.tenant == tenant).map(|e| e.view.clone())
    }

    /// `tenant`'s operations, newest first.
    pub fn list(&self, tenant: &str) -> Vec<OperationView> {
        let mut v: Vec<OperationView> =
            self.ops.values().filter(|e| e.tenant == tenant).map(|e| e.view.clone()).collect();
        v.sort_by(|a, b| b.started_ms.cmp(&a.started_ms).then_with(|| b.id.cmp(&a.id)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn begin(
        ops: &mut Operations,
        id: &str,
        tenant: &str,
        kind: OperationKind,
        p: &str,
    ) -> Result<OperationView, ControlError> {
        ops.begin(id.into(), tenant, kind, p, 1)
    }

    #[test]
    fn a_second_operation_of_a_kind_on_a_pipeline_is_refused_naming_the_first() {
        let mut ops = Operations::default();
        begin(&mut ops, "op-1", "t", OperationKind::Swap, "p-a").unwrap();
        let e = begin(&mut ops, "op-2", "t", OperationKind::Swap, "p-a").unwrap_err();
        assert_eq!((e.kind, e.code), (ErrorKind::Conflict, "operation_under_way"));
        assert!(e.message.contains("swap under way: operation op-1"), "{}", e.message);
        begin(&mut ops, "op-3", "t", OperationKind::Savepoint, "p-a").expect("another kind may run");
        begin(&mut ops, "op-4", "t", OperationKind::Swap, "p-b").expect("another pipeline may swap");
        ops.finish("op-1", Ok(json!({"outcome": "swapped"})), 2);
        begin(&mut ops, "op-5", "t", OperationKind::Swap, "p-a").expect("the first is over");
    }

    #[test]
    fn a_refused_request_leaves_no_operation_behind() {
        let mut ops = Operations::default();
        begin(&mut ops, "op-1", "t", OperationKind::Stop, "p-a").unwrap();
        ops.abandon("op-1");
        assert_eq!(ops.get("t", "op-1"), None);
        begin(&mut ops, "op-2", "t", OperationKind::Stop, "p-a").expect("nothing runs");
    }

    #[test]
    fn the_outcome_is_kept_with_the_status_a_synchronous_call_would_have_had() {
        let mut ops = Operations::default();
        begin(&mut ops, "op-1", "t", OperationKind::Savepoint, "p-a").unwrap();
        begin(&mut ops, "op-2", "t", OperationKind::Stop, "p-a").unwrap();
        ops.finish("op-1", Ok(json!({"savepoint": "savepoint-3"})), 5);
        ops.finish("op-2", Err(&ControlError::conflict("pipeline p-a stopped")), 6);
        let one = ops.get("t", "op-1").unwrap();
        assert_eq!((one.state, one.finished_ms), (OperationState::Done, Some(5)));
        assert_eq!(one.result, Some(json!({"savepoint": "savepoint-3"})));
        let two = ops.get("t", "op-2").unwrap();
        assert_eq!(two.state, OperationState::Failed);
        assert_eq!(two.error.unwrap().status, 409);
        ops.finish("op-1", Err(&ControlError::internal("late")), 9);
        assert_eq!(ops.get("t", "op-1").unwrap().state, OperationState::Done, "an outcome is final");
    }

    #[test]
    fn a_tenant_sees_only_its_own_operations() {
        let mut ops = Operations::default();
        begin(&mut ops, "op-1", "t1", OperationKind::Stop, "p-a").unwrap();
        assert_eq!(ops.get("t2", "op-1"), None);
        assert!(ops.list("t2").is_empty());
        assert_eq!(ops.list("t1").len(), 1);
    }

    /// The attack: starting savepoints in a loop to grow the server's memory.
    #[test]
    fn finished_operations_beyond_the_per_tenant_bound_are_forgotten_oldest_first() {
        let mut ops = Operations::default();
        for i in 0..FINISHED_PER_TENANT + 50 {
            let id = format!("op-{i:04}");
            ops.begin(id.clone(), "t", OperationKind::Savepoint, "p-a", i as i64).unwrap();
            ops.finish(&id, Ok(json!({})), i as i64);
        }
        begin(&mut ops, "op-other", "u", OperationKind::Stop, "p-b").unwrap();
        ops.finish("op-other", Ok(json!({})), 0);
        assert_eq!(ops.list("t").len(), FINISHED_PER_TENANT);
        assert_eq!(ops.get("t", "op-0000"), None, "the oldest went");
        assert!(ops.get("t", &format!("op-{:04}", FINISHED_PER_TENANT + 49)).is_some());
        assert!(ops.get("u", "op-other").is_some(), "another tenant's are not pushed out");
    }
}
