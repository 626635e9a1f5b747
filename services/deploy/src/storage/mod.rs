//! Deploy's storage: one repository per aggregate, over [`goterra_db::Db`]. Every SQL statement
//! of deploy lives in this module; callers use named operations and typed filters, never SQL
//! text, and get a [`StorageError`] (mapped to an HTTP answer in [`crate::http_errors`]).
//!
//! - [`namespaces::NamespaceRepo`]: namespaces, their owners and members (the membership rule);
//! - [`catalogue::CatalogueRepo`]: recipes, templates, applications, endpoints, and what uses them;
//! - [`endpoint_secrets::EndpointSecretRepo`]: users' credentials and suggested values per endpoint;
//! - [`runs::RunRepo`]: runs, their guarded status changes, logs and sealed inputs (the live-run rule);
//! - [`states::StateRepo`]: the Terraform state and lock of each run.

pub mod catalogue;
pub mod endpoint_secrets;
pub mod namespaces;
pub mod runs;
pub mod states;

mod support;

pub use support::{Page, StorageError, StorageResult, now};
