//! acct's JSON shapes. The original routes keep the original's (capitalised `RunResource`
//! keys, InfluxDB 1.x query results); the `/acct/v2` routes answer plain JSON.
// To move to `crates/goterra-client/src/acct.rs` once that crate exists (one definition of
// each shape).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `GET /acct/resources[/ns/{id}]`: the resources in use, per run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunResourceList {
    pub resources: Vec<RunResource>,
}

/// A run's resources in use (the original's capitalised keys).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InfluxAnswer {
    pub acct: Vec<InfluxResult>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InfluxResult {
    pub statement_id: i64,
    #[serde(rename = "Series")]
    pub series: Vec<InfluxSeries>,
    /// Always `null`.
    #[serde(rename = "Messages")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub messages: Option<Vec<Value>>,
}

/// One resource type and kind: `name` is `goterra.acct`, `tags` are `resource` and `kind`,
/// `columns` are `time, quantity, duration, [max,] cost`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InfluxSeries {
    pub name: String,
    pub tags: BTreeMap<String, String>,
    pub columns: Vec<String>,
    /// Rows in column order; `time` is an RFC 3339 string.
    #[schema(value_type = Vec<Vec<Object>>)]
    pub values: Vec<Vec<Value>>,
}

/// Usage of one resource type and kind over a period.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PeriodUsage {
    /// Unix seconds, inclusive.
    pub from: i64,
    /// Unix seconds, exclusive.
    pub to: i64,
    pub cost: f64,
    pub kinds: Vec<KindUsage>,
}

/// `GET /acct/v2/ns/{id}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunCost {
    pub run: String,
    pub namespace: String,
    pub cost: f64,
}

/// `GET /acct/v2/user/{uid}`: usage of the runs a user started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserUsage {
    pub uid: String,
    pub from: i64,
    pub to: i64,
    pub cost: f64,
    pub kinds: Vec<KindUsage>,
    pub runs: Vec<RunCost>,
}
