//! The API's JSON shapes: goterra-client's, the one definition the services and every client
//! share. The UI adds only what its pages need to know of a catalogue kind.

pub use goterra_client::auth::{
    ApiKeyLoginAnswer, LoginAnswer, RegisterRequest, UpdateUserRequest, UserAnswer, UserView as User, UsersAnswer,
};
pub use goterra_client::deploy::{
    Application, CatalogueItem, Defaults, Endpoint, EndpointDefaults, InputsResponse, InputsSummary, Labels, Namespace,
    NamespaceList, NamespaceOne, Recipe, Template,
};
pub use goterra_client::run_agent::{ResourceInstance, RunResources};
pub use goterra_client::runs::{Run, RunEvent, RunList, RunLog, RunRequest};
pub use goterra_client::store::DeploymentData;

/// A catalogue kind as the pages show it.
pub trait CatalogueKind: CatalogueItem<Id: Send + Sync> + Default {
    /// Shown in titles: "recipe", "template"...
    const TITLE: &'static str;
    fn public(&self) -> bool;
    fn description(&self) -> &str;
    fn version(&self) -> &str;
}

macro_rules! catalogue_kind {
    ($kind:ty, $title:literal, { $($texts:tt)* }) => {
        impl CatalogueKind for $kind {
            const TITLE: &'static str = $title;
            fn public(&self) -> bool {
                self.public
            }
            $($texts)*
        }
    };
    // Deploy keeps neither a description nor a version for endpoints.
    ($kind:ty, $title:literal) => {
        catalogue_kind!($kind, $title, {
            fn description(&self) -> &str {
                ""
            }
            fn version(&self) -> &str {
                ""
            }
        });
    };
    ($kind:ty, $title:literal, versioned) => {
        catalogue_kind!($kind, $title, {
            fn description(&self) -> &str {
                &self.description
            }
            fn version(&self) -> &str {
                &self.version
            }
        });
    };
}

catalogue_kind!(Endpoint, "endpoint");
catalogue_kind!(Recipe, "recipe", versioned);
catalogue_kind!(Template, "template", versioned);
catalogue_kind!(Application, "application", versioned);
