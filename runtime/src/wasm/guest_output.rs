//! A guest's stdout and stderr: forwarded to the log line by line (rate
//! limited) and the tail kept, so a trap can quote the panic message.
//!
//! Writes never fail: a function that prints too much loses log lines, not
//! its life (wasmtime's `MemoryOutputPipe` traps the guest once full).

use crate::log_budget::{escape_controls, SharedLogBudget};
use bytes::Bytes;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes of output kept for error messages.
const TAIL_BYTES: usize = 4096;
/// Longer lines are cut.
pub(crate) const MAX_LINE_BYTES: usize = 4096;

/// One instance's stdout or stderr.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    inner: Arc<Mutex<Captured>>,
}

struct Captured {
    label: Arc<str>,
    stream: &'static str,
    tail: VecDeque<u8>,
    line: Vec<u8>,
    budget: SharedLogBudget,
}

impl GuestOutput {
    /// Captures `stream` of an instance of `label`, logging under the
    /// step's `budget`.
    pub(crate) fn new(label: Arc<str>, stream: &'static str, budget: SharedLogBudget) -> Self {
        GuestOutput {
            inner: Arc::new(Mutex::new(Captured {
                label,
                stream,
                tail: VecDeque::with_capacity(TAIL_BYTES),
                line: Vec::new(),
                budget,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Captured> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The last bytes written, as text.
    pub(crate) fn tail(&self) -> String {
        let c = self.lock();
        let (a, b) = c.tail.as_slices();
        let mut v = a.to_vec();
        v.extend_from_slice(b);
        String::from_utf8_lossy(&v).into_owned()
    }

    fn write(&self, bytes: &[u8]) {
        let mut c = self.lock();
        c.tail.extend(bytes);
        let excess = c.tail.len().saturating_sub(TAIL_BYTES);
        c.tail.drain(..excess);
        for &b in bytes {
            if b == b'\n' {
                let line = std::mem::take(&mut c.line);
                c.emit(&line);
            } else if c.line.len() < MAX_LINE_BYTES {
                c.line.push(b);
            }
        }
    }
}

impl Captured {
    fn emit(&mut self, line: &[u8]) {
        if !self.budget.admit(&self.label, self.stream) {
            return;
        }
        let lossy = String::from_utf8_lossy(line);
        let text = escape_controls(&lossy);
        if self.stream == "stderr" {
            tracing::warn!(target: "weir::guest", udf = %self.label, "{text}");
        } else {
            tracing::info!(target: "weir::guest", udf = %self.label, "{text}");
        }
    }
}

/// The panic message in a guest's stderr tail (`panicked at src/lib.rs:3:5: boom`), if any.
pub(crate) fn panic_message(tail: &str) -> Option<String> {
    let start = tail.rfind("panicked at ")?;
    let rest = &tail[start..];
    let mut lines = rest.lines();
    let location = lines.next()?.trim_end_matches(':');
    let message: Vec<&str> = lines.take_while(|l| !l.starts_with("note: ")).collect();
    Some(format!("{location}: {}", message.join(" ").trim()))
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        GuestOutput::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        GuestOutput::write(&self, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail_and_finds_the_panic() {
        let out = GuestOutput::new("t@1".into(), "stderr", SharedLogBudget::default());
        out.write(&vec![b'x'; 10_000]);
        out.write(
            b"\nthread '<unnamed>' panicked at src/lib.rs:12:9:\nPANIC requested\nnote: run with `RUST_BACKTRACE=1`\n",
        );
        let tail = out.tail();
        assert!(tail.len() <= TAIL_BYTES);
        assert_eq!(panic_message(&tail).unwrap(), "panicked at src/lib.rs:12:9: PANIC requested");
        assert_eq!(panic_message("no panic here"), None);
    }
}
