//! What every deploy handler gets: the platform, the secret box, the run queue and limits, and
//! the repositories over the platform's database.

use crate::crypto::SecretBox;
use crate::run_options::RunOptions;
use crate::storage::catalogue::{CatalogueRepo, Stored};
use crate::storage::endpoint_secrets::EndpointSecretRepo;
use crate::storage::namespaces::NamespaceRepo;
use crate::storage::runs::RunRepo;
use crate::storage::states::StateRepo;
use axum::extract::FromRef;
use goterra_bus::RunQueue;
use goterra_core::{Authenticator, Platform};
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
    pub fn namespaces(&self) -> NamespaceRepo<'_> {
        NamespaceRepo::new(&self.platform.db)
    }

    pub fn catalogue<K: Stored>(&self) -> CatalogueRepo<'_, K> {
        CatalogueRepo::new(&self.platform.db)
    }

    pub fn endpoint_secrets(&self) -> EndpointSecretRepo<'_> {
        EndpointSecretRepo::new(&self.platform.db)
    }

    pub fn run_repo(&self) -> RunRepo<'_> {
        RunRepo::new(&self.platform.db)
    }

    pub fn states(&self) -> StateRepo<'_> {
        StateRepo::new(&self.platform.db)
    }
}

impl FromRef<AppState> for Arc<Authenticator> {
    fn from_ref(state: &AppState) -> Self {
        state.platform.authenticator.clone()
    }
}
