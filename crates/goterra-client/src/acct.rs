//! Shapes of acct's routes (`/acct/...`: the original ones, with the original's capitalised keys
//! and InfluxDB-shaped results, and the plain `/acct/v2/...` ones), and of the routes deploy
//! serves to acct with a service credential (`/deploy/service/...`).

use crate::runs::RunAction;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// `GET /acct/resources[/ns/{id}]`: the resources in use, per run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunResourceList {
    pub resources: Vec<RunResource>,
}

/// A run's resources in use (the original's capitalised keys).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunResource {
    #[serde(rename = "Run")]
    pub run: String,
    #[serde(rename = "Endpoint")]
    pub endpoint: String,
    #[serde(rename = "Resources")]
    pub resources: Vec<UsedResource>,
    #[serde(rename = "Namespace")]
    pub namespace: String,
}

/// Resources of one type and kind in one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsedResource {
    #[serde(rename = "Kind")]
    pub kind: String,
    #[serde(rename = "Resource")]
    pub resource: String,
    /// Units in use (instances, or GB for sized resources).
    #[serde(rename = "Quantity")]
    pub quantity: f64,
}

/// `GET /acct/ns/{id}[/from/{from}[/to/{to}]]`: the original's InfluxDB query result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InfluxAnswer {
    pub acct: Vec<InfluxResult>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InfluxResult {
    pub statement_id: i64,
    #[serde(rename = "Series")]
    pub series: Vec<InfluxSeries>,
    /// Always `null`.
    #[serde(rename = "Messages")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>))]
    pub messages: Option<Vec<Value>>,
}

/// One resource type and kind: `name` is `goterra.acct`, `tags` are `resource` and `kind`,
/// `columns` are `time, quantity, duration, [max,] cost`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InfluxSeries {
    pub name: String,
    pub tags: BTreeMap<String, String>,
    pub columns: Vec<String>,
    /// Rows in column order; `time` is an RFC 3339 string.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<Object>>))]
    pub values: Vec<Vec<Value>>,
}

/// Usage of one resource type and kind over a period.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KindUsage {
    /// Terraform resource type.
    pub resource: String,
    pub kind: String,
    /// Resource intervals counted (an instance whose kind, size or price changed counts once
    /// per change).
    pub intervals: u64,
    /// Sum of the quantities of the intervals counted (instances, or GB).
    pub quantity: f64,
    /// Instance·seconds within the period.
    pub seconds: i64,
    /// Unit·seconds within the period (seconds × quantity): what prices apply to.
    pub unit_seconds: f64,
    /// Most units in use at once within the period.
    pub max_quantity: f64,
    pub cost: f64,
}

/// Usage within one step of a series.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PeriodUsage {
    /// Unix seconds, inclusive.
    pub from: i64,
    /// Unix seconds, exclusive.
    pub to: i64,
    pub cost: f64,
    pub kinds: Vec<KindUsage>,
}

/// `GET /acct/v2/ns/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NamespaceUsage {
    pub namespace: String,
    pub from: i64,
    pub to: i64,
    pub cost: f64,
    pub kinds: Vec<KindUsage>,
    /// One entry per step (`day` or `hour`) of the period; empty without `step`.
    pub series: Vec<PeriodUsage>,
}

/// One resource interval within a period.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResourceUsage {
    pub address: String,
    pub resource: String,
    pub kind: String,
    pub quantity: f64,
    /// Per unit and second.
    pub price: f64,
    /// Unix seconds the interval started.
    pub start: i64,
    /// Unix seconds it ended; `null` while the resource exists.
    pub end: Option<i64>,
    /// Seconds within the period.
    pub seconds: i64,
    pub cost: f64,
}

/// `GET /acct/v2/ns/{id}/run/{run}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunUsageReport {
    pub run: String,
    pub namespace: String,
    pub endpoint: String,
    pub uid: String,
    pub from: i64,
    pub to: i64,
    pub cost: f64,
    pub kinds: Vec<KindUsage>,
    pub resources: Vec<ResourceUsage>,
}

/// Cost of one run within a period.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunCost {
    pub run: String,
    pub namespace: String,
    pub cost: f64,
}

/// `GET /acct/v2/user/{uid}`: usage of the runs a user started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserUsage {
    pub uid: String,
    pub from: i64,
    pub to: i64,
    pub cost: f64,
    pub kinds: Vec<KindUsage>,
    pub runs: Vec<RunCost>,
}

// Routes deploy serves to other platform services (acct), with a service credential:
// `GET /deploy/service/ns/{id}`, `GET /deploy/service/run/{id}/usage?attributes=a,b`,
// `GET /deploy/service/runs?since=T`.

/// Who belongs to a namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NamespaceMembers {
    pub id: String,
    pub name: String,
    pub owners: Vec<String>,
    pub members: Vec<String>,
}

impl NamespaceMembers {
    /// Owners and members see the namespace's usage.
    pub fn includes(&self, uid: &str) -> bool {
        self.owners.iter().chain(&self.members).any(|user| user == uid)
    }
}

/// One end of an action in a run's history (deploy's `events`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunHistoryEntry {
    /// Unix seconds.
    pub ts: i64,
    pub action: RunAction,
    pub success: bool,
}

/// A run's history and the resources of its current Terraform state, with only the
/// attributes that were asked for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunUsage {
    pub run: String,
    pub namespace: String,
    pub endpoint: String,
    pub uid: String,
    pub status: String,
    /// Every action end, oldest first.
    pub history: Vec<RunHistoryEntry>,
    /// False when deploy keeps no state for the run (never deployed, or destroyed).
    pub has_state: bool,
    pub resources: Vec<UsageResource>,
}

/// One managed resource instance (each `count`/`for_each` index, in any module).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageResource {
    /// Terraform's address, e.g. `module.net.openstack_compute_instance_v2.vm[0]`.
    pub address: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    /// The asked-for attributes the instance has, when they are strings, numbers or booleans
    /// and Terraform did not mark them sensitive.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub attributes: BTreeMap<String, Value>,
}

/// Most runs one [`ChangedRuns`] answer lists; the caller asks again from the last `status_at`.
pub const CHANGED_RUNS_PAGE: i64 = 1000;

/// Runs whose status changed at or after a time, oldest change first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangedRuns {
    pub runs: Vec<ChangedRun>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChangedRun {
    pub id: String,
    /// Unix seconds of the run's last status change.
    pub status_at: i64,
}
