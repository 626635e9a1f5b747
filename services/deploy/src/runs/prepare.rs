//! Checks a run request and builds what an agent needs: the template file for the endpoint's
//! kind, plain Terraform variables, sensitive values, and the recipes of each recipe variable in
//! execution order. Shared by run creation and the Terraform preview.

use super::model::RunRequest;
use crate::access::{self, NamespaceRecord};
use crate::catalogue::find_usable;
use crate::images;
use crate::model::{Application, Defaults, Endpoint, Template};
use crate::secrets;
use crate::state::AppState;
use crate::validate::{self, bad};
use goterra_client::ids::{ApplicationId, EndpointId, NamespaceId, RecipeId, TemplateId};
use goterra_core::{ApiError, Identity, Sensitive};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Most inputs (plain plus sensitive) a run takes.
pub const MAX_INPUTS: usize = 256;
/// Largest value of one input.
pub const MAX_INPUT_VALUE: usize = 64 * 1024;

pub struct Prepared {
    pub namespace: NamespaceRecord,
    pub app: Application,
    pub endpoint: Endpoint,
    pub name: String,
    pub description: String,
    /// `template.data[endpoint.kind]`.
    pub template: String,
    /// Plain run inputs, defaults applied (also exported in the VMs).
    pub inputs: BTreeMap<String, String>,
    /// Plain Terraform variables, without the per-run ones (`goterra_run`, `goterra_deployment`,
    /// `goterra_cloudinit`).
    pub variables: BTreeMap<String, Value>,
    /// Sensitive Terraform variables (`password`, sensitive inputs), without the store token.
    pub sensitive: BTreeMap<String, Sensitive<String>>,
    /// Recipe variable → recipes to run, ancestors first, each once.
    pub boot_recipes: BTreeMap<String, Vec<goterra_boot::Recipe>>,
}

fn overlay(into: &mut Defaults, values: &Defaults) {
    for (key, value) in values {
        into.insert(key.clone(), value.clone());
    }
}

fn check_values<'a>(field: &str, values: impl Iterator<Item = &'a str>) -> Result<(), ApiError> {
    for value in values {
        if value.len() > MAX_INPUT_VALUE {
            return Err(bad(field, format!("values must be at most {MAX_INPUT_VALUE} bytes")));
        }
    }
    Ok(())
}

