//! The API's JSON shapes as the pages read them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub type Labels = BTreeMap<String, String>;
pub type Defaults = BTreeMap<String, Vec<String>>;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct User {
    pub uid: String,
    pub email: String,
    pub admin: bool,
    #[serde(rename = "super")]
    pub super_user: bool,
    pub kind: String,
    pub pub_key: String,
}

#[derive(Debug, Deserialize)]
pub struct LoginAnswer {
    pub token: String,
    pub user: User,
}

#[derive(Debug, Deserialize)]
pub struct UsersAnswer {
    #[serde(default)]
    pub users: Vec<User>,
}

#[derive(Debug, Deserialize)]
pub struct UserAnswer {
    pub user: User,
}

/// `PUT /auth/user/{uid}`: omitted fields stay.
#[derive(Debug, Default, Serialize)]
pub struct UserChanges {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pub_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin: Option<bool>,
}

/// `POST /auth/register`.
#[derive(Debug, Serialize)]
pub struct NewUser {
    pub uid: String,
    pub password: String,
    pub email: String,
    pub pub_key: String,
    pub admin: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Namespace {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    pub owners: Vec<String>,
    pub members: Vec<String>,
    pub freeze: bool,
}

#[derive(Debug, Deserialize)]
pub struct NamespaceList {
    #[serde(default)]
    pub ns: Vec<Namespace>,
}

#[derive(Debug, Deserialize)]
pub struct NamespaceAnswer {
    pub ns: Namespace,
}

/// A kind of catalogue object: its URL segment and its list key.
pub trait CatalogueKind: serde::de::DeserializeOwned {
    const SEGMENT: &'static str;
    const MANY: &'static str;
    /// Shown in titles: "recipe", "template"...
    const TITLE: &'static str;
    fn id(&self) -> &str;
    fn name(&self) -> &str;
    fn namespace(&self) -> &str;
    fn public(&self) -> bool;
}

macro_rules! catalogue_kind {
    ($kind:ty, $segment:literal, $many:literal, $title:literal) => {
        impl CatalogueKind for $kind {
            const SEGMENT: &'static str = $segment;
            const MANY: &'static str = $many;
            const TITLE: &'static str = $title;
            fn id(&self) -> &str {
                &self.id
            }
            fn name(&self) -> &str {
                &self.name
            }
            fn namespace(&self) -> &str {
                &self.namespace
            }
            fn public(&self) -> bool {
                self.public
            }
        }
    };
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Endpoint {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub namespace: String,
    pub description: String,
    pub features: BTreeMap<String, String>,
    pub inputs: Labels,
    pub config: BTreeMap<String, String>,
    pub images: BTreeMap<String, String>,
    pub public: bool,
    pub ts: i64,
    pub defaults: Defaults,
}
catalogue_kind!(Endpoint, "endpoint", "endpoints", "endpoint");

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Recipe {
    pub id: String,
    pub name: String,
    pub description: String,
    pub script: String,
    pub public: bool,
    pub namespace: String,
    pub base: Vec<String>,
    pub parent: String,
    pub ts: i64,
    pub prev: String,
    pub inputs: Labels,
    pub tags: Vec<String>,
    pub version: String,
    pub defaults: Defaults,
}
catalogue_kind!(Recipe, "recipe", "recipes", "recipe");

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Template {
    pub id: String,
    pub namespace: String,
    pub ts: i64,
    pub public: bool,
    pub name: String,
    pub description: String,
    pub data: BTreeMap<String, String>,
    pub inputs: Labels,
    pub prev: String,
    pub tags: Vec<String>,
    pub version: String,
    pub defaults: Defaults,
    pub varrecipes: Vec<String>,
}
catalogue_kind!(Template, "template", "templates", "template");

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Application {
    pub id: String,
    pub name: String,
    pub description: String,
    pub public: bool,
    pub namespace: String,
    pub template: String,
    pub image: Vec<String>,
    pub ts: i64,
    pub prev: String,
    pub templaterecipes: BTreeMap<String, Vec<String>>,
    pub version: String,
    pub defaults: Defaults,
}
catalogue_kind!(Application, "app", "apps", "application");

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EndpointDefaults {
    pub defaults: Defaults,
}

/// `GET .../app/{app}/inputs`: the inputs a run of the application asks for, by origin.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct InputsSummary {
    pub template: Labels,
    pub recipes: Labels,
    pub endpoints: BTreeMap<String, Labels>,
    pub endpointnames: BTreeMap<String, String>,
    pub endpointdefaults: BTreeMap<String, Defaults>,
    pub defaults: Defaults,
}

#[derive(Debug, Deserialize)]
pub struct InputsAnswer {
    pub app: InputsSummary,
}

/// `POST /deploy/ns/{ns}/run/{app}`. No `Debug`: `secretinputs` holds credentials.
#[derive(Serialize, Deserialize)]
pub struct RunRequest {
    pub name: String,
    pub description: String,
    pub endpoint: String,
    pub inputs: BTreeMap<String, String>,
    pub secretinputs: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct RunEvent {
    pub ts: i64,
    pub action: String,
    pub success: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Run {
    pub id: String,
    pub name: String,
    pub description: String,
    #[serde(rename = "appID")]
    pub app_id: String,
    pub inputs: BTreeMap<String, String>,
    pub status: String,
    pub endpoint: String,
    pub namespace: String,
    #[serde(rename = "UID")]
    pub uid: String,
    pub start: i64,
    pub end: i64,
    pub duration: f64,
    pub outputs: String,
    pub error: String,
    pub deployment: String,
    pub events: Vec<RunEvent>,
    pub action: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RunList {
    #[serde(default)]
    pub runs: Vec<Run>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RunLog {
    pub lines: Vec<String>,
    pub next: i64,
    pub status: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StoreData {
    pub deployment: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RunResources {
    pub serial: u64,
    pub terraform_version: String,
    pub resources: Vec<ResourceInstance>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResourceInstance {
    pub address: String,
    pub mode: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub provider: String,
    pub id: Option<String>,
}
