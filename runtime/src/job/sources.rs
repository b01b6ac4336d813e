//! Opening a pipeline's source: its subtasks (one per split), fresh or
//! resumed at the positions a checkpoint holds, and its label in metrics.

use super::JobError;
use crate::checkpoint::store::Restorable;
use crate::checkpoint::SourcePosition;
use crate::connector::bids::BidSource;
use crate::connector::file_source::{open_ranges, open_splits, CsvHeader};
use crate::connector::journal::JournalSource;
use crate::connector::lines::HeaderSlot;
use crate::connector::{stream_source, Source};
use crate::manifest::{Format, Manifest, SourceKind, Splits};
use crate::operator::decode::CsvColumns;
use std::io;
use std::path::{Path, PathBuf};

pub(super) fn source_label(m: &Manifest) -> String {
    let format = match &m.source.format {
        Format::Lines => "lines",
        Format::Json => "json",
        Format::Csv(_) => "csv",
    };
    match &m.source.kind {
        SourceKind::File { path, .. } => format!("source file {} ({format})", path.display()),
        SourceKind::Stdin => format!("source stdin ({format})"),
        SourceKind::Socket { address } => format!("source socket {address} ({format})"),
        SourceKind::Bids { seed, .. } => format!("source bids seed {seed}"),
        SourceKind::Http { .. } => format!("source http ({format})"),
        SourceKind::Kafka(k) => format!("source kafka {} ({format})", k.topic),
    }
}

pub(super) fn open_source(
    m: &Manifest,
    columns: &CsvColumns,
    restore: Option<&Restorable>,
) -> Result<super::kafka::Opened, JobError> {
    if let SourceKind::Kafka(spec) = &m.source.kind {
        return super::kafka::open_source(m, spec, restore);
    }
    let opened = open_other_source(m, columns, restore)?;
    Ok((opened, Vec::new()))
}

fn open_other_source(
    m: &Manifest,
    columns: &CsvColumns,
    restore: Option<&Restorable>,
) -> Result<Vec<Box<dyn Source>>, JobError> {
    let p = m.parallelism;
    let skip_blank = m.source.format != Format::Lines;
    let csv = match &m.source.format {
        Format::Csv(c) => {
            if let Some(cols) = &c.columns {
                let _ = columns.set(cols.clone());
            }
            Some(c)
        }
        _ => None,
    };
    let slot = || csv.filter(|c| c.header).map(|c| HeaderSlot { columns: columns.clone(), delimiter: c.delimiter });
    let source_err = |e: io::Error| JobError::Source(e.to_string());
    if let Some(r) = restore {
        return resume_source(m, columns, r, skip_blank);
    }
    Ok(match &m.source.kind {
        SourceKind::File { path, splits } => {
            // Stateful pipelines read a file with one reader, so event time
            // advances evenly instead of one split racing ahead.
            let n = match splits {
                Splits::Auto if m.is_stateful() => 1,
                Splits::Auto => p,
                Splits::Count(n) => *n,
            };
            // With explicit columns the slot is already filled: the header line is skipped, its names ignored.
            let header =
                csv.filter(|c| c.header).map(|c| CsvHeader { columns: columns.clone(), delimiter: c.delimiter });
            open_splits(path, n, skip_blank, header)
                .map_err(source_err)?
                .into_iter()
                .map(|s| Box::new(s) as Box<dyn Source>)
                .collect()
        }
        SourceKind::Stdin => vec![Box::new(stream_source::stdin(skip_blank, slot()))],
        SourceKind::Http { journal } => {
            vec![Box::new(JournalSource::open(journal_path(journal)?, 0, skip_blank, slot()).map_err(source_err)?)]
        }
        SourceKind::Socket { address } => {
            vec![Box::new(stream_source::socket(address, skip_blank, slot()).map_err(source_err)?)]
        }
        // Generator splits interleave event indices, so they advance together in event time.
        SourceKind::Bids { seed, count, rate } => {
            (0..p).map(|i| Box::new(BidSource::new(*seed, *count, *rate, i, p)) as Box<dyn Source>).collect()
        }
        SourceKind::Kafka(spec) => super::kafka::open_source(m, spec, None)?.0,
    })
}

