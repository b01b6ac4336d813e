//! `/metrics` in the Prometheus text format, per tenant, pipeline and step.

use crate::control::PipelineView;
use crate::operator::swap::LATENCY_BUCKETS;
use std::fmt::Write;

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Renders the counters of `pipelines` (the caller decides which it may see).
pub fn render(pipelines: &[PipelineView]) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &mut dyn FnMut(&mut String)| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        samples(&mut out);
    };
    let pl = |p: &PipelineView| {
        format!("tenant=\"{}\",pipeline=\"{}\",pipeline_name=\"{}\"", escape(&p.tenant), escape(&p.id), escape(&p.name))
    };
    family("weir_pipeline_up", "gauge", "1 when the pipeline is running.", &mut |out| {
        for p in pipelines {
            let up = u8::from(matches!(p.status.as_str(), "running" | "starting" | "stopping"));
            let _ = writeln!(out, "weir_pipeline_up{{{},status=\"{}\"}} {up}", pl(p), p.status);
        }
    });
    for (name, help, field) in [
        (
            "weir_step_records_in_total",
            "Records into the step.",
            (|s| s.records_in) as fn(&crate::control::StepView) -> u64,
        ),
        ("weir_step_records_out_total", "Records out of the step.", |s| s.records_out),
        ("weir_step_dead_lettered_total", "Records sent to the dead-letter output.", |s| s.dead_lettered),
        ("weir_step_errors_total", "Failed function calls.", |s| s.failed_calls),
        ("weir_step_late_total", "Records after their windows closed.", |s| s.late),
        ("weir_udf_calls_total", "Function calls.", |s| s.calls),
    ] {
        family(name, "counter", help, &mut |out| {
            for p in pipelines {
                for s in &p.steps {
                    let _ = writeln!(out, "{name}{{{},step=\"{}\"}} {}", pl(p), escape(&s.label), field(s));
                }
            }
        });
    }
    family("weir_udf_call_seconds_total", "counter", "Wall time inside function calls.", &mut |out| {
        for p in pipelines {
            for s in p.steps.iter().filter(|s| s.calls > 0) {
                let _ = writeln!(
                    out,
                    "weir_udf_call_seconds_total{{{},step=\"{}\"}} {}",
                    pl(p),
                    escape(&s.label),
                    s.call_wall_ns as f64 / 1e9
                );
            }
        }
    });
    family(
        "weir_udf_cpu_seconds_total",
        "counter",
        "CPU time of the calling threads inside function calls.",
        &mut |out| {
            for p in pipelines {
                for s in p.steps.iter().filter(|s| s.calls > 0) {
                    let _ = writeln!(
                        out,
                        "weir_udf_cpu_seconds_total{{{},step=\"{}\"}} {}",
                        pl(p),
                        escape(&s.label),
                        s.call_cpu_ns as f64 / 1e9
                    );
                }
            }
        },
    );
    for (name, kind, help, field) in [
        (
            "weir_udf_recycles_total",
            "counter",
            "Function instances replaced for their memory size (limits.recycle_above).",
            (|s| s.recycles) as fn(&crate::control::StepView) -> u64,
        ),
        (
            "weir_udf_instance_memory_peak_bytes",
            "gauge",
            "The largest linear memory one function instance had after a call.",
            |s| s.peak_memory,
        ),
    ] {
        family(name, kind, help, &mut |out| {
            for p in pipelines {
                for s in p.steps.iter().filter(|s| s.calls > 0) {
                    let _ = writeln!(out, "{name}{{{},step=\"{}\"}} {}", pl(p), escape(&s.label), field(s));
                }
            }
        });
    }
    family("weir_udf_call_latency_seconds", "histogram", "Latency of one function call (one batch).", &mut |out| {
        for p in pipelines {
            for s in p.steps.iter().filter(|s| s.calls > 0 && !s.call_buckets.is_empty()) {
                let labels = format!("{},step=\"{}\"", pl(p), escape(&s.label));
                let mut cumulative = 0;
                for (i, n) in s.call_buckets.iter().enumerate() {
                    cumulative += n;
                    let le = LATENCY_BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
                    let _ = writeln!(out, "weir_udf_call_latency_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}");
                }
                let _ = writeln!(out, "weir_udf_call_latency_seconds_sum{{{labels}}} {}", s.call_wall_ns as f64 / 1e9);
                let _ = writeln!(out, "weir_udf_call_latency_seconds_count{{{labels}}} {}", s.calls);
            }
        }
    });
    family(
        "weir_step_watermark_seconds",
        "gauge",
        "The step's event-time watermark (smallest over its subtasks), seconds since the epoch.",
        &mut |out| {
            for p in pipelines {
                for s in &p.steps {
                    if let Some(w) = s.watermark.filter(|&w| w > i64::MIN && w < i64::MAX) {
                        let _ = writeln!(
                            out,
                            "weir_step_watermark_seconds{{{},step=\"{}\"}} {}",
                            pl(p),
                            escape(&s.label),
                            w as f64 / 1e3
                        );
                    }
                }
            }
        },
    );
    family("weir_watermark_lag_seconds", "gauge", "Now minus the pipeline's output watermark.", &mut |out| {
        for p in pipelines {
            if let Some(lag) = p.watermark_lag_ms {
                let _ = writeln!(out, "weir_watermark_lag_seconds{{{}}} {}", pl(p), lag as f64 / 1e3);
            }
        }
    });
    family(
        "weir_checkpoint_duration_seconds",
        "gauge",
        "Trigger-to-completion time of the newest checkpoint.",
        &mut |out| {
            for p in pipelines {
                if let Some(ms) = p.checkpoints.last_duration_ms {
                    let _ = writeln!(out, "weir_checkpoint_duration_seconds{{{}}} {}", pl(p), ms as f64 / 1e3);
                }
            }
        },
    );
    family(
        "weir_checkpoints_total",
        "counter",
        "Checkpoints completed and failed since the pipeline (re)started.",
        &mut |out| {
            for p in pipelines {
                let _ = writeln!(
                    out,
                    "weir_checkpoints_total{{{},result=\"completed\"}} {}",
                    pl(p),
                    p.checkpoints.completed
                );
                let _ = writeln!(out, "weir_checkpoints_total{{{},result=\"failed\"}} {}", pl(p), p.checkpoints.failed);
            }
        },
    );
    out
}
