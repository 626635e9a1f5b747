//! JSON shapes of `/deploy`: namespaces and the catalogue. Field names are the original service's (reference §4), so existing
//! clients, the UI and community catalogues keep working. Every field has a default: clients
//! send partial objects, and `null` (what the original wrote for empty lists and maps) reads as
//! empty.

use crate::sensitive::{Sensitive, sensitive_serde};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Input name → its label. The shapes below spell such maps out rather than use these aliases:
/// utoipa names a schema after the alias's target (`BTreeMap`), so two aliases would share one
/// (wrong) schema in the OpenAPI documents.
pub type Labels = BTreeMap<String, String>;
/// Input name → suggested values.
pub type Defaults = BTreeMap<String, Vec<String>>;

/// A namespace: a team and its catalogue. Note `_id`, not `id`, as in the original.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Namespace {
    #[serde(rename = "_id")]
    pub id: String,
    /// 1 to 128 characters once trimmed, not only spaces.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[^\S\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,126}[^\s\x00-\x1f\x7f-\x9f])?[^\S\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub name: String,
    /// Users who manage the namespace (always at least one).
    pub owners: Vec<String>,
    /// Users who use the namespace's catalogue (owners are members too, not repeated here).
    pub members: Vec<String>,
    /// When true, new runs in this namespace are refused. Only admins and super users change it.
    pub freeze: bool,
}

/// A shell script run in a VM at boot; may extend a `parent` recipe.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Recipe {
    /// Set by the server.
    pub id: String,
    /// 1 to 128 characters once trimmed, not only spaces.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[^\S\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,126}[^\s\x00-\x1f\x7f-\x9f])?[^\S\x00-\x1f\x7f-\x9f]*$"
        )
    )]
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
    pub inputs: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub remote: String,
    pub rversion: String,
    pub version: String,
    /// A frozen recipe refuses changes and deletion until an admin unfreezes it.
    pub frozen: bool,
    pub defaults: BTreeMap<String, Vec<String>>,
}

/// One Terraform file per endpoint kind, and the variables that receive recipe id lists.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Template {
    pub id: String,
    pub namespace: String,
    pub ts: i64,
    pub public: bool,
    /// 1 to 128 characters once trimmed, not only spaces.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[^\S\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,126}[^\s\x00-\x1f\x7f-\x9f])?[^\S\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub name: String,
    pub description: String,
    /// Endpoint kind (`openstack`, `local`...) → Terraform (HCL) file.
    pub data: BTreeMap<String, String>,
    /// Unused VM model description, kept for compatibility.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub model: Vec<serde_json::Value>,
    pub inputs: BTreeMap<String, String>,
    pub prev: String,
    pub tags: Vec<String>,
    pub remote: String,
    pub rversion: String,
    pub version: String,
    pub frozen: bool,
    pub defaults: BTreeMap<String, Vec<String>>,
    /// Variables that receive a list of recipe ids (one per VM role).
    pub varrecipes: Vec<String>,
}

/// A template plus the recipes to run for each of its recipe variables.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Application {
    pub id: String,
    /// 1 to 128 characters once trimmed, not only spaces.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[^\S\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,126}[^\s\x00-\x1f\x7f-\x9f])?[^\S\x00-\x1f\x7f-\x9f]*$"
        )
    )]
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
    pub defaults: BTreeMap<String, Vec<String>>,
}

/// A cloud: kind, preset configuration, image map, features and the inputs users give.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Endpoint {
    pub id: String,
    /// 1 to 128 characters once trimmed, not only spaces.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[^\S\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,126}[^\s\x00-\x1f\x7f-\x9f])?[^\S\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub name: String,
    /// Selects the template file (`template.data[kind]`).
    pub kind: String,
    pub namespace: String,
    /// Capability flags, given to Terraform as `feature_<name>`.
    pub features: BTreeMap<String, String>,
    pub inputs: BTreeMap<String, String>,
    /// Preset Terraform variables.
    pub config: BTreeMap<String, String>,
    /// Base image name → cloud image id.
    pub images: BTreeMap<String, String>,
    pub public: bool,
    pub ts: i64,
    pub remote: String,
    pub defaults: BTreeMap<String, Vec<String>>,
}

/// `PUT .../endpoint/{endpoint}/secret` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretRequest {
    /// Cloud user name.
    /// 1 to 128 characters once trimmed, not only spaces.
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[^\S\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,126}[^\s\x00-\x1f\x7f-\x9f])?[^\S\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub name: String,
    /// Cloud password (1 to 4096 characters): stored encrypted, never returned.
    #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 1, max_length = 4096))]
    #[serde(with = "sensitive_serde")]
    pub password: Sensitive<String>,
}

/// What `GET .../secret` tells: that a secret exists, and for which cloud user.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretStatus {
    pub message: String,
    /// The cloud user name (the original's misnamed key, kept for old clients).
    pub uid: String,
    /// The cloud user name.
    pub name: String,
}

/// Per-user suggested values for an endpoint's inputs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct EndpointDefaults {
    pub defaults: BTreeMap<String, Vec<String>>,
}

