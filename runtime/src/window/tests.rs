use super::*;
use crate::types::TimeWindow;

fn w(start: i64, end: i64) -> TimeWindow {
    TimeWindow { start, end }
}

#[test]
fn sliding_assignment_matches_flink_including_windows_before_the_first_event() {
    let mut out = Vec::new();
    Assigner::Sliding { size: 60_000, slide: 10_000, offset: 0 }.assign(1_700_000_000_123, &mut out);
    let starts: Vec<i64> = out.iter().map(|w| w.start).collect();
    assert_eq!(
        starts,
        [
            1_700_000_000_000,
            1_699_999_990_000,
            1_699_999_980_000,
            1_699_999_970_000,
            1_699_999_960_000,
            1_699_999_950_000
        ]
    );
    assert!(out.iter().all(|w| w.end - w.start == 60_000));
}

#[test]
fn tumbling_assignment_with_offsets_and_negative_times() {
    let one = |a: Assigner, ts| {
        let mut out = Vec::new();
        a.assign(ts, &mut out);
        out
    };
    let t = Assigner::Tumbling { size: 10, offset: 0 };
    assert_eq!(one(t, 0), [w(0, 10)]);
    assert_eq!(one(t, 9), [w(0, 10)]);
    assert_eq!(one(t, 10), [w(10, 20)]);
    assert_eq!(one(t, -1), [w(-10, 0)]);
    assert_eq!(one(t, -11), [w(-20, -10)]);
    assert_eq!(one(Assigner::Tumbling { size: 10, offset: 3 }, 12), [w(3, 13)]);
    assert_eq!(one(Assigner::Session { gap: 5 }, 7), [w(7, 12)]);
}

/// Oracle: every window of a random assignment contains the timestamp, and
/// every aligned window containing it is assigned.
#[test]
fn assignment_is_exactly_the_windows_containing_the_record() {
    let mut seed = 3u64;
    let mut next = move |n: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (seed >> 33) % n
    };
    for _ in 0..2000 {
        let slide = 1 + next(20) as i64;
        let size = slide * (1 + next(5) as i64) + if next(2) == 0 { 0 } else { next(slide as u64) as i64 };
        let offset = next(slide as u64) as i64;
        let ts = next(1000) as i64 - 500;
        let mut got = Vec::new();
        Assigner::Sliding { size, slide, offset }.assign(ts, &mut got);
        got.sort();
        let expected: Vec<TimeWindow> = (-2000..2000)
            .filter(|s| (s - offset).rem_euclid(slide) == 0 && *s <= ts && ts < s + size)
            .map(|s| w(s, s + size))
            .collect();
        assert_eq!(got, expected, "size {size} slide {slide} offset {offset} ts {ts}");
    }
}

#[test]
fn lateness_rules() {
    let win = w(0, 10);
    assert!(!fires(&win, 8));
    assert!(fires(&win, 9));
    assert!(!is_window_late(&win, 5, 13));
    assert!(is_window_late(&win, 5, 14));
    assert!(is_window_late(&win, 0, 9));
    assert!(is_record_late(3, 5, 8));
    assert!(!is_record_late(3, 5, 7));
    assert!(!is_window_late(&TimeWindow::GLOBAL, i64::MAX, i64::MAX - 1));
}

#[test]
fn sessions_merge_everything_they_touch() {
    let mut s = Sessions::default();
    assert_eq!(s.add(w(10, 15)).absorbed, []);
    assert_eq!(s.add(w(20, 25)).absorbed, []);
    let m = s.add(w(15, 20));
    assert_eq!(m.result, w(10, 25));
    assert_eq!(m.absorbed, [w(10, 15), w(20, 25)]);
    assert_eq!(s.windows(), [w(10, 25)]);
    s.add(w(40, 45));
    s.add(w(0, 3));
    assert_eq!(s.windows(), [w(0, 3), w(10, 25), w(40, 45)]);
    let mut bytes = Vec::new();
    s.encode(&mut bytes);
    assert_eq!(Sessions::decode(&bytes), s);
    s.remove(&w(10, 25));
    assert_eq!(s.windows(), [w(0, 3), w(40, 45)]);
    assert!(s.touches(&w(3, 4)) && !s.touches(&w(4, 5)));
}
