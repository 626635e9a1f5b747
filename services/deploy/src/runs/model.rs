//! JSON shapes of the run routes. Field names are the original's (reference §4.8): `appID`,
//! `UID`, `secretinputs` (always `null` in answers), `start`/`end`, `outputs` as the raw text of
//! `terraform output -json`.

use goterra_core::Sensitive;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `POST /deploy/ns/{ns}/run/{app}` body. Unknown fields (the original accepted `id`, `status`,
/// `outputs`... from clients) are ignored.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
pub struct RunRequest {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Endpoint id (public, or of the namespace).
    #[serde(default)]
    pub endpoint: String,
    #[serde(default)]
    /// Plain input values, stored in clear and shown in the run.
    pub inputs: Option<BTreeMap<String, String>>,
    /// Sensitive values: stored encrypted, given to Terraform as `TF_VAR_*`, never shown.
    /// `user_name`/`password` here override the owner's endpoint secret.
    #[serde(default)]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub secretinputs: Option<BTreeMap<String, Sensitive<String>>>,
}

/// One entry of a run's history.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RunEvent {
    pub ts: i64,
    pub action: String,
    pub success: bool,
}

/// A run as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Run {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(rename = "appID")]
    pub app_id: String,
    pub inputs: BTreeMap<String, String>,
    /// Always `null`: sensitive inputs are never returned.
    #[schema(value_type = Option<Object>)]
    pub secretinputs: Option<()>,
    pub status: String,
    pub endpoint: String,
    pub namespace: String,
    #[serde(rename = "UID")]
    pub uid: String,
    /// Creation time (unix seconds).
    pub start: i64,
    /// When the run was destroyed (0 while it lives).
    pub end: i64,
    /// Seconds spent on the last action.
    pub duration: f64,
    /// `terraform output -json` of the last deploy, as text.
    pub outputs: String,
    /// Why the last action failed.
    pub error: String,
    /// The run's store deployment id.
    pub deployment: String,
    pub events: Vec<RunEvent>,
    /// The action an agent works on or will work on (`deploy`, `destroy`), if any.
    pub action: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunCreated {
    pub run: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    pub runs: Vec<Run>,
}

/// `GET .../log`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunLog {
    /// Redacted Terraform output, oldest first.
    pub lines: Vec<String>,
    /// Index of the next line (for `?from=`).
    pub next: i64,
    pub status: String,
}

/// `POST .../terraform`: the files an agent would write, sensitive values left out.
#[derive(Debug, Serialize, ToSchema)]
pub struct TerraformPreview {
    #[serde(rename = "app.tf")]
    pub app_tf: String,
    /// The variable declarations the agent generates.
    #[serde(rename = "variables.tf")]
    pub variables_tf: String,
    #[serde(rename = "terraform.tfvars.json")]
    pub tfvars: String,
    /// Names of the sensitive variables, given as `TF_VAR_*` (values not shown).
    pub sensitive: Vec<String>,
}