/// Everything a user may have to give to run an application (`/inputs`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InputsSummary {
    /// Template inputs.
    pub template: BTreeMap<String, String>,
    /// Inputs of the application's recipes, ancestors included (a child overrides its parent).
    pub recipes: BTreeMap<String, String>,
    /// Endpoint id → its inputs, for every endpoint usable from the application's namespace.
    pub endpoints: BTreeMap<String, BTreeMap<String, String>>,
    /// Endpoint id → endpoint name.
    pub endpointnames: BTreeMap<String, String>,
    /// Endpoint id → suggested values: the endpoint's, overridden by the caller's own.
    pub endpointdefaults: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// Suggested values: recipes', overridden by the template's, overridden by the application's.
    pub defaults: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    pub token: String,
}
crate::redacted_debug!(TokenResponse {} hides { token });

// `GET /deploy/ns` answer. (Plain comments on the answer wrappers: a doc comment would become
// a description in the services' checked-in OpenAPI documents.)
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NamespaceList {
    pub ns: Vec<Namespace>,
}

// `GET`/`PUT /deploy/ns/{id}` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NamespaceOne {
    pub ns: Namespace,
}

// `POST`/`DELETE /deploy/ns/{id}` answer: the namespace's id (named `NamespaceId` in the
// OpenAPI document, as deploy names it).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = NamespaceId))]
pub struct NamespaceRef {
    pub ns: String,
}

/// Body of `POST /deploy/ns`: only the name is read.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct NewNamespace {
    /// 1 to 128 characters once trimmed, not only spaces.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    #[cfg_attr(
        feature = "openapi",
        schema(
            pattern = r"^[^\S\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,126}[^\s\x00-\x1f\x7f-\x9f])?[^\S\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub name: String,
}

/// Body of `PUT /deploy/ns/{id}`: fields left out keep their value.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct NamespacePatch {
    /// 1 to 128 characters once trimmed, not only spaces.
    #[cfg_attr(
        feature = "openapi",
        schema(
            nullable = false,
            pattern = r"^[^\S\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,126}[^\s\x00-\x1f\x7f-\x9f])?[^\S\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// 1 to 256 uids (each 1 to 128 characters once trimmed); the namespace keeps at least one.
    #[cfg_attr(
        feature = "openapi",
        schema(nullable = false, min_items = 1, max_items = 256, inline, value_type = Vec<UserId>)
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owners: Option<Vec<String>>,
    /// At most 256 uids (each 1 to 128 characters once trimmed).
    #[cfg_attr(
        feature = "openapi",
        schema(nullable = false, max_items = 256, inline, value_type = Vec<UserId>)
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub freeze: Option<bool>,
}

/// A uid in a namespace's owners or members, for the OpenAPI document: 1 to 128 characters
/// once trimmed, not only spaces.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(
    pattern = r"^[^\S\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f](?:[^\x00-\x1f\x7f-\x9f]{0,126}[^\s\x00-\x1f\x7f-\x9f])?[^\S\x00-\x1f\x7f-\x9f]*$"
)]
#[allow(dead_code)]
struct UserId(String);

// `GET /deploy/ns/{id}/app/{application}/inputs` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InputsResponse {
    pub app: InputsSummary,
}

/// What the client needs to know of a catalogue kind: its URL segment and the keys wrapping
/// it in answers (`{"recipe": ...}`, `{"recipes": [...]}`).
pub trait CatalogueItem: Serialize + serde::de::DeserializeOwned + Send + Sync {
    /// Path segment under a namespace (`/deploy/ns/{id}/<segment>`).
    const SEGMENT: &'static str;
    /// Key of one object, or of its id, in answers.
    const ONE: &'static str;
    /// Key of a list in answers; also the public list's segment (`/deploy/<many>`).
    const MANY: &'static str;
    type Id: crate::ids::TypedId + serde::de::DeserializeOwned;

    fn id(&self) -> &str;
    fn name(&self) -> &str;
    /// The owning namespace's id.
    fn namespace(&self) -> &str;
    /// `remote` and `rversion`: the item's directory and version in a catalogue it was
    /// imported from (endpoints have no version).
    fn catalogue_key(&self) -> (&str, &str);
}

/// The accessors every kind implements the same way.
macro_rules! catalogue_accessors {
    () => {
        fn id(&self) -> &str {
            &self.id
        }
        fn name(&self) -> &str {
            &self.name
        }
        fn namespace(&self) -> &str {
            &self.namespace
        }
    };
}

impl CatalogueItem for Recipe {
    const SEGMENT: &'static str = "recipe";
    const ONE: &'static str = "recipe";
    const MANY: &'static str = "recipes";
    type Id = crate::ids::RecipeId;
    catalogue_accessors!();
    fn catalogue_key(&self) -> (&str, &str) {
        (&self.remote, &self.rversion)
    }
}

impl CatalogueItem for Template {
    const SEGMENT: &'static str = "template";
    const ONE: &'static str = "template";
    const MANY: &'static str = "templates";
    type Id = crate::ids::TemplateId;
    catalogue_accessors!();
    fn catalogue_key(&self) -> (&str, &str) {
        (&self.remote, &self.rversion)
    }
}

impl CatalogueItem for Application {
    const SEGMENT: &'static str = "app";
    const ONE: &'static str = "app";
    const MANY: &'static str = "apps";
    type Id = crate::ids::ApplicationId;
    catalogue_accessors!();
    fn catalogue_key(&self) -> (&str, &str) {
        (&self.remote, &self.rversion)
    }
}

impl CatalogueItem for Endpoint {
    const SEGMENT: &'static str = "endpoint";
    const ONE: &'static str = "endpoint";
    const MANY: &'static str = "endpoints";
    type Id = crate::ids::EndpointId;
    catalogue_accessors!();
    fn catalogue_key(&self) -> (&str, &str) {
        (&self.remote, "")
    }
}
