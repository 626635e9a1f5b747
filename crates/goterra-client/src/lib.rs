//! The JSON shapes of Goterra's public routes — one definition, used by the services (with the
//! `openapi` feature, which adds `utoipa::ToSchema`) and by every client — and [`Client`], a
//! typed async client of those routes.
//!
//! | Module | Routes |
//! |---|---|
//! | [`auth`] | `/auth/...`: API-key login, token renewal, users |
//! | [`deploy`] | `/deploy/ns...`: namespaces, catalogue (recipes, templates, apps, endpoints), endpoint secrets and defaults, app inputs |
//! | [`runs`] | `/deploy/ns/{ns}/run...` and the agent routes `/deploy/agent/run/...` |
//! | [`store`] | `/store/...` |
//! | [`run_agent`] | `/run-agent/...` |
//! | [`acct`] | `/acct/...`, and the service routes deploy serves acct (`/deploy/service/...`) |

/// Implements `Debug` listing `fields` and printing `***` for `secrets`, for shapes that carry
/// a password, a token or an API key as a plain `String` (the services read them as such).
macro_rules! redacted_debug {
    ($name:ident { $($field:ident),* } hides { $($secret:ident),* }) => {
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    $(.field(stringify!($field), &self.$field))*
                    $(.field(stringify!($secret), &"***"))*
                    .finish()
            }
        }
    };
}
pub(crate) use redacted_debug;

pub mod acct;
pub mod auth;
pub mod client;
pub mod common;
pub mod deploy;
pub mod error;
pub mod ids;
pub mod run_agent;
pub mod runs;
pub mod sensitive;
pub mod store;

pub use client::{CallRecord, Client, Credential, LogEvent, LogFollower};
pub use common::{ErrorBody, Health, Message};
pub use error::{ClientError, ClientResult};
pub use ids::{
    ApplicationId, DeploymentId, EndpointId, IdError, NamespaceId, RecipeId, RunId, TemplateId, TypedId, Uid,
    new_object_id,
};
pub use sensitive::Sensitive;
