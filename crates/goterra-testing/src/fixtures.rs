//! The catalogue a run needs, made through the typed client as a user would: what the run
//! tests of deploy and acct (and the end-to-end tests) start from.

use crate::TestServer;
use goterra_client::deploy::{Application, Endpoint, NamespacePatch, Recipe, Template};
use goterra_client::{ApplicationId, Client, EndpointId, NamespaceId, RecipeId, TemplateId};
use serde_json::{Value, json};

/// A Terraform file that creates nothing real (a `null_resource` per run), for the `local`
/// endpoint kind.
pub const NULL_TF: &str = "resource \"null_resource\" \"vm\" {\n  triggers = { image = var.image_id }\n}\n";

/// Fields added to the fixture's objects (inputs and defaults a test needs); `null`: none.
#[derive(Clone, Debug, Default)]
pub struct CatalogueExtras {
    pub endpoint: Value,
    pub recipe: Value,
    pub template: Value,
}

/// A namespace `team` of alice (bob is a member) with an endpoint `here` (kind `local`), a
/// recipe `master`, a template `tpl` ([`NULL_TF`]) and an application `cluster` running
/// `master`. The server must serve deploy, and let users create namespaces
/// (`acl.allow_user_create_ns`).
#[derive(Clone, Debug)]
pub struct RunCatalogue {
    pub ns: NamespaceId,
    pub endpoint: EndpointId,
    pub recipe: RecipeId,
    pub template: TemplateId,
    pub app: ApplicationId,
}

/// `base` with the members of `extra` (an object, or `null`) added.
fn with(mut base: Value, extra: &Value) -> Value {
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    base
}

impl RunCatalogue {
    pub async fn create(server: &TestServer, extras: &CatalogueExtras) -> anyhow::Result<Self> {
        let alice = Client::new(&server.url)?.with_token(server.user_token("alice"));
        let ns = alice.create_namespace("team").await?;
        let members = NamespacePatch {
            members: Some(vec!["bob".to_string()]),
            ..NamespacePatch::default()
        };
        alice.update_namespace(&ns, &members).await?;
        let endpoint = alice
            .create_item::<Endpoint>(&ns, &with(json!({"name": "here", "kind": "local"}), &extras.endpoint))
            .await?;
        let recipe_body = json!({"name": "master", "base": ["debian"], "script": "echo master"});
        let recipe = alice
            .create_item::<Recipe>(&ns, &with(recipe_body, &extras.recipe))
            .await?;
        let template_body = json!({"name": "tpl", "data": {"local": NULL_TF}, "varrecipes": ["master"]});
        let template = alice
            .create_item::<Template>(&ns, &with(template_body, &extras.template))
            .await?;
        let app = alice
            .create_item::<Application>(
                &ns,
                &json!({"name": "cluster", "template": template, "templaterecipes": {"master": [recipe]}}),
            )
            .await?;
        Ok(Self {
            ns,
            endpoint,
            recipe,
            template,
            app,
        })
    }
}
