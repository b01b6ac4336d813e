//! The store against a real directory, with a committer that records what
//! it was asked to do.

use super::*;
use crate::checkpoint::metadata::{FileSum, StateFiles};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Calls(Arc<Mutex<Vec<String>>>);

impl Committer for Calls {
    fn commit(&self, id: u64) -> io::Result<()> {
        self.0.lock().unwrap().push(format!("commit {id}"));
        Ok(())
    }
    fn commit_end(&self, id: u64) -> io::Result<()> {
        self.0.lock().unwrap().push(format!("end {id}"));
        Ok(())
    }
    fn recover(&self, id: u64) -> io::Result<()> {
        self.0.lock().unwrap().push(format!("recover {id}"));
        Ok(())
    }
}

fn shape() -> Shape {
    Shape { pipeline: "p".into(), parallelism: 2, max_parallelism: 128, steps: vec![(1, "window".into())] }
}

/// A task snapshot with one state file (written into the in-progress directory).
fn snapshot(root: &Path, id: u64, contents: &[u8]) -> BTreeMap<TaskId, TaskSnapshot> {
    let dir = in_progress_dir(root, id).join("s1-t0-step1");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("state"), contents).unwrap();
    let sum = FileSum { name: "state".into(), len: contents.len() as u64, xxh3: xxhash_rust::xxh3::xxh3_64(contents) };
    let op = OperatorSnapshot {
        step: 1,
        subtask: 0,
        key_groups: (0, 128),
        state: Some(StateFiles { backend: "memory".into(), dir: "s1-t0-step1".into(), files: vec![sum] }),
        meta: vec![],
    };
    let source = TaskSnapshot { source: Some(SourcePosition::File { offset: id, end: 100 }), ..Default::default() };
    let keyed = TaskSnapshot { operators: vec![op], ..Default::default() };
    BTreeMap::from([((0, 0), source), ((1, 0), keyed)])
}

fn names(root: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(root).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn completes_atomically_keeps_two_checkpoints_and_every_savepoint() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let calls = Calls::default();
    let mut store = Store::open(root, shape(), Box::new(calls.clone())).unwrap();
    for id in 1..=4 {
        let kind = if id == 2 { Kind::Savepoint } else { Kind::Checkpoint };
        store.complete(id, kind, snapshot(root, id, b"abc"), 0).unwrap();
    }
    // An abandoned one older than the newest complete is removed at the next completion.
    fs::create_dir_all(in_progress_dir(root, 5)).unwrap();
    store.complete(6, Kind::Checkpoint, snapshot(root, 6, b"abc"), 0).unwrap();
    assert_eq!(names(root), ["chk-0000000004", "chk-0000000006", "savepoint-0000000002"]);
    assert_eq!(*calls.0.lock().unwrap(), ["commit 1", "commit 2", "commit 3", "commit 4", "commit 6"]);

    let mut skipped = Vec::new();
    let newest = latest(root, &mut skipped).unwrap();
    assert!(skipped.is_empty());
    assert_eq!(newest.metadata.id, 6);
    assert_eq!(newest.metadata.sources, [SourcePosition::File { offset: 6, end: 100 }]);
    assert_eq!(newest.metadata.operators.len(), 1);
    store.check_compatible(&newest).unwrap();
}

