#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The production topology and its faults: every service as its own process behind the real
//! Traefik, discovered through Redis ([`harness`], [`split`]), and outages of the platform's
//! dependencies played through a TCP proxy the tests cut and restore ([`proxy`], [`database`]):
//! the services answer quickly and clearly during an outage and recover without a restart.

mod database;
mod harness;
#[path = "../support/processes.rs"]
mod processes;
mod proxy;
mod split;
#[path = "../support/traefik.rs"]
mod traefik;
