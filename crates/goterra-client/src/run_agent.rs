//! Answers of `/run-agent`.

use crate::runs::RunAction;
use serde::{Deserialize, Serialize};

/// `GET /run-agent`: health for anyone; capacity and running runs for admins only (they name
/// namespaces and runs of every user).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentStatus {
    pub version: String,
    pub message: String,
    /// Runs this agent executes at once (0 when no agent runs in this process). Admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u16>,
    /// The runs in progress. Admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<Vec<RunningRun>>,
}

/// A run being executed, as `GET /run-agent` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunningRun {
    pub id: String,
    pub action: RunAction,
    /// Unix seconds.
    pub since: u64,
}

/// The resources of a run, from its stored Terraform state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunResources {
    pub run: String,
    /// The state's serial (how many times Terraform wrote it); 0 when there is no state yet.
    pub serial: u64,
    /// The Terraform version that last wrote the state.
    pub terraform_version: String,
    /// The addresses, as `terraform state list` prints them (the original's only field).
    pub states: Vec<String>,
    pub resources: Vec<ResourceInstance>,
}

/// One instance of a resource (a `count` or `for_each` resource has one per index).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResourceInstance {
    /// Terraform's address, e.g. `module.net.null_resource.vm[0]`.
    pub address: String,
    /// `managed` or `data`.
    pub mode: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub provider: String,
    /// The provider's id of the resource (a cloud's VM id), when it has one.
    pub id: Option<String>,
}
