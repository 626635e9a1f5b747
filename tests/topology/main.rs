#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Faults of the platform's dependencies, played through a TCP proxy the test cuts and
//! restores: the services answer quickly and clearly during the outage and recover without a
//! restart.

mod database;
mod proxy;
