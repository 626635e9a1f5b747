//! Request and response bodies of `/store`, with the original routes' JSON keys.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Answer of `POST /store` and `POST /store/{id}/token`.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentToken {
    /// Public base URL of the platform.
    pub url: String,
    /// Deployment id.
    pub id: String,
    /// Token that reads and writes this deployment only.
    pub token: String,
    /// When the token expires, unix seconds.
    pub expires: u64,
}
crate::redacted_debug!(DeploymentToken { url, id, expires } hides { token });

/// Every user key of a deployment (metadata is not included).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeploymentData {
    pub deployment: BTreeMap<String, String>,
}

/// One key and its value. `PUT` also accepts `Key`/`Value` (field names match
/// case-insensitively), or a JSON array of such objects written atomically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyValue {
    /// 1 to 256 of letters, digits and `_ . : @ -`.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9_.:@-]{1,256}$"))]
    pub key: String,
    pub value: String,
}
