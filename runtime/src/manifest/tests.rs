use super::*;

const BASE: &str = "/base";

fn parse(yaml: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(yaml, Path::new(BASE))
}

/// A valid manifest with `steps` and `extra` spliced in.
fn with_steps(steps: &str) -> String {
    format!("name: t\nsource:\n  file: {{ path: in.ndjson }}\nsteps:\n{steps}\nsink:\n  stdout: {{}}\n")
}

#[track_caller]
fn check_err(yaml: &str, at: &str, contains: &str) {
    let e = parse(yaml).expect_err("manifest should be refused");
    assert_eq!(e.at, at, "{e}");
    assert!(e.message.contains(contains), "message {:?} lacks {contains:?}", e.message);
}

#[test]
fn full_manifest_parses_with_defaults() {
    let m = parse(
        r#"
name: q1-eur
parallelism: 2
source:
  file: { path: data/bids.ndjson }
  event_time: { field: /ts }
steps:
  - map: { udf: currency@1, params: { rate: 0.9, exact: true } }
  - name: big
    filter: { udf: auction-filter@2, on_error: fail, limits: { memory: 64MiB, call_timeout: 250ms } }
  - key_by: { field: /auction }
  - flat_map: { udf: split@1 }
sink:
  file: { dir: out }
dead_letter:
  file: { path: /tmp/dlq.ndjson }
"#,
    )
    .unwrap();
    assert_eq!((m.name.as_str(), m.parallelism, m.max_parallelism, m.batch_size), ("q1-eur", 2, 128, 1024));
    let SourceKind::File { path, splits } = &m.source.kind else { panic!() };
    assert_eq!((path.as_path(), *splits), (Path::new("/base/data/bids.ndjson"), Splits::Auto));
    assert_eq!(m.source.format, Format::Json);
    let Some(EventTimeSpec { assign: TimestampSource::Field(f), .. }) = &m.source.event_time else { panic!() };
    assert_eq!(f.as_str(), "/ts");
    let StepKind::Udf(map) = &m.steps[0].kind else { panic!() };
    assert_eq!(map.params, vec![("rate".to_string(), "0.9".to_string()), ("exact".to_string(), "true".to_string())]);
    assert_eq!((map.on_error, map.limits), (ErrorPolicy::DeadLetter, Limits::default()));
    let StepKind::Udf(filter) = &m.steps[1].kind else { panic!() };
    assert_eq!(filter.on_error, ErrorPolicy::Fail);
    assert_eq!(
        filter.limits,
        Limits { memory: 64 << 20, call_timeout: Duration::from_millis(250), ..Limits::default() }
    );
    assert_eq!(m.steps[1].label(), "steps[1] (big) filter auction-filter@2");
    assert_eq!(m.steps[2].label(), "steps[2] key_by /auction");
    assert_eq!(m.sink, SinkSpec::Dir { dir: "/base/out".into(), format: OutputFormat::Value });
    assert_eq!(m.dead_letter, OutputSpec::File("/tmp/dlq.ndjson".into()));
    assert_eq!(m.udf_steps().count(), 3);
}

