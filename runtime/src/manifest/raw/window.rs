//! The `window` step and its `aggregate` as written, validated into
//! [`WindowStepSpec`] and [`AggregateSpec`].

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAggregate {
    builtin: Option<String>,
    field: Option<String>,
    output: Option<String>,
    udf: Option<String>,
    #[serde(default)]
    params: Mapping,
    on_error: Option<String>,
    limits: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTumbling {
    size: Scalar,
    offset: Option<Scalar>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSliding {
    size: Scalar,
    slide: Scalar,
    offset: Option<Scalar>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSession {
    gap: Scalar,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCount {
    size: u64,
    slide: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobal {
    trigger: RawTrigger,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    count: u64,
}

pub(super) fn aggregate_spec(v: Value, defaults: Limits, at: &str) -> Result<AggregateSpec> {
    let r: RawAggregate = typed(v, at)?;
    match (r.builtin, r.udf) {
        (Some(b), None) => {
            if !r.params.is_empty() || r.on_error.is_some() || r.limits.is_some() {
                return Err(ManifestError::new(
                    at,
                    "`params`, `on_error` and `limits` only apply to an aggregate `udf`",
                ));
            }
            let kind = match b.as_str() {
                "count" => BuiltinKind::Count,
                "sum" => BuiltinKind::Sum,
                "min" => BuiltinKind::Min,
                "max" => BuiltinKind::Max,
                "avg" => BuiltinKind::Avg,
                other => {
                    return Err(ManifestError::new(
                        format!("{at}.builtin"),
                        format!("unknown aggregate `{other}` (expected count, sum, min, max or avg)"),
                    ));
                }
            };
            let field = r
                .field
                .map(|f| Pointer::parse(&f).map_err(|e| ManifestError::new(format!("{at}.field"), e.to_string())))
                .transpose()?;
            if field.is_none() && kind != BuiltinKind::Count {
                return Err(ManifestError::new(at, format!("`{b}` needs a `field` (a JSON pointer such as /price)")));
            }
            let output = match r.output.as_deref() {
                None | Some("json") => ResultFormat::Json,
                Some("csv") => ResultFormat::Csv,
                Some(other) => {
                    return Err(ManifestError::new(
                        format!("{at}.output"),
                        format!("unknown output `{other}` (expected json or csv)"),
                    ))
                }
            };
            Ok(AggregateSpec::Builtin { kind, field, output })
        }
        (None, Some(u)) => {
            if r.field.is_some() || r.output.is_some() {
                return Err(ManifestError::new(at, "`field` and `output` only apply to a `builtin` aggregate"));
            }
            Ok(AggregateSpec::Udf(udf_step(
                FunctionKind::Aggregate,
                &u,
                r.params,
                r.on_error.as_deref(),
                r.limits,
                defaults,
                at,
            )?))
        }
        _ => Err(ManifestError::new(
            at,
            "give exactly one of `builtin` (count, sum, min, max, avg) or `udf` (NAME@VERSION)",
        )),
    }
}

const WINDOW_KINDS: &[&str] = &["tumbling", "sliding", "session", "count", "global"];

pub(super) fn window(body: Value, aggregate: AggregateSpec, event_time: bool, at: &str) -> Result<WindowStepSpec> {
    let Value::Mapping(map) = body else {
        return Err(ManifestError::new(at, "a window is a mapping such as `{ tumbling: 10s }`"));
    };
    let (kind, v) = one_kind(&map, WINDOW_KINDS, &["time", "allowed_lateness"], at, "window")?;
    let inner = format!("{at}.{kind}");
    let dur = |s: Scalar, at: String| -> Result<Duration> {
        let d = parse_duration(&s.text()).map_err(|e| ManifestError::new(&at, e))?;
        if d.is_zero() {
            return Err(ManifestError::new(at, "must be longer than 0s"));
        }
        Ok(d)
    };
    let offset = |s: Option<Scalar>, at: String| -> Result<Duration> {
        s.map(|s| parse_duration(&s.text()).map_err(|e| ManifestError::new(at, e)))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let kind = match kind.as_str() {
        "tumbling" => match v {
            Value::Mapping(_) => {
                let t: RawTumbling = typed(v, &inner)?;
                WindowKind::Tumbling {
                    size: dur(t.size, format!("{inner}.size"))?,
                    offset: offset(t.offset, format!("{inner}.offset"))?,
                }
            }
            other => WindowKind::Tumbling { size: dur(typed(other, &inner)?, inner.clone())?, offset: Duration::ZERO },
        },
        "sliding" => {
            let s: RawSliding = typed(v, &inner)?;
            let (size, slide) = (dur(s.size, format!("{inner}.size"))?, dur(s.slide, format!("{inner}.slide"))?);
            if slide > size {
                return Err(ManifestError::new(
                    &inner,
                    "`slide` must not be longer than `size` (records would fall between windows)",
                ));
            }
            WindowKind::Sliding { size, slide, offset: offset(s.offset, format!("{inner}.offset"))? }
        }
        "session" => match v {
            Value::Mapping(_) => {
                let s: RawSession = typed(v, &inner)?;
                WindowKind::Session { gap: dur(s.gap, format!("{inner}.gap"))? }
            }
            other => WindowKind::Session { gap: dur(typed(other, &inner)?, inner.clone())? },
        },
        "count" => {
            let (size, slide) = match v {
                Value::Number(n) => (n.as_u64().unwrap_or(0), None),
                other => {
                    let c: RawCount = typed(other, &inner)?;
                    (c.size, c.slide)
                }
            };
            let slide = slide.unwrap_or(size);
            if size == 0 || slide == 0 || slide > size {
                return Err(ManifestError::new(
                    &inner,
                    "`size` and `slide` must be at least 1, and `slide` at most `size`",
                ));
            }
            WindowKind::Count { size, slide }
        }
        _ => {
            let g: RawGlobal = typed(v, &inner)?;
            if g.trigger.count == 0 {
                return Err(ManifestError::new(format!("{inner}.trigger.count"), "must be at least 1"));
            }
            WindowKind::Global { every: g.trigger.count }
        }
    };
    let time = match get(&map, "time").and_then(Value::as_str) {
        None if get(&map, "time").is_some() => {
            return Err(ManifestError::new(format!("{at}.time"), "expected event or processing"))
        }
        None => {
            if event_time {
                TimeMode::Event
            } else {
                TimeMode::Processing
            }
        }
        Some("event") => TimeMode::Event,
        Some("processing") => TimeMode::Processing,
        Some(other) => {
            return Err(ManifestError::new(
                format!("{at}.time"),
                format!("unknown time `{other}` (expected event or processing)"),
            ))
        }
    };
    if kind.is_time() && time == TimeMode::Event && !event_time {
        return Err(ManifestError::new(
            format!("{at}.time"),
            "event-time windows need `source.event_time` (a field or a udf); or set `time: processing`",
        ));
    }
    let allowed_lateness = match get(&map, "allowed_lateness") {
        None => Duration::ZERO,
        Some(v) => {
            let text = typed::<Scalar>(v.clone(), &format!("{at}.allowed_lateness"))?.text();
            parse_duration(&text).map_err(|e| ManifestError::new(format!("{at}.allowed_lateness"), e))?
        }
    };
    let event_time_windows = kind.is_time() && time == TimeMode::Event;
    if !allowed_lateness.is_zero() && !event_time_windows {
        return Err(ManifestError::new(format!("{at}.allowed_lateness"), "only event-time windows have late records"));
    }
    if !kind.is_time() && get(&map, "time").is_some() {
        return Err(ManifestError::new(
            format!("{at}.time"),
            "count and global windows are measured in records, not time",
        ));
    }
    Ok(WindowStepSpec { kind, time, allowed_lateness, aggregate })
}