/// Everything but the store deployment: no write happens here.
pub async fn prepare(
    state: &AppState,
    user: &Identity,
    namespace_id: &NamespaceId,
    app_id: &ApplicationId,
    request: RunRequest,
    with_credentials: bool,
) -> Result<Prepared, ApiError> {
    let namespace = access::require_member(state, namespace_id, user).await?;
    let app = find_usable::<Application>(state, &namespace.id, app_id)
        .await?
        .ok_or_else(|| ApiError::not_found("application not found"))?;
    if request.endpoint.trim().is_empty() {
        return Err(bad("endpoint", "an endpoint id is required"));
    }
    let endpoint_id = EndpointId::from_trusted(request.endpoint.trim());
    let endpoint = find_usable::<Endpoint>(state, &namespace.id, &endpoint_id)
        .await?
        .ok_or_else(|| bad("endpoint", "not found or not usable from this namespace"))?;
    let template = state
        .catalogue::<Template>()
        .find(&TemplateId::from_trusted(&app.template))
        .await?
        .ok_or_else(|| ApiError::conflict("the application's template no longer exists"))?;
    let source = template
        .data
        .get(&endpoint.kind)
        .filter(|source| !source.trim().is_empty())
        .cloned()
        .ok_or_else(|| {
            bad(
                "endpoint",
                format!(
                    "the application's template has no file for endpoint kind '{}'",
                    validate::shorten(&endpoint.kind)
                ),
            )
        })?;

    let name = if request.name.trim().is_empty() {
        app.name.clone()
    } else {
        validate::name("name", &request.name)?
    };
    validate::text("description", &request.description, validate::MAX_TEXT)?;

    // Names are identifiers and not reserved; sizes are bounded.
    let recipe_vars = template.varrecipes.clone();
    let mut inputs = request.inputs.unwrap_or_default();
    let secret_inputs = request.secretinputs.unwrap_or_default();
    if inputs.len() + secret_inputs.len() > MAX_INPUTS {
        return Err(bad("inputs", format!("at most {MAX_INPUTS} inputs in all")));
    }
    validate::input_names("inputs", &inputs, &recipe_vars)?;
    check_values("inputs", inputs.values().map(String::as_str))?;
    for name in secret_inputs.keys() {
        validate::identifier("secretinputs", name)?;
        if matches!(name.as_str(), "user_name" | "password") {
            continue;
        }
        if let Some(reason) = validate::reserved_input(name, &recipe_vars) {
            return Err(bad("secretinputs", format!("'{name}' is reserved: {reason}")));
        }
        if inputs.contains_key(name) {
            return Err(bad("secretinputs", format!("'{name}' is also given in inputs")));
        }
    }
    check_values(
        "secretinputs",
        secret_inputs.values().map(|value| value.expose().as_str()),
    )?;

    // The recipes of each recipe variable, with their ancestors.
    let mut known: HashMap<String, crate::model::Recipe> = HashMap::new();
    let mut required: BTreeSet<String> = BTreeSet::new();
    let mut defaults = Defaults::new();
    let mut boot_recipes = BTreeMap::new();
    let app_namespace = NamespaceId::from_trusted(&app.namespace);
    for var in &recipe_vars {
        let ids = app.templaterecipes.get(var).cloned().unwrap_or_default();
        for id in &ids {
            let chain = images::chain(state, &RecipeId::from_trusted(id), &app_namespace, "templaterecipes")
                .await
                .map_err(|err| ApiError::conflict(format!("the application's recipes changed: {err}")))?;
            for recipe in chain.iter().rev() {
                required.extend(recipe.inputs.keys().cloned());
                overlay(&mut defaults, &recipe.defaults);
                known.insert(recipe.id.clone(), recipe.clone());
            }
        }
        let ordered = goterra_boot::order_with_ancestors(&ids, |id| match known.get(id) {
            Some(recipe) => Ok(Some(recipe.parent.clone()).filter(|parent| !parent.is_empty())),
            None => Err(goterra_boot::BootError::UnknownRecipe(id.to_string())),
        })
        .map_err(|err| ApiError::conflict(format!("the application's recipes changed: {err}")))?;
        let recipes = ordered
            .iter()
            .filter_map(|id| known.get(id))
            .map(|recipe| goterra_boot::Recipe {
                id: recipe.id.clone(),
                name: recipe.name.clone(),
                script: recipe.script.clone(),
            })
            .collect();
        boot_recipes.insert(var.clone(), recipes);
    }
    required.extend(template.inputs.keys().cloned());
    overlay(&mut defaults, &template.defaults);
    overlay(&mut defaults, &app.defaults);
    required.extend(endpoint.inputs.keys().cloned());
    overlay(&mut defaults, &endpoint.defaults);
    let uid = access::uid_of(user);
    if let Some(own) = secrets::user_defaults(state, &uid, &endpoint_id, &namespace.id).await? {
        overlay(&mut defaults, &own);
    }

    // Every declared input is given or has a default.
    let mut missing = Vec::new();
    for name in &required {
        if inputs.contains_key(name) || secret_inputs.contains_key(name) {
            continue;
        }
        match defaults.get(name).and_then(|values| values.first()) {
            Some(value) if validate::is_identifier(name) => {
                inputs.insert(name.clone(), value.clone());
            }
            _ => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(bad("inputs", format!("missing inputs: {}", missing.join(", "))));
    }

    // Image: the first of the application's base images that the endpoint maps.
    let image_id = match app.image.iter().find_map(|image| endpoint.images.get(image)) {
        Some(image) => image.clone(),
        None if endpoint.images.is_empty() => String::new(),
        None => {
            return Err(bad(
                "endpoint",
                format!(
                    "endpoint '{}' has no image for the application's base images ({})",
                    endpoint.name,
                    app.image.join(", ")
                ),
            ));
        }
    };

    // Credentials: the request's, else the run owner's endpoint secret.
    let mut sensitive: BTreeMap<String, Sensitive<String>> = BTreeMap::new();
    let mut user_name = String::new();
    for (name, value) in &secret_inputs {
        if name == "user_name" {
            user_name = value.expose().clone();
        } else {
            sensitive.insert(name.clone(), value.clone());
        }
    }
    let needs_stored = with_credentials && (!sensitive.contains_key("password") || user_name.is_empty());
    if needs_stored
        && let Some((stored_name, stored_password)) = secrets::credentials(state, &uid, &endpoint_id).await?
    {
        if user_name.is_empty() {
            user_name = stored_name;
        }
        sensitive.entry("password".to_string()).or_insert(stored_password);
    }
    sensitive
        .entry("password".to_string())
        .or_insert_with(|| Sensitive::new(String::new()));

    let mut variables: BTreeMap<String, Value> = BTreeMap::new();
    for (key, value) in &endpoint.config {
        if validate::is_identifier(key) {
            variables.insert(key.clone(), json!(value));
        }
    }
    for (key, value) in &inputs {
        variables.insert(key.clone(), json!(value));
    }
    for (key, value) in &endpoint.features {
        if validate::is_identifier(key) {
            variables.insert(format!("feature_{key}"), json!(value));
        }
    }
    for var in &recipe_vars {
        variables.insert(
            var.clone(),
            json!(app.templaterecipes.get(var).cloned().unwrap_or_default()),
        );
    }
    variables.insert("image_id".into(), json!(image_id));
    variables.insert("user_name".into(), json!(user_name));
    variables.entry("ssh_pub_key".to_string()).or_insert_with(|| json!(""));
    variables.insert("goterra_url".into(), json!(state.platform.config.public_url()));
    variables.insert("goterra_namespace".into(), json!(namespace.id));
    variables.insert("goterra_application".into(), json!(app.id));
    // A sensitive name wins: never also write it in clear.
    for name in sensitive.keys() {
        variables.remove(name);
    }

    Ok(Prepared {
        namespace,
        app,
        endpoint,
        name,
        description: request.description,
        template: source,
        inputs,
        variables,
        sensitive,
        boot_recipes,
    })
}

/// The variable declarations an agent generates (for the preview).
pub fn declarations(variables: &BTreeMap<String, Value>, sensitive: &[String]) -> String {
    let mut text = String::from("# Generated by the run agent: the variables the platform fills.\n");
    for name in variables.keys() {
        text.push_str(&format!("\nvariable \"{name}\" {{}}\n"));
    }
    for name in sensitive {
        text.push_str(&format!("\nvariable \"{name}\" {{\n  sensitive = true\n}}\n"));
    }
    text
}
