//! Runs: an application deployed on an endpoint by Terraform, through the run queue and an agent.
//!
//! - [`prepare`] checks a run request and builds what the agent will need (Terraform variables,
//!   sensitive values, boot scripts);
//! - [`routes`] are the user routes (`/deploy/ns/{ns}/run...`, `/deploy/run`);
//! - [`agent`] are the routes the run agent calls (`/deploy/agent/run/{id}/...`) and
//!   [`tfstate`] Terraform's `http` backend on deploy's database;
//! - [`sealed`] seals and opens a run's sensitive values, and redacts them from reports;
//! - storage is [`crate::storage::runs`], with guarded status transitions;
//! - [`sweep`] fails or re-queues runs whose agent went silent, so no run is stuck;
//! - [`store_client`] creates and deletes the run's store deployment over HTTP.

pub mod agent;
pub mod metrics;
pub mod model;
pub mod prepare;
pub mod routes;
pub mod sealed;
pub mod store_client;
pub mod sweep;
pub mod tfstate;

pub use crate::run_options::RunOptions;
