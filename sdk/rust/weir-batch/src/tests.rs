use crate::*;

/// A small deterministic generator (SplitMix64) so tests need no crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, max: u64) -> Vec<u8> {
        let n = self.next() % (max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

type Owned = (i64, Option<Vec<u8>>, Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>);

fn random_records(rng: &mut Rng, n: usize) -> Vec<Owned> {
    (0..n)
        .map(|_| {
            let ts = rng.next() as i64;
            let key = (!rng.next().is_multiple_of(3)).then(|| rng.bytes(12));
            let value = rng.bytes(40);
            let headers = (0..rng.next() % 3).map(|_| (rng.bytes(5), rng.bytes(8))).collect();
            (ts, key, value, headers)
        })
        .collect()
}

fn encode(records: &[Owned]) -> Batch {
    let mut w = BatchWriter::new();
    for (ts, key, value, headers) in records {
        let mut section = Vec::new();
        for (n, v) in headers {
            write_header(&mut section, n, v);
        }
        w.push_with_headers(*ts, key.as_deref(), value, &section);
    }
    w.finish()
}

#[test]
fn random_batches_round_trip() {
    let mut rng = Rng(7);
    for n in [0, 1, 2, 17, 300] {
        let records = random_records(&mut rng, n);
        let batch = encode(&records);
        let reparsed = Batch::from_vec(batch.as_bytes().to_vec()).unwrap();
        assert_eq!(reparsed.len(), n);
        for (r, (ts, key, value, headers)) in reparsed.iter().zip(&records) {
            assert_eq!(r.timestamp, *ts);
            assert_eq!(r.key, key.as_deref());
            assert_eq!(r.value, &value[..]);
            let got: Vec<_> = r.headers().map(|(a, b)| (a.to_vec(), b.to_vec())).collect();
            assert_eq!(&got, headers);
            assert_eq!(r.encoded_len(), 20 + key.as_ref().map_or(0, Vec::len) + value.len() + r.raw_headers.len());
        }
    }
}

#[test]
fn every_truncation_and_extension_is_rejected() {
    let mut rng = Rng(11);
    let bytes = encode(&random_records(&mut rng, 20)).into_vec();
    for cut in 0..bytes.len() {
        assert!(BatchRef::parse(&bytes[..cut]).is_err(), "accepted a batch cut at {cut}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    let err = BatchRef::parse(&longer).unwrap_err();
    assert_eq!(err.offset, bytes.len());
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = Rng(3);
    for _ in 0..20_000 {
        let mut buf = rng.bytes(64);
        if buf.len() >= 4 {
            buf[..4].copy_from_slice(&(rng.next() as u32 % 4).to_le_bytes());
        }
        if let Ok(b) = BatchRef::parse(&buf) {
            assert_eq!(b.iter().count(), b.len());
        }
    }
}

#[test]
fn empty_key_differs_from_no_key() {
    let mut w = BatchWriter::new();
    w.push(1, Some(b""), b"a");
    w.push(2, None, b"b");
    let b = w.finish();
    let keys: Vec<_> = b.iter().map(|r| r.key).collect();
    assert_eq!(keys, vec![Some(&b""[..]), None]);
}

#[test]
fn push_with_writes_the_value_in_place() {
    let mut w = BatchWriter::new();
    w.push_with(5, Some(b"k"), |v| v.extend_from_slice(b"hello"));
    w.push_with(6, None, |v| v.extend_from_slice(b""));
    w.push(7, None, b"x");
    let b = Batch::from_vec(w.into_vec()).unwrap();
    let values: Vec<_> = b.iter().map(|r| (r.timestamp, r.key, r.value)).collect();
    assert_eq!(values, vec![(5, Some(&b"k"[..]), &b"hello"[..]), (6, None, &b""[..]), (7, None, &b"x"[..])]);
}

#[test]
fn take_leaves_an_empty_writer() {
    let mut w = BatchWriter::with_capacity(64);
    w.push(1, None, b"a");
    let first = w.take();
    assert!(w.is_empty());
    w.push(2, None, b"b");
    let second = w.take();
    assert_eq!(first.iter().next().unwrap().value, b"a");
    assert_eq!(second.iter().next().unwrap().value, b"b");
    assert_eq!(second.len(), 1);
}

#[test]
fn slice_copies_a_range() {
    let mut rng = Rng(5);
    let records = random_records(&mut rng, 10);
    let batch = encode(&records);
    let s = batch.slice(3..7);
    assert_eq!(s.len(), 4);
    assert_eq!(s.iter().collect::<Vec<_>>(), batch.iter().skip(3).take(4).collect::<Vec<_>>());
}

#[test]
fn group_lists_round_trip() {
    let mut inner = BatchWriter::new();
    inner.push(10, Some(b"k1"), b"v");
    let records = inner.finish();

    let mut l = ListWriter::new();
    l.add_group(b"k1", 0, 10, b"acc", records.as_bytes());
    l.add_group(b"k2", 10, 20, b"", Batch::empty().as_bytes());
    let buf = l.finish();
    let groups: Vec<_> = AddGroupIter::parse(&buf).unwrap().collect();
    assert_eq!(groups.len(), 2);
    assert_eq!((groups[0].key, groups[0].start, groups[0].end, groups[0].acc), (&b"k1"[..], 0, 10, &b"acc"[..]));
    assert_eq!(groups[0].records.iter().next().unwrap().value, b"v");
    assert!(groups[1].records.is_empty());

    let mut l = ListWriter::new();
    l.finish_group(b"k", 5, 6, b"a");
    let buf = l.finish();
    let g = FinishGroupIter::parse(&buf).unwrap().next().unwrap();
    assert_eq!((g.key, g.start, g.end, g.acc), (&b"k"[..], 5, 6, &b"a"[..]));

    let mut l = ListWriter::new();
    l.process_group(b"k", None, records.as_bytes());
    l.process_group(b"j", Some(b"s"), Batch::empty().as_bytes());
    let buf = l.finish();
    let g: Vec<_> = ProcessGroupIter::parse(&buf).unwrap().collect();
    assert_eq!((g[0].value, g[1].value), (None, Some(&b"s"[..])));

    let mut l = ListWriter::new();
    l.timer_group(b"k", Some(b""), &[3, 9]);
    let buf = l.finish();
    let g = TimerGroupIter::parse(&buf).unwrap().next().unwrap();
    assert_eq!(g.timers().collect::<Vec<_>>(), vec![3, 9]);
    assert_eq!(g.value, Some(&b""[..]));
}

#[test]
fn result_lists_round_trip_and_reject_bad_ops() {
    let out = Batch::empty();
    let mut l = ListWriter::new();
    l.result(StateOp::Keep, out.as_bytes());
    l.result(StateOp::Set(b"new"), out.as_bytes());
    l.result(StateOp::Clear, out.as_bytes());
    let buf = l.finish();
    let ops: Vec<_> = ResultIter::parse(&buf).unwrap().map(|r| r.state).collect();
    assert_eq!(ops, vec![StateOp::Keep, StateOp::Set(b"new"), StateOp::Clear]);

    let mut bad = buf.clone();
    bad[4] = 7;
    assert!(ResultIter::parse(&bad).is_err());

    let mut l = ListWriter::new();
    l.accumulator(b"a");
    l.accumulator(b"bc");
    let buf = l.finish();
    assert_eq!(AccumulatorIter::parse(&buf).unwrap().collect::<Vec<_>>(), vec![&b"a"[..], &b"bc"[..]]);
    assert!(AccumulatorIter::parse(&buf[..buf.len() - 1]).is_err());
}

#[test]
fn timestamps_are_rewritten_in_place() {
    let mut rng = Rng(9);
    let records = random_records(&mut rng, 50);
    let mut batch = encode(&records);
    let ts: Vec<i64> = (0..50).map(|i| i * 7 - 3).collect();
    batch.rewrite_timestamps(&ts);
    let again = Batch::from_vec(batch.into_vec()).unwrap();
    for ((r, t), (_, key, value, _)) in again.iter().zip(&ts).zip(&records) {
        assert_eq!((r.timestamp, r.key, r.value), (*t, key.as_deref(), &value[..]));
    }
}
