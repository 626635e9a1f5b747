//! JSON shapes of the API. Field names are the original service's (reference §4), so existing
//! clients, the UI and community catalogues keep working. Every field has a default: clients
//! send partial objects, and `null` (what the original wrote for empty lists and maps) reads as
//! empty.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

pub type Labels = BTreeMap<String, String>;
pub type Defaults = BTreeMap<String, Vec<String>>;

/// A namespace: a team and its catalogue. Note `_id`, not `id`, as in the original.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Namespace {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    /// Users who manage the namespace (always at least one).
    pub owners: Vec<String>,
    /// Users who use the namespace's catalogue (owners are members too, not repeated here).
    pub members: Vec<String>,
    /// When true, new runs in this namespace are refused. Only admins and super users change it.
    pub freeze: bool,
}

/// A shell script run in a VM at boot; may extend a `parent` recipe.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Recipe {
    /// Set by the server.
    pub id: String,
    pub name: String,
    pub description: String,
    pub script: String,
    pub public: bool,
    /// Owning namespace, set by the server.
    pub namespace: String,
    /// Base images the script supports (only read on recipes without a parent).
    pub base: Vec<String>,
    /// Id of the recipe this one extends: public, or in the same namespace.
    pub parent: String,
    /// Last change (unix seconds), set by the server.
    pub ts: i64,
    pub prev: String,
    pub inputs: Labels,
    pub tags: Vec<String>,
    pub remote: String,
    pub rversion: String,
    pub version: String,
    /// A frozen recipe refuses changes and deletion until an admin unfreezes it.
    pub frozen: bool,
    pub defaults: Defaults,
}

/// One Terraform file per endpoint kind, and the variables that receive recipe id lists.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Template {
    pub id: String,
    pub namespace: String,
    pub ts: i64,
    pub public: bool,
    pub name: String,
    pub description: String,
    /// Endpoint kind (`openstack`, `local`...) → Terraform (HCL) file.
    pub data: BTreeMap<String, String>,
    /// Unused VM model description, kept for compatibility.
    #[schema(value_type = Vec<Object>)]
    pub model: Vec<serde_json::Value>,
    pub inputs: Labels,
    pub prev: String,
    pub tags: Vec<String>,
    pub remote: String,
    pub rversion: String,
    pub version: String,
    pub frozen: bool,
    pub defaults: Defaults,
    /// Variables that receive a list of recipe ids (one per VM role).
    pub varrecipes: Vec<String>,
}

/// A template plus the recipes to run for each of its recipe variables.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Application {
    pub id: String,
    pub name: String,
    pub description: String,
    pub public: bool,
    /// Legacy list, stored but not used: `templaterecipes` is what counts.
    pub recipes: Vec<String>,
    pub namespace: String,
    /// Template id (required): public, or in the same namespace.
    pub template: String,
    /// Base images usable by every recipe, computed by the server.
    pub image: Vec<String>,
    pub ts: i64,
    pub prev: String,
    /// Recipe variable of the template → recipe ids, in execution order.
    pub templaterecipes: BTreeMap<String, Vec<String>>,
    pub remote: String,
    pub rversion: String,
    pub version: String,
    pub frozen: bool,
    pub defaults: Defaults,
}

/// A cloud: kind, preset configuration, image map, features and the inputs users give.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Endpoint {
    pub id: String,
    pub name: String,
    /// Selects the template file (`template.data[kind]`).
    pub kind: String,
    pub namespace: String,
    /// Capability flags, given to Terraform as `feature_<name>`.
    pub features: BTreeMap<String, String>,
    pub inputs: Labels,
    /// Preset Terraform variables.
    pub config: BTreeMap<String, String>,
    /// Base image name → cloud image id.
    pub images: BTreeMap<String, String>,
    pub public: bool,
    pub ts: i64,
    pub remote: String,
    pub defaults: Defaults,
}

/// `PUT .../endpoint/{endpoint}/secret` body.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct SecretRequest {
    /// Cloud user name.
    pub name: String,
    /// Cloud password: stored encrypted, never returned.
    #[schema(value_type = String)]
    pub password: goterra_core::Sensitive<String>,
}

/// What `GET .../secret` tells: that a secret exists, and for which cloud user.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SecretStatus {
    pub message: String,
    /// The cloud user name (the original's misnamed key, kept for old clients).
    pub uid: String,
    /// The cloud user name.
    pub name: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Message {
    pub message: String,
}

/// Per-user suggested values for an endpoint's inputs.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct EndpointDefaults {
    pub defaults: Defaults,
}

/// Everything a user may have to give to run an application (`/inputs`).
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct InputsSummary {
    /// Template inputs.
    pub template: Labels,
    /// Inputs of the application's recipes, ancestors included (a child overrides its parent).
    pub recipes: Labels,
    /// Endpoint id → its inputs, for every endpoint usable from the application's namespace.
    pub endpoints: BTreeMap<String, Labels>,
    /// Endpoint id → endpoint name.
    pub endpointnames: BTreeMap<String, String>,
    /// Endpoint id → suggested values: the endpoint's, overridden by the caller's own.
    pub endpointdefaults: BTreeMap<String, Defaults>,
    /// Suggested values: recipes', overridden by the template's, overridden by the application's.
    pub defaults: Defaults,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub token: String,
}
