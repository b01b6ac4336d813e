//! What a step may write to the server's log: a budget of lines per second
//! shared by everything the step logs on behalf of its functions (their
//! `log` calls, stdout and stderr, and the warning for each dead-lettered
//! record), and the escaping of what a guest wrote.
//!
//! Issue 18, item 10: the budget used to belong to one instance, and a
//! trapped instance is replaced by a fresh one with a fresh budget, so a
//! function that panics on every record logged without limit; and a guest's
//! `\n` started a line of its own that looked like the server's. Now the
//! budget belongs to the step (all its subtasks and instances, across
//! traps and swaps), and control characters in a guest's text are escaped.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Lines per second a step may log for each budget.
pub const LINES_PER_SECOND: u32 = 50;

/// The decision for one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Log it; `dropped` lines were refused in the window before (say so
    /// first, when not zero).
    Log {
        /// Lines not logged since the last report.
        dropped: u64,
    },
    /// Over the budget: count it and move on.
    Drop,
}

/// At most [`LINES_PER_SECOND`] lines per one-second window; the lines
/// refused are counted and reported with the first line of a later window.
#[derive(Debug, Default)]
pub struct LogBudget {
    window: Option<Instant>,
    logged: u32,
    dropped: u64,
}

impl LogBudget {
    /// Whether one more line may be logged at `now`.
    pub fn admit(&mut self, now: Instant) -> Admit {
        let mut reported = 0;
        match self.window {
            Some(start) if now.saturating_duration_since(start) < Duration::from_secs(1) => {}
            _ => {
                self.window = Some(now);
                self.logged = 0;
                reported = std::mem::take(&mut self.dropped);
            }
        }
        if self.logged >= LINES_PER_SECOND {
            self.dropped += 1;
            return Admit::Drop;
        }
        self.logged += 1;
        Admit::Log { dropped: reported }
    }
}

/// A budget shared by the subtasks and instances of one step.
#[derive(Debug, Clone, Default)]
pub struct SharedLogBudget(Arc<Mutex<LogBudget>>);

impl SharedLogBudget {
    /// Whether one more line may be logged now; when a window with refused
    /// lines is over, logs how many (`what`: which lines, for the message).
    pub fn admit(&self, step: &str, what: &str) -> bool {
        self.admit_at(step, what, Instant::now())
    }

    /// [`SharedLogBudget::admit`] at `now`.
    pub fn admit_at(&self, step: &str, what: &str, now: Instant) -> bool {
        let decision = self.0.lock().unwrap_or_else(PoisonError::into_inner).admit(now);
        match decision {
            Admit::Drop => false,
            Admit::Log { dropped } => {
                if dropped > 0 {
                    tracing::warn!(target: "weir::guest", udf = %step, "{dropped} {what} lines not logged (over {LINES_PER_SECOND}/s)");
                }
                true
            }
        }
    }
}

/// `text` with every control character (newlines, carriage returns,
/// escape sequences) written as a Rust escape (`\n`, `\u{1b}`), so what a
/// guest writes stays on its own log line and cannot drive a terminal.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_to_the_budget_and_the_rest_counted_once() {
        let (mut b, t0) = (LogBudget::default(), Instant::now());
        let admitted = (0..1000).filter(|_| b.admit(t0) != Admit::Drop).count();
        assert_eq!(admitted, LINES_PER_SECOND as usize);
        assert_eq!(b.admit(t0 + Duration::from_millis(1001)), Admit::Log { dropped: 1000 - 50 });
        assert_eq!(b.admit(t0 + Duration::from_millis(1002)), Admit::Log { dropped: 0 }, "reported once");
    }

    #[test]
    fn a_function_trapping_on_every_record_shares_one_budget_across_its_instances() {
        // Each trap replaces the instance; the budget is the step's, so the
        // replacements do not start afresh.
        let (step, t0) = (SharedLogBudget::default(), Instant::now());
        let admitted = (0..500u64)
            .filter(|i| {
                let fresh_instance = step.clone();
                fresh_instance.admit_at("panicky@1", "log", t0 + Duration::from_micros(*i))
            })
            .count();
        assert_eq!(admitted, LINES_PER_SECOND as usize);
    }

    #[test]
    fn a_guest_cannot_forge_a_log_line_or_drive_the_terminal() {
        let forged = "ok\n2026-12-03T00:00:00Z  INFO weir: admin logged in\r\x1b[2J";
        let escaped = escape_controls(forged);
        assert!(!escaped.chars().any(char::is_control), "{escaped}");
        assert_eq!(escaped, "ok\\n2026-12-03T00:00:00Z  INFO weir: admin logged in\\r\\u{1b}[2J");
        assert!(matches!(escape_controls("plain text, ünïcode"), Cow::Borrowed(_)));
    }
}
