//! Shared pieces of every Goterra service.

pub mod auth;
pub mod config;
pub mod config_reference;
pub mod cookies;
pub mod discovery;
pub mod edge;
pub mod error;
pub mod events;
pub mod extract;
pub mod fernet_codec;
pub mod forwarded;
pub mod http;
pub mod identity;
pub mod lifecycle;
pub mod namespaces;
pub mod ops;
pub mod sensitive;
pub mod sso;
pub mod token;
pub mod user_cache;

pub use auth::{
    AgentCaller, ApiKeyResolver, AuthUser, Authenticator, Caller, ConfirmedUser, MaybeUser, ServiceCaller, StoreCaller,
};
pub use config::Config;
pub use error::{ApiError, ApiResult, ErrorBody};
pub use events::{Event, EventBus, InProcessEventBus};
pub use extract::{ApiJson, ApiQuery, Pagination};
pub use identity::Identity;
pub use lifecycle::Lifecycle;
pub use sensitive::Sensitive;
pub use token::{Claims, TokenCodec, TokenScope};

/// A new random identifier for stored objects.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub mod platform;
pub mod remote;
pub mod revocation;
pub mod runs;
pub use platform::Platform;
pub mod service;
pub use service::ServiceSpec;
pub mod service_api;
pub mod tfstate;