/// The sources of a restored pipeline: one per split with input left (at
/// least one, so the stage exists).
fn resume_source(
    m: &Manifest,
    columns: &CsvColumns,
    r: &Restorable,
    skip_blank: bool,
) -> Result<Vec<Box<dyn Source>>, JobError> {
    let mismatch = |what: &str| {
        JobError::Restore(format!(
            "{} recorded a {what} source position; the manifest's source is another kind",
            r.dir.display()
        ))
    };
    let source_err = |e: io::Error| JobError::Source(e.to_string());
    match &m.source.kind {
        SourceKind::File { path, .. } => {
            let mut ranges = Vec::new();
            for pos in &r.metadata.sources {
                match pos {
                    SourcePosition::File { offset, end } if offset < end => ranges.push((*offset, *end)),
                    SourcePosition::File { .. } => {}
                    SourcePosition::Bids { .. } => return Err(mismatch("bids")),
                    SourcePosition::Kafka { .. } => return Err(mismatch("kafka")),
                }
            }
            if ranges.is_empty() {
                ranges.push((0, 0));
            }
            if let Format::Csv(c) = &m.source.format {
                if c.header && c.columns.is_none() {
                    // The header names the columns: read it again.
                    let header = CsvHeader { columns: columns.clone(), delimiter: c.delimiter };
                    open_splits(path, 1, skip_blank, Some(header)).map_err(source_err)?;
                }
            }
            Ok(open_ranges(path, &ranges, skip_blank)
                .map_err(source_err)?
                .into_iter()
                .map(|s| Box::new(s) as Box<dyn Source>)
                .collect())
        }
        SourceKind::Bids { seed, count, rate } => {
            let mut out: Vec<Box<dyn Source>> = Vec::new();
            for pos in &r.metadata.sources {
                match pos {
                    SourcePosition::Bids { next, stride } if *next < count.unwrap_or(u64::MAX) => {
                        out.push(Box::new(BidSource::resume(*seed, *count, *rate, *next, *stride)));
                    }
                    SourcePosition::Bids { .. } => {}
                    SourcePosition::File { .. } => return Err(mismatch("file")),
                    SourcePosition::Kafka { .. } => return Err(mismatch("kafka")),
                }
            }
            if out.is_empty() {
                out.push(Box::new(BidSource::resume(*seed, Some(0), None, 0, 1)));
            }
            Ok(out)
        }
        SourceKind::Http { journal } => {
            let offset = match r.metadata.sources.first() {
                Some(SourcePosition::File { offset, .. }) => *offset,
                Some(SourcePosition::Bids { .. }) => return Err(mismatch("bids")),
                Some(SourcePosition::Kafka { .. }) => return Err(mismatch("kafka")),
                None => 0,
            };
            let slot = match &m.source.format {
                Format::Csv(c) if c.header && c.columns.is_none() => {
                    return Err(JobError::Restore(
                        "a CSV header cannot be re-read from an http source; give `columns`".into(),
                    ))
                }
                _ => None,
            };
            Ok(vec![Box::new(
                JournalSource::open(journal_path(journal)?, offset, skip_blank, slot).map_err(source_err)?,
            )])
        }
        SourceKind::Stdin | SourceKind::Socket { .. } => {
            Err(JobError::Restore("stdin and socket sources cannot resume".into()))
        }
        SourceKind::Kafka(spec) => super::kafka::open_source(m, spec, Some(r)).map(|(s, _)| s),
    }
}

fn journal_path(journal: &Option<PathBuf>) -> Result<&Path, JobError> {
    journal.as_deref().ok_or_else(|| {
        JobError::Source(
            "an http source receives records posted to `weir serve`; `weir run` has no HTTP endpoint".into(),
        )
    })
}
