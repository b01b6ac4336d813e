//! The step's `params`, as given to `init`.

use crate::error::{Error, Result};
use std::str::FromStr;

/// Name/value parameters from the pipeline manifest, in manifest order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Parameters from name/value pairs.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Params { pairs }
    }

    /// The value of `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The value of `name`, or an `invalid-params` error saying it is missing.
    pub fn require(&self, name: &str) -> Result<&str> {
        self.get(name).ok_or_else(|| Error::invalid_params(format!("missing parameter `{name}`")))
    }

    /// `name` parsed as `T`, `None` when absent, an `invalid-params` error
    /// naming the parameter when it does not parse.
    pub fn parse<T: FromStr>(&self, name: &str) -> Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(None),
            Some(v) => {
                v.parse().map(Some).map_err(|e| Error::invalid_params(format!("parameter `{name}` = {v:?}: {e}")))
            }
        }
    }

    /// Fails with an `invalid-params` error naming any parameter not in `known`,
    /// so that a misspelt parameter is caught when the pipeline starts.
    pub fn allow_only(&self, known: &[&str]) -> Result<()> {
        match self.pairs.iter().find(|(n, _)| !known.contains(&n.as_str())) {
            None => Ok(()),
            Some((n, _)) if known.is_empty() => {
                Err(Error::invalid_params(format!("unknown parameter `{n}`: this function takes no parameters")))
            }
            Some((n, _)) => {
                Err(Error::invalid_params(format!("unknown parameter `{n}` (known: {})", known.join(", "))))
            }
        }
    }

    /// All parameters, in manifest order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Whether no parameter was given.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}
