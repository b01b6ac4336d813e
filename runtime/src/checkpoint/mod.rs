//! Checkpoints: what they record ([`metadata`]), when they are taken and
//! when one is complete ([`coordinator`], pure), and where they live on
//! disk ([`store`]).
//!
//! A checkpoint directory holds `chk-<id>` (periodic) and `savepoint-<id>`
//! directories; each is written as `<name>.inprogress` by the tasks (their
//! state snapshots), then made complete by writing `_metadata` atomically
//! and renaming the directory. Only complete ones with verified files are
//! ever restored.

pub mod coordinator;
pub mod metadata;
pub mod store;

pub use coordinator::{Coordinator, Kind, TaskId, Timing};
pub use metadata::{Metadata, OperatorSnapshot, SourcePosition, StateFiles, TaskSnapshot};
pub use store::{Committer, Store};
