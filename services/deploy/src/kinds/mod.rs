//! What is particular to each catalogue kind: columns, validation, dependents.

mod app;
mod endpoint;
mod recipe;
mod template;

/// Accessors every kind implements the same way.
macro_rules! common_accessors {
    () => {
        fn id(&self) -> &str {
            &self.id
        }
        fn name(&self) -> &str {
            &self.name
        }
        fn namespace(&self) -> &str {
            &self.namespace
        }
        fn is_public(&self) -> bool {
            self.public
        }
        fn ts(&self) -> i64 {
            self.ts
        }
        fn set_server_fields(&mut self, id: &str, namespace: &str, ts: i64) {
            self.id = id.to_string();
            self.namespace = namespace.to_string();
            self.ts = ts;
        }
    };
}
pub(crate) use common_accessors;

use crate::validate::{self, MAX_TEXT};
use goterra_core::ApiError;

/// The free-text fields every versioned kind carries.
pub(crate) fn check_versioning(prev: &str, remote: &str, rversion: &str, version: &str) -> Result<(), ApiError> {
    validate::text("prev", prev, MAX_TEXT)?;
    validate::text("remote", remote, MAX_TEXT)?;
    validate::text("rversion", rversion, MAX_TEXT)?;
    validate::text("version", version, MAX_TEXT)
}