#[test]
fn corrupt_and_partial_checkpoints_are_skipped_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut store = Store::open(root, shape(), Box::new(Calls::default())).unwrap();
    for id in 1..=3 {
        store.complete(id, Kind::Savepoint, snapshot(root, id, b"state bytes"), 0).unwrap();
    }
    // 3: a state file flipped; 2: metadata cut short; 1 is intact.
    let state = root.join("savepoint-0000000003/s1-t0-step1/state");
    fs::write(&state, b"state bytez").unwrap();
    let meta = root.join("savepoint-0000000002/_metadata");
    let bytes = fs::read(&meta).unwrap();
    fs::write(&meta, &bytes[..bytes.len() / 2]).unwrap();
    // An unfinished one is not even considered.
    fs::create_dir_all(in_progress_dir(root, 9)).unwrap();

    let mut skipped = Vec::new();
    let found = latest(root, &mut skipped).unwrap();
    assert_eq!(found.metadata.id, 1);
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped[0].contains("savepoint-0000000003") && skipped[0].contains("checksum mismatch"), "{skipped:?}");
    assert!(skipped[1].contains("savepoint-0000000002") && skipped[1].contains("_metadata"), "{skipped:?}");

    // A missing state file is caught too.
    fs::remove_file(root.join("savepoint-0000000001/s1-t0-step1/state")).unwrap();
    let mut skipped = Vec::new();
    assert!(latest(root, &mut skipped).is_none());
    assert_eq!(skipped.len(), 3);
}

#[test]
fn an_unwritable_directory_fails_the_checkpoint_only() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ckpt");
    let calls = Calls::default();
    let mut store = Store::open(&root, shape(), Box::new(calls.clone())).unwrap();
    store.complete(1, Kind::Checkpoint, snapshot(&root, 1, b"x"), 0).unwrap();
    // The directory is replaced by a file: nothing can be created in it.
    fs::remove_dir_all(&root).unwrap();
    fs::write(&root, b"not a directory").unwrap();
    let err = store.complete(2, Kind::Checkpoint, BTreeMap::new(), 0).unwrap_err();
    assert!(err.contains("cannot complete") && err.contains("chk-0000000002"), "{err}");
    assert_eq!(*calls.0.lock().unwrap(), ["commit 1"], "nothing is committed for a failed checkpoint");
    // The final checkpoint cannot be written either, but the output is committed.
    match store.finish(3, 0) {
        Err(Finish::Checkpoint(e)) => assert!(e.contains("cannot write the final checkpoint"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(*calls.0.lock().unwrap(), ["commit 1", "commit 3", "end 3"]);
}

#[test]
fn finished_pipelines_and_foreign_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let calls = Calls::default();
    let mut store = Store::open(root, shape(), Box::new(calls.clone())).unwrap();
    store.complete(1, Kind::Checkpoint, snapshot(root, 1, b"x"), 0).unwrap();
    store.finish(2, 0).unwrap();
    let done = latest(root, &mut Vec::new()).unwrap();
    assert!(done.metadata.is_final());
    store.recover(&done).unwrap();
    assert_eq!(*calls.0.lock().unwrap(), ["commit 1", "commit 2", "end 2", "end 2", "recover 2"]);

    let other = Shape { steps: vec![(1, "process".into())], ..shape() };
    let foreign = Store::open(root, other, Box::new(Calls::default())).unwrap();
    let one = load(&root.join("chk-0000000001")).unwrap();
    let err = foreign.check_compatible(&one).unwrap_err();
    assert!(err.contains("other stateful steps") && err.contains("steps[1] window"), "{err}");
    let wider = Store::open(root, Shape { max_parallelism: 256, ..shape() }, Box::new(Calls::default())).unwrap();
    assert!(wider.check_compatible(&one).unwrap_err().contains("key groups"));
}

#[test]
fn ids_are_never_reused_and_unfinished_checkpoints_are_cleared() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut store = Store::open(root, shape(), Box::new(Calls::default())).unwrap();
    assert_eq!(store.next_id(), 1);
    store.complete(3, Kind::Checkpoint, snapshot(root, 3, b"x"), 0).unwrap();
    snapshot(root, 7, b"left by a killed run");
    fs::create_dir_all(root.join("savepoint-0000000005")).unwrap();
    assert_eq!(store.next_id(), 8);
    store.clear_unfinished().unwrap();
    assert_eq!(names(root), ["chk-0000000003", "savepoint-0000000005"]);
    assert_eq!(store.next_id(), 6);
    // A failed checkpoint's snapshots are removed at once.
    snapshot(root, 6, b"y");
    store.abort(6);
    assert_eq!(names(root), ["chk-0000000003", "savepoint-0000000005"]);
}
