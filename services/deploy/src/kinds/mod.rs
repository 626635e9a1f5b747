//! What is particular to each catalogue kind: columns, validation, dependents.

mod app;
mod endpoint;
mod recipe;
mod template;

use crate::validate::{self, MAX_TEXT};
use goterra_core::ApiError;

/// The free-text fields every versioned kind carries.
pub(crate) fn check_versioning(prev: &str, remote: &str, rversion: &str, version: &str) -> Result<(), ApiError> {
    validate::text("prev", prev, MAX_TEXT)?;
    validate::text("remote", remote, MAX_TEXT)?;
    validate::text("rversion", rversion, MAX_TEXT)?;
    validate::text("version", version, MAX_TEXT)
}
