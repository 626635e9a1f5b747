//! Runs: the user routes of deploy (`/deploy/ns/{ns}/run...`) and the wire types of a run's
//! life, shared by deploy (which creates runs and answers agents) and the run agent (which
//! executes them).
//!
//! The queue carries only a [`RunJob`] (`{"action","id"}`): secrets never travel through the
//! broker. An agent that takes a job asks deploy for the [`RunSpec`] over HTTPS with its agent
//! credential, streams [`LogLines`], and reports a [`RunReport`]. The agent routes on deploy are:
//!
//! | Method and path | Body | Answer |
//! |---|---|---|
//! | `GET /deploy/agent/run/{id}/spec?action=deploy\|destroy` | – | [`RunSpec`] |
//! | `POST /deploy/agent/run/{id}/started` | – | [`AgentAnswer`] |
//! | `POST /deploy/agent/run/{id}/log` | [`LogLines`] | [`AgentAnswer`] |
//! | `POST /deploy/agent/run/{id}/heartbeat` | – | [`AgentAnswer`] |
//! | `POST /deploy/agent/run/{id}/finished` | [`RunReport`] | [`AgentAnswer`] |
//! | `POST /deploy/agent/run/{id}/release` | – | [`AgentAnswer`] |

use crate::sensitive::{Sensitive, sensitive_serde};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// What a run job asks an agent to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RunAction {
    Deploy,
    Destroy,
}

impl RunAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deploy => "deploy",
            Self::Destroy => "destroy",
        }
    }
}

impl fmt::Display for RunAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RunAction {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "deploy" => Ok(Self::Deploy),
            "destroy" => Ok(Self::Destroy),
            other => Err(format!("unknown run action {other:?}: expected deploy or destroy")),
        }
    }
}

/// A run's status, with the original names (`deploy_pending`, ...) plus `canceled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    DeployPending,
    DeployInProgress,
    DeploySuccess,
    DeployFailure,
    DestroyPending,
    DestroyInProgress,
    DestroySuccess,
    DestroyFailure,
    Canceled,
}

impl RunStatus {
    pub const ALL: [Self; 9] = [
        Self::DeployPending,
        Self::DeployInProgress,
        Self::DeploySuccess,
        Self::DeployFailure,
        Self::DestroyPending,
        Self::DestroyInProgress,
        Self::DestroySuccess,
        Self::DestroyFailure,
        Self::Canceled,
    ];

    pub fn pending(action: RunAction) -> Self {
        match action {
            RunAction::Deploy => Self::DeployPending,
            RunAction::Destroy => Self::DestroyPending,
        }
    }

    pub fn in_progress(action: RunAction) -> Self {
        match action {
            RunAction::Deploy => Self::DeployInProgress,
            RunAction::Destroy => Self::DestroyInProgress,
        }
    }

    pub fn success(action: RunAction) -> Self {
        match action {
            RunAction::Deploy => Self::DeploySuccess,
            RunAction::Destroy => Self::DestroySuccess,
        }
    }

    pub fn failure(action: RunAction) -> Self {
        match action {
            RunAction::Deploy => Self::DeployFailure,
            RunAction::Destroy => Self::DestroyFailure,
        }
    }

    /// True once no agent works on the run any more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::DeploySuccess | Self::DeployFailure | Self::DestroySuccess | Self::DestroyFailure | Self::Canceled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeployPending => "deploy_pending",
            Self::DeployInProgress => "deploy_in_progress",
            Self::DeploySuccess => "deploy_success",
            Self::DeployFailure => "deploy_failure",
            Self::DestroyPending => "destroy_pending",
            Self::DestroyInProgress => "destroy_in_progress",
            Self::DestroySuccess => "destroy_success",
            Self::DestroyFailure => "destroy_failure",
            Self::Canceled => "canceled",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RunStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| format!("unknown run status {text:?}"))
    }
}

/// The queue message: which run, which action. Nothing else, so a broker (or whoever reads
/// it) never sees a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunJob {
    pub action: RunAction,
    /// The run's id.
    pub id: String,
}

impl RunJob {
    pub fn new(action: RunAction, id: impl Into<String>) -> Self {
        Self { action, id: id.into() }
    }
}

/// Where Terraform keeps the run's state: deploy's state endpoint, used as an `http` backend
/// (GET/POST the state, LOCK/UNLOCK at the same address).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateBackend {
    pub url: String,
    /// Given to Terraform as `TF_HTTP_USERNAME`.
    pub username: String,
    /// Given to Terraform as `TF_HTTP_PASSWORD`; a credential scoped to this run's state.
    #[serde(with = "sensitive_serde")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub password: Sensitive<String>,
}

/// Everything an agent needs to execute one action of a run. Deploy builds it on request; it
/// travels over HTTPS only, never through the queue, and the agent keeps it in memory only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunSpec {
    /// The run's id.
    pub run: String,
    pub action: RunAction,
    pub namespace: String,
    pub application: String,
    /// The application's template for the run's endpoint kind, written as `app.tf`.
    pub template: String,
    /// Plain Terraform variables (platform variables and run inputs), written to
    /// `terraform.tfvars.json`.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, Object>))]
    pub variables: BTreeMap<String, serde_json::Value>,
    /// Sensitive Terraform variables, given only as `TF_VAR_<name>` and redacted from the log.
    #[serde(default, with = "sensitive_serde::map")]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, String>))]
    pub sensitive: BTreeMap<String, Sensitive<String>>,
    pub state: StateBackend,
    /// How long the action may take, in seconds, before it is stopped and fails.
    pub timeout_secs: u64,
}

