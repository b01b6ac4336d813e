//! The `kafka` source and sink as written, validated into
//! [`KafkaSourceSpec`] and [`KafkaSinkSpec`].

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKafkaSource {
    brokers: Option<String>,
    topic: String,
    group: Option<String>,
    start: Option<String>,
    bounded: Option<bool>,
    format: Option<String>,
    csv: Option<RawCsv>,
    #[serde(default)]
    properties: std::collections::BTreeMap<String, Scalar>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKafkaSink {
    brokers: Option<String>,
    topic: String,
    delivery: Option<String>,
    #[serde(default)]
    properties: std::collections::BTreeMap<String, Scalar>,
}

/// A `source: { kafka: ... }`, with its record format.
pub(super) fn source(v: Value, at: &str) -> Result<(SourceKind, Format)> {
    let k: RawKafkaSource = typed(v, at)?;
    let start = match k.start.as_deref() {
        None | Some("earliest") => StartAt::Earliest,
        Some("latest") => StartAt::Latest,
        Some(other) => {
            return Err(ManifestError::new(
                format!("{at}.start"),
                format!("unknown start `{other}` (expected earliest or latest)"),
            ))
        }
    };
    // A Kafka record is not a line: `raw` keeps its bytes as they are.
    let text = match k.format.as_deref() {
        Some("raw") => Some("lines"),
        other => other,
    };
    let format = format(text, k.csv, Format::Json, at)?;
    if matches!(&format, Format::Csv(c) if c.header) {
        return Err(ManifestError::new(
            format!("{at}.csv"),
            "Kafka records have no header line: give `columns` (and `header: false`)",
        ));
    }
    let kafka = KafkaSourceSpec {
        brokers: brokers(k.brokers, at)?,
        topic: topic(k.topic, at)?,
        group: k.group,
        start,
        bounded: k.bounded.unwrap_or(false),
        properties: properties(k.properties, at)?,
        partitions: None,
        marked: false,
    };
    Ok((SourceKind::Kafka(kafka), format))
}

/// A `sink: { kafka: ... }`.
pub(super) fn sink(v: Value, at: &str) -> Result<SinkSpec> {
    let k: RawKafkaSink = typed(v, at)?;
    let delivery = match k.delivery.as_deref() {
        None | Some("exactly_once") => Delivery::ExactlyOnce,
        Some("at_least_once") => Delivery::AtLeastOnce,
        Some(other) => {
            return Err(ManifestError::new(
                format!("{at}.delivery"),
                format!("unknown delivery `{other}` (expected exactly_once or at_least_once)"),
            ))
        }
    };
    Ok(SinkSpec::Kafka(KafkaSinkSpec {
        brokers: brokers(k.brokers, at)?,
        topic: topic(k.topic, at)?,
        delivery,
        properties: properties(k.properties, at)?,
        repartition: None,
    }))
}

/// Default `bootstrap.servers`.
const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

fn brokers(raw: Option<String>, at: &str) -> Result<String> {
    let b = raw.unwrap_or_else(|| DEFAULT_BROKERS.to_string());
    if b.trim().is_empty() || b.split(',').any(|h| !h.trim().contains(':')) {
        return Err(ManifestError::new(format!("{at}.brokers"), format!("`{b}`: expected host:port[,host:port...]")));
    }
    Ok(b)
}

fn topic(t: String, at: &str) -> Result<String> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if t.is_empty() || t.len() > 249 || !t.chars().all(legal) || t == "." || t == ".." {
        return Err(ManifestError::new(
            format!("{at}.topic"),
            format!("`{t}` is not a Kafka topic name (1-249 of a-z, A-Z, 0-9, `.`, `_`, `-`)"),
        ));
    }
    Ok(t)
}

/// librdkafka settings; those Weir sets itself are refused, so a manifest
/// cannot weaken a guarantee by accident.
fn properties(raw: std::collections::BTreeMap<String, Scalar>, at: &str) -> Result<Vec<(String, String)>> {
    const OWN: &[&str] = &[
        "bootstrap.servers",
        "group.id",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "enable.idempotence",
        "enable.partition.eof",
        "isolation.level",
        "transactional.id",
        "acks",
    ];
    raw.into_iter()
        .map(|(k, v)| {
            if OWN.contains(&k.as_str()) {
                return Err(ManifestError::new(
                    format!("{at}.properties.{k}"),
                    "is set by Weir (brokers, group and delivery have their own fields)",
                ));
            }
            Ok((k, v.text()))
        })
        .collect()
}
