#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Security findings of issue #11, each reproduced against real servers (SQLite and PostgreSQL
//! where storage is involved): revocation in `goterra up` and split across processes, store
//! deployments bound to namespace ids, the edge text rule, HTTP limits, login throttling,
//! data dir permissions and JSON error bodies.

mod edge;
mod namespaces;
mod revocation;
mod support;