/// The result of one action, reported by the agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunReport {
    /// `<action>_success`, `<action>_failure` or `canceled`.
    pub status: RunStatus,
    /// `terraform output -json` after a deploy (`{}` otherwise).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub outputs: serde_json::Value,
    /// Seconds spent on the action, also on failure.
    pub duration: f64,
    /// Why the action failed (empty on success).
    #[serde(default)]
    pub error: String,
    /// The template's `deployment_id` output, when it has one.
    #[serde(default)]
    pub deployment_id: Option<String>,
}

/// Redacted lines of Terraform output.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogLines {
    pub lines: Vec<String>,
}

/// Deploy's answer to an agent's report: `cancel` asks the agent to stop the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentAnswer {
    #[serde(default)]
    pub cancel: bool,
    /// Only in the answer to `started`: the claim the agent won. It sends it back in the
    /// [`CLAIM_HEADER`] of its later reports, so that deploy refuses those of an agent whose run
    /// was taken over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
}

/// Header carrying an agent's claim on a run (see [`AgentAnswer::claim`]).
pub const CLAIM_HEADER: &str = "x-goterra-claim";

/// `POST /deploy/ns/{ns}/run/{app}` body. Unknown fields (the original accepted `id`, `status`,
/// `outputs`... from clients) are ignored.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    #[serde(default, with = "sensitive_serde::option_map")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, String>>))]
    pub secretinputs: Option<BTreeMap<String, Sensitive<String>>>,
}

/// One entry of a run's history.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunEvent {
    pub ts: i64,
    pub action: String,
    pub success: bool,
}

/// A run as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Run {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(rename = "appID")]
    pub app_id: String,
    pub inputs: BTreeMap<String, String>,
    /// Always `null`: sensitive inputs are never returned.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
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

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunCreated {
    pub run: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunList {
    pub runs: Vec<Run>,
}

/// `GET .../log`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunLog {
    /// Redacted Terraform output, oldest first.
    pub lines: Vec<String>,
    /// Index of the next line (for `?from=`).
    pub next: i64,
    pub status: String,
}

/// `POST .../terraform`: the files an agent would write, sensitive values left out.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_parse_back_from_their_names() {
        for status in RunStatus::ALL {
            assert_eq!(status.as_str().parse::<RunStatus>(), Ok(status));
        }
        assert!("deployed".parse::<RunStatus>().is_err());
    }

    #[test]
    fn a_job_is_only_action_and_id() {
        let job = RunJob::new(RunAction::Destroy, "r1");
        assert_eq!(
            serde_json::to_value(&job).unwrap(),
            json!({"action": "destroy", "id": "r1"})
        );
        // An original message with secrets still decodes, and the secrets are not kept.
        let old: RunJob =
            serde_json::from_value(json!({"action": "deploy", "id": "r2", "secrets": {"password": "x"}})).unwrap();
        assert_eq!(old, RunJob::new(RunAction::Deploy, "r2"));
    }

    #[test]
    fn statuses_keep_the_original_names() {
        assert_eq!(
            serde_json::to_value(RunStatus::failure(RunAction::Destroy)).unwrap(),
            json!("destroy_failure")
        );
        assert_eq!(RunStatus::in_progress(RunAction::Deploy).as_str(), "deploy_in_progress");
        assert_eq!(serde_json::to_value(RunStatus::Canceled).unwrap(), json!("canceled"));
        assert!(RunStatus::Canceled.is_terminal());
        assert!(!RunStatus::DestroyPending.is_terminal());
        assert_eq!("destroy".parse::<RunAction>().unwrap(), RunAction::Destroy);
        assert!("state".parse::<RunAction>().is_err());
    }

    #[test]
    fn a_spec_carries_secrets_over_the_wire_but_never_prints_them() {
        let spec = RunSpec {
            run: "r1".into(),
            action: RunAction::Deploy,
            namespace: "ns".into(),
            application: "app".into(),
            template: "resource \"null_resource\" \"a\" {}".into(),
            variables: BTreeMap::from([("count".to_string(), json!(2))]),
            sensitive: BTreeMap::from([("password".to_string(), Sensitive::new("hunter2".to_string()))]),
            state: StateBackend {
                url: "https://example.org/deploy/state/r1".into(),
                username: "run".into(),
                password: Sensitive::new("state-secret".into()),
            },
            timeout_secs: 60,
        };
        let wire = serde_json::to_value(&spec).unwrap();
        assert_eq!(wire["sensitive"], json!({"password": "hunter2"}));
        assert_eq!(wire["state"]["password"], json!("state-secret"));
        let back: RunSpec = serde_json::from_value(wire).unwrap();
        assert_eq!(back, spec);
        let printed = format!("{spec:?}");
        assert!(!printed.contains("hunter2") && !printed.contains("state-secret"));
    }

    #[test]
    fn a_report_has_the_documented_fields() {
        let report: RunReport = serde_json::from_value(json!({"status": "deploy_success", "duration": 1.5})).unwrap();
        assert_eq!(report.outputs, serde_json::Value::Null);
        assert_eq!(report.deployment_id, None);
        let wire = serde_json::to_value(RunReport {
            status: RunStatus::DeployFailure,
            outputs: json!({}),
            duration: 2.0,
            error: "boom".into(),
            deployment_id: Some("d1".into()),
        })
        .unwrap();
        assert_eq!(
            wire,
            json!({"status": "deploy_failure", "outputs": {}, "duration": 2.0, "error": "boom", "deployment_id": "d1"})
        );
    }
}