#[test]
fn sources_and_formats() {
    let m = parse("name: t\nsource: { bids: { count: 10 } }\nsink: { stdout: }\n").unwrap();
    assert!(matches!(m.source.kind, SourceKind::Bids { seed: 42, count: Some(10), rate: None }));
    assert_eq!(m.dead_letter, OutputSpec::Stderr);
    let m = parse("name: t\nsource: { socket: { port: 9999 } }\nsink: { stdout: { format: record } }\n").unwrap();
    assert!(matches!(&m.source.kind, SourceKind::Socket { address } if address == "127.0.0.1:9999"));
    assert_eq!(m.sink, SinkSpec::Stdout { format: OutputFormat::Record });
    let m = parse("name: t\nsource: { stdin: { format: csv, csv: { columns: [a, b], header: false, delimiter: tab } } }\nsink: { stdout: }\n").unwrap();
    assert_eq!(
        m.source.format,
        Format::Csv(CsvSpec { header: false, columns: Some(vec!["a".into(), "b".into()]), delimiter: b'\t' })
    );
    let m = parse("name: t\nsource: { file: { path: x.csv, splits: 3 } }\nsink: { stdout: }\n").unwrap();
    assert_eq!(m.source.format, Format::Csv(CsvSpec { header: true, columns: None, delimiter: b',' }));
    assert!(matches!(m.source.kind, SourceKind::File { splits: Splits::Count(3), .. }));
    // JSON is YAML too.
    let m =
        parse(r#"{"name":"j","source":{"stdin":{}},"steps":[{"map":{"udf":"a@1"}}],"sink":{"stdout":{}}}"#).unwrap();
    assert_eq!(m.steps.len(), 1);
}

#[test]
fn errors_name_the_place_and_the_fix() {
    check_err(
        &with_steps("  - mapp: { udf: a@1 }"),
        "steps[0]",
        "unknown step `mapp` (expected one of: map, filter, flat_map, key_by, window, process",
    );
    check_err(
        &with_steps("  - map: { udf: a@1 }\n    filter: { udf: b@1 }"),
        "steps[0]",
        "has both `map` and `filter`",
    );
    check_err(
        &with_steps("  - map: { udf: currency }"),
        "steps[0].map.udf",
        "`currency` has no version: expected NAME@VERSION",
    );
    check_err(&with_steps("  - map: { udff: a@1 }"), "steps[0].map", "unknown field `udff`");
    check_err(
        &with_steps("  - map: { udf: a@1, limits: { call_timeout: 10x } }"),
        "steps[0].map.limits.call_timeout",
        "`10x` is not a duration",
    );
    check_err(
        &with_steps("  - map: { udf: a@1, limits: { memory: 64MiB, recycle_above: 80MiB } }"),
        "steps[0].map.limits.recycle_above",
        "`80MiB` is above the memory cap of 64 MiB",
    );
    let m = parse(&with_steps("  - map: { udf: a@1, limits: { memory: 64MiB, recycle_above: 32MiB } }")).unwrap();
    let StepKind::Udf(u) = &m.steps[0].kind else { panic!("a map step") };
    assert_eq!(u.limits.recycle_threshold(), 32 << 20);
    assert_eq!(Limits::default().recycle_threshold(), 96 << 20, "three quarters of the cap by default");
    check_err(
        &with_steps("  - map: { udf: a@1, on_error: ignore }"),
        "steps[0].map.on_error",
        "unknown policy `ignore`",
    );
    check_err(&with_steps("  - key_by: {}"), "steps[0].key_by", "give exactly one of `field`");
    check_err(
        &with_steps("  - key_by: { field: /a, record_key: true }"),
        "steps[0].key_by",
        "exactly one of `field`, `udf` or `record_key: true`",
    );
    assert!(matches!(
        parse(&with_steps("  - key_by: { record_key: true }")).unwrap().steps[0].kind,
        StepKind::KeyBy(KeyBySpec::RecordKey)
    ));
    check_err(&with_steps("  - key_by: { field: auction }"), "steps[0].key_by.field", "is not a JSON pointer");
    check_err(&with_steps("  - window: { tumbling: 10s }"), "steps[0]", "a `window` step needs an `aggregate`");
    check_err(
        &with_steps("  - map: { udf: a@1, params: { x: [1] } }"),
        "steps[0].map.params.x",
        "must be a string, number or boolean",
    );
    check_err(&with_steps("  - 7"), "steps[0]", "a step is a mapping");
    check_err("name: T\nsource: { stdin: }\nsink: { stdout: }\n", "name", "use 1-64 of a-z");
    check_err("name: t\nparallelism: 0\nsource: { stdin: }\nsink: { stdout: }\n", "parallelism", "out of range");
    check_err(
        "name: t\nsource: { stdin: }\nsink: { stdout: }\nlimits: { memory: 10 }\n",
        "limits.memory",
        "below the minimum of 1MiB",
    );
    check_err("name: t\nsource: { s3: {} }\nsink: { stdout: }\n", "source", "unknown source `s3`");
    check_err("name: t\nsource: { kafka: {} }\nsink: { stdout: }\n", "source.kafka", "missing field `topic`");
    check_err(
        "name: t\nsource: { kafka: { topic: \"a b\" } }\nsink: { stdout: }\n",
        "source.kafka.topic",
        "not a Kafka topic name",
    );
    check_err(
        "name: t\nsource: { kafka: { topic: t, brokers: nohost } }\nsink: { stdout: }\n",
        "source.kafka.brokers",
        "host:port",
    );
    check_err(
        "name: t\nsource: { kafka: { topic: t, start: middle } }\nsink: { stdout: }\n",
        "source.kafka.start",
        "earliest or latest",
    );
    check_err(
        "name: t\nsource: { kafka: { topic: t, format: csv } }\nsink: { stdout: }\n",
        "source.kafka.csv",
        "give `columns`",
    );
    check_err(
        "name: t\nsource: { kafka: { topic: t, properties: { group.id: x } } }\nsink: { stdout: }\n",
        "source.kafka.properties.group.id",
        "set by Weir",
    );
    check_err(
        "name: t\nsource: { bids: {} }\nsink: { kafka: { topic: t, delivery: exactly_once } }\n",
        "sink.kafka.delivery",
        "add `checkpoint",
    );
    check_err(
        "name: t\nsource: { bids: {} }\nsink: { kafka: { topic: t, delivery: maybe } }\n",
        "sink.kafka.delivery",
        "at_least_once",
    );
    check_err("name: t\nsource: { stdin: , file: { path: a } }\nsink: { stdout: }\n", "source", "has both");
    check_err("name: t\nsource: { event_time: { field: /ts } }\nsink: { stdout: }\n", "source", "no source given");
    check_err(
        "name: t\nsource: { stdin: , event_time: { field: /ts } }\nsink: { stdout: }\n",
        "source.event_time",
        "needs format json or csv",
    );
    check_err(
        "name: t\nsource: { file: { path: a, format: xml } }\nsink: { stdout: }\n",
        "source.file.format",
        "unknown format `xml`",
    );
    check_err(
        "name: t\nsource: { file: { path: a, splits: 0 } }\nsink: { stdout: }\n",
        "source.file.splits",
        "expected `auto` or a number",
    );
    check_err(
        "name: t\nsource: { stdin: { format: csv, csv: { header: false } } }\nsink: { stdout: }\n",
        "source.stdin.csv",
        "`columns` must name the columns",
    );
    check_err(
        "name: t\nsource: { stdin: }\nsink: { file: { path: a, dir: b } }\n",
        "sink.file",
        "exactly one of `path`",
    );
    check_err(
        "name: t\nsource: { stdin: }\nsink: { stdout: }\ndead_letter: { s3: {} }\n",
        "dead_letter",
        "unknown output `s3`",
    );
    check_err("name: t\nsource: { stdin: }\nsink: { stdout: }\nbogus: 1\n", "", "unknown field `bogus`");
    check_err("name: t\nsource: { stdin: }\n", "", "missing field `sink`");
    check_err("name: [unclosed\n", "", "invalid manifest");
}

fn windowed(source_extra: &str, steps: &str) -> String {
    format!("name: w\nsource:\n  file: {{ path: in.ndjson }}\n{source_extra}steps:\n  - key_by: {{ field: /k }}\n{steps}\nsink:\n  stdout: {{}}\n")
}

const EVENT_TIME: &str = "  event_time: { field: /ts }\n  watermark: { max_out_of_orderness: 2s, idle_timeout: 30s }\n";

#[test]
fn windows_aggregates_and_event_time() {
    let m = parse(&windowed(
        EVENT_TIME,
        "  - window: { sliding: { size: 60s, slide: 10s }, allowed_lateness: 5s }\n    aggregate: { builtin: max, field: /price, output: csv }\n  - window: { session: 30s }\n    aggregate: { udf: my-agg@2, params: { x: 1 } }\n  - window: { count: { size: 10, slide: 2 } }\n    aggregate: { builtin: count }\n  - window: { global: { trigger: { count: 1 } } }\n    aggregate: { builtin: sum, field: /n }\n  - window: { tumbling: { size: 5m, offset: 1m }, time: processing }\n    aggregate: { builtin: avg, field: /cpu }\n  - process: { udf: detector@1 }",
    ))
    .unwrap();
    let e = m.source.event_time.as_ref().unwrap();
    assert_eq!((e.max_out_of_orderness, e.idle_timeout), (Duration::from_secs(2), Some(Duration::from_secs(30))));
    let StepKind::Window(w) = &m.steps[1].kind else { panic!() };
    assert_eq!(
        w.kind,
        WindowKind::Sliding { size: Duration::from_secs(60), slide: Duration::from_secs(10), offset: Duration::ZERO }
    );
    assert_eq!((w.time, w.allowed_lateness), (TimeMode::Event, Duration::from_secs(5)));
    assert!(matches!(&w.aggregate, AggregateSpec::Builtin { kind: BuiltinKind::Max, output: ResultFormat::Csv, .. }));
    assert_eq!(m.steps[1].label(), "steps[1] window sliding max(/price)");
    let StepKind::Window(w) = &m.steps[2].kind else { panic!() };
    assert_eq!(w.kind, WindowKind::Session { gap: Duration::from_secs(30) });
    assert!(
        matches!(&w.aggregate, AggregateSpec::Udf(u) if u.function == FunctionKind::Aggregate && u.udf.to_string() == "my-agg@2")
    );
    let StepKind::Window(w) = &m.steps[3].kind else { panic!() };
    assert_eq!(w.kind, WindowKind::Count { size: 10, slide: 2 });
    let StepKind::Window(w) = &m.steps[4].kind else { panic!() };
    assert_eq!(w.kind, WindowKind::Global { every: 1 });
    let StepKind::Window(w) = &m.steps[5].kind else { panic!() };
    assert_eq!(
        (w.kind, w.time),
        (
            WindowKind::Tumbling { size: Duration::from_secs(300), offset: Duration::from_secs(60) },
            TimeMode::Processing
        )
    );
    assert!(matches!(&m.steps[6].kind, StepKind::Process(u) if u.function == FunctionKind::Process));
    assert!(m.is_stateful());
    assert_eq!(m.udf_steps().count(), 2);

    let m = parse("name: t\nsource:\n  stdin: {}\n  event_time: { udf: ts@1 }\nsink: { stdout: }\n").unwrap();
    assert_eq!(m.timestamp_udf().unwrap().udf.to_string(), "ts@1");
    assert_eq!(m.source.event_time.as_ref().unwrap().max_out_of_orderness, Duration::ZERO);
    // Without event time, windows default to processing time.
    let m = parse("name: t\nsource: { file: { path: a.ndjson } }\nsteps:\n  - key_by: { field: /k }\n  - window: { tumbling: 1s }\n    aggregate: { builtin: count }\nsink: { stdout: }\nlate: { file: { path: late.ndjson } }\n").unwrap();
    let StepKind::Window(w) = &m.steps[1].kind else { panic!() };
    assert_eq!(w.time, TimeMode::Processing);
    assert_eq!(m.late, Some(OutputSpec::File("/base/late.ndjson".into())));
}

#[test]
fn window_errors_name_the_place_and_the_fix() {
    let agg = "    aggregate: { builtin: count }";
    check_err(
        &windowed("", &format!("  - window: {{ tumbling: 10s, time: event }}\n{agg}")),
        "steps[1].window.time",
        "event-time windows need `source.event_time`",
    );
    check_err(
        &windowed(EVENT_TIME, &format!("  - window: {{ sliding: {{ size: 10s, slide: 20s }} }}\n{agg}")),
        "steps[1].window.sliding",
        "`slide` must not be longer than `size`",
    );
    check_err(
        &windowed(EVENT_TIME, &format!("  - window: {{ tumbling: 0s }}\n{agg}")),
        "steps[1].window.tumbling",
        "must be longer than 0s",
    );
    check_err(
        &windowed(EVENT_TIME, &format!("  - window: {{ hopping: 10s }}\n{agg}")),
        "steps[1].window",
        "unknown window `hopping`",
    );
    check_err(
        &windowed(EVENT_TIME, &format!("  - window: {{ count: 10, allowed_lateness: 1s }}\n{agg}")),
        "steps[1].window.allowed_lateness",
        "only event-time windows have late records",
    );
    check_err(
        &windowed(EVENT_TIME, &format!("  - window: {{ count: {{ size: 3, slide: 5 }} }}\n{agg}")),
        "steps[1].window.count",
        "`slide` at most `size`",
    );
    check_err(
        &windowed(EVENT_TIME, "  - window: { tumbling: 10s }\n    aggregate: { builtin: median, field: /x }"),
        "steps[1].aggregate.builtin",
        "unknown aggregate `median`",
    );
    check_err(
        &windowed(EVENT_TIME, "  - window: { tumbling: 10s }\n    aggregate: { builtin: sum }"),
        "steps[1].aggregate",
        "`sum` needs a `field`",
    );
    check_err(
        &windowed(EVENT_TIME, "  - window: { tumbling: 10s }\n    aggregate: { udf: a@1, field: /x }"),
        "steps[1].aggregate",
        "only apply to a `builtin`",
    );
    check_err(
        &windowed(EVENT_TIME, "  - map: { udf: a@1 }\n    aggregate: { builtin: count }"),
        "steps[1].aggregate",
        "belongs to a `window` step",
    );
    check_err(
        &with_steps(&format!("  - window: {{ tumbling: 10s, time: processing }}\n{agg}")),
        "steps[0]",
        "add a `key_by` step before it",
    );
    check_err(&with_steps("  - process: { udf: p@1 }"), "steps[0]", "a `process` step works on a keyed stream");
    check_err(
        "name: t\nsource:\n  stdin: {}\n  event_time: { field: /ts }\nsink: { stdout: }\n",
        "source.event_time",
        "needs format json or csv",
    );
    check_err(
        "name: t\nsource:\n  stdin: { format: json }\n  event_time: { field: /ts, udf: a@1 }\nsink: { stdout: }\n",
        "source.event_time",
        "exactly one of `field`",
    );
    check_err(
        "name: t\nsource:\n  stdin: { format: json }\n  watermark: { max_out_of_orderness: 1s }\nsink: { stdout: }\n",
        "source.watermark",
        "watermarks need `event_time`",
    );
    check_err("name: t\nsource:\n  stdin: { format: json }\n  event_time: { field: /ts }\n  watermark: { max_out_of_orderness: soon }\nsink: { stdout: }\n", "source.watermark.max_out_of_orderness", "is not a duration");
}

#[test]
fn checkpoints_and_state() {
    let base = "name: t\nsource:\n  file: { path: in.ndjson }\nsteps: []\nsink:\n  file: { dir: out }\n";
    let m = parse(&format!("{base}checkpoint: {{ dir: ckpt }}\n")).unwrap();
    let c = m.checkpoint.as_ref().unwrap();
    assert_eq!(
        (c.dir.as_path(), c.interval, c.timeout),
        (Path::new("/base/ckpt"), Duration::from_secs(10), Duration::from_secs(600))
    );
    let expected = if cfg!(feature = "rocksdb") { StateBackendKind::RocksDb } else { StateBackendKind::Memory };
    assert_eq!(m.state.backend, expected, "RocksDB by default when checkpointed");
    assert_eq!(parse(base).unwrap().state.backend, StateBackendKind::Memory);
    let m = parse(&format!(
        "{base}checkpoint: {{ dir: /c, interval: 250ms, timeout: 1m }}\nstate: {{ backend: memory, dir: st }}\n"
    ))
    .unwrap();
    let c = m.checkpoint.as_ref().unwrap();
    assert_eq!((c.interval, c.timeout), (Duration::from_millis(250), Duration::from_secs(60)));
    assert_eq!((m.state.backend, m.state.dir.as_deref()), (StateBackendKind::Memory, Some(Path::new("/base/st"))));

    check_err(&format!("{base}checkpoint: {{ interval: 1s }}\n"), "checkpoint", "dir");
    check_err(
        &format!("{base}checkpoint: {{ dir: c, interval: 5ms }}\n"),
        "checkpoint.interval",
        "below the minimum of 10ms",
    );
    check_err(&format!("{base}checkpoint: {{ dir: c, interval: soon }}\n"), "checkpoint.interval", "not a duration");
    check_err(&format!("{base}state: {{ backend: redis }}\n"), "state.backend", "unknown backend `redis`");
    let stdin = "name: t\nsource:\n  stdin: {}\nsteps: []\nsink:\n  file: { dir: out }\ncheckpoint: { dir: c }\n";
    check_err(stdin, "checkpoint", "stdin and sockets cannot");
    let one_file = "name: t\nsource:\n  file: { path: in.ndjson }\nsteps: []\nsink:\n  file: { path: out.txt }\ncheckpoint: { dir: c }\n";
    check_err(one_file, "checkpoint", "single-file sink cannot commit");
}

#[test]
fn kafka_sinks_are_exactly_once_with_checkpoints_and_at_least_once_without() {
    let with = "name: t\nsource: { kafka: { topic: in, bounded: true, format: raw } }\nsink: { kafka: { topic: out } }\ncheckpoint: { dir: c }\n";
    let m = Manifest::parse(with, Path::new("/x")).unwrap();
    let SourceKind::Kafka(k) = &m.source.kind else { panic!("{:?}", m.source.kind) };
    assert_eq!(
        (k.brokers.as_str(), k.bounded, k.start, &m.source.format),
        ("127.0.0.1:9092", true, StartAt::Earliest, &Format::Lines)
    );
    assert!(matches!(&m.sink, SinkSpec::Kafka(s) if s.delivery == Delivery::ExactlyOnce));
    let without = "name: t\nsource: { bids: {} }\nsink: { kafka: { topic: out, properties: { linger.ms: 20 } } }\n";
    let m = Manifest::parse(without, Path::new("/x")).unwrap();
    let SinkSpec::Kafka(s) = &m.sink else { panic!() };
    assert_eq!(s.delivery, Delivery::AtLeastOnce);
    assert_eq!(s.properties, [("linger.ms".to_string(), "20".to_string())]);
}

#[test]
fn a_dead_letter_file_may_be_rotated_by_size() {
    let base = "name: a\nsource: { stdin: {} }\nsink: { stdout: {} }\ndead_letter:\n  file: ";
    let m = parse(&format!("{base}{{ path: dlq.jsonl, rotate_mib: 8, keep: 2 }}\n")).unwrap();
    assert_eq!(m.dead_letter, OutputSpec::Rotating { path: "/base/dlq.jsonl".into(), max_bytes: 8 << 20, keep: 2 });
    let m = parse(&format!("{base}{{ path: dlq.jsonl, rotate_mib: 1 }}\n")).unwrap();
    assert!(matches!(m.dead_letter, OutputSpec::Rotating { keep: 3, .. }), "three older files by default");
    for (file, expect) in [
        ("{ path: d, keep: 2 }", "`keep` needs `rotate_mib`"),
        ("{ path: d, rotate_mib: 0 }", "rotate_mib"),
        ("{ path: d, rotate_mb: 5 }", "rotate_mb"),
    ] {
        let e = parse(&format!("{base}{file}\n")).unwrap_err();
        assert!(e.to_string().contains(expect) && e.to_string().contains("dead_letter.file"), "{file}: {e}");
    }
}
