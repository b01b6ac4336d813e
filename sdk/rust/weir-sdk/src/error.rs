//! Errors a function reports as values.

use std::fmt;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The step's `params` do not suit the function (from `init`).
    InvalidParams,
    /// A record is not what the function expects: the record is dead-lettered.
    InvalidInput,
    /// Anything else.
    Failed,
}

/// A failure reported as a value.
///
/// From a per-record function (`map`, `filter`, `flat_map`) any error refuses
/// that record only: the host dead-letters it with the message and the rest of
/// the batch goes on. Every `std::error::Error` converts into an
/// [`ErrorKind::InvalidInput`] error, so `?` works on parse results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The step's parameters are unusable.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Error { kind: ErrorKind::InvalidParams, message: message.into() }
    }

    /// The input record is unusable.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error { kind: ErrorKind::InvalidInput, message: message.into() }
    }

    /// Something else failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Error { kind: ErrorKind::Failed, message: message.into() }
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(e: E) -> Self {
        Error::invalid_input(e.to_string())
    }
}

impl From<Error> for crate::bindings::weir::udf::types::UdfError {
    fn from(e: Error) -> Self {
        use crate::bindings::weir::udf::types::UdfError as W;
        match e.kind {
            ErrorKind::InvalidParams => W::InvalidParams(e.message),
            ErrorKind::InvalidInput => W::InvalidInput(e.message),
            ErrorKind::Failed => W::Failed(e.message),
        }
    }
}
