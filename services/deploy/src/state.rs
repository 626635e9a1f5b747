//! What every deploy handler gets.

use crate::crypto::SecretBox;
use crate::runs::RunOptions;
use axum::extract::FromRef;
use goterra_bus::RunQueue;
use goterra_core::{Authenticator, Platform};
use goterra_db::Db;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub platform: Platform,
    pub secrets: Arc<SecretBox>,
    /// Where run jobs go (embedded table or RabbitMQ).
    pub queue: Arc<dyn RunQueue>,
    pub runs: RunOptions,
}

impl AppState {
    pub fn db(&self) -> &Db {
        &self.platform.db
    }
}

impl FromRef<AppState> for Arc<Authenticator> {
    fn from_ref(state: &AppState) -> Self {
        state.platform.authenticator.clone()
    }
}

pub fn now() -> i64 {
    i64::try_from(goterra_core::token::unix_now()).unwrap_or(i64::MAX)
}
