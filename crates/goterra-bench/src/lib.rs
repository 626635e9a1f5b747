//! Helpers shared by the bench tools of `scripts/bench.sh`: a bare HTTP/1.1 client (so the load
//! client costs the shared cores as little as possible) and the many-waiters scenario of the
//! store.

pub mod http;
pub mod process;
pub mod waiters;
