//! JSON shapes of the API, defined once in `goterra-client`. Field names are the original
//! service's (reference §4), so existing clients, the UI and community catalogues keep working.

pub use goterra_client::Message;
pub use goterra_client::deploy::{
    Application, Defaults, Endpoint, EndpointDefaults, InputsResponse, InputsSummary, Labels, Namespace, Recipe,
    SecretRequest, SecretStatus, Template, TokenResponse,
};
