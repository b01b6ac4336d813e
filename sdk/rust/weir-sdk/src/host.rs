//! Services of the host: logging and the watermark.

use crate::bindings::weir::udf::host;
use crate::bindings::weir::udf::types::Level;

/// Writes a line to the pipeline's log (tagged by the host with the function's
/// name, version and partition).
pub fn log(level: Level, message: &str) {
    host::log(level, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Logs at error level.
pub fn error(message: &str) {
    log(Level::Error, message);
}

/// Logs at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// The calling subtask's event-time watermark (`i64::MIN` before the first).
pub fn current_watermark() -> i64 {
    host::current_watermark()
}
