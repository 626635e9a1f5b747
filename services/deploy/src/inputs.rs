//! `GET /deploy/ns/{id}/app/{app}/inputs`: everything a user may have to give to run an
//! application, with suggested values.

use crate::access::uid_of;
use crate::app_recipes::recipe_ids;
use crate::catalogue::{self, readable};
use crate::images;
use crate::model::{Application, Defaults, Endpoint, InputsResponse, InputsSummary, Template};
use crate::secrets::user_defaults;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use goterra_client::ids::{ApplicationId, EndpointId, NamespaceId, TemplateId};
use goterra_core::{ApiError, AuthUser, ErrorBody};

/// Adds `values` into `into`, replacing existing keys.
fn overlay(into: &mut Defaults, values: &Defaults) {
    for (key, value) in values {
        into.insert(key.clone(), value.clone());
    }
}

/// Template inputs; recipe inputs (each recipe's chain from the root down, so a child overrides
/// its parent); endpoints usable from the application's namespace, keyed by id; suggested values
/// where the application wins over the template, which wins over recipes.
#[utoipa::path(get, path = "/deploy/ns/{id}/app/{application}/inputs", operation_id = "get_app_inputs", tag = "applications",
    params(("id" = String, Path), ("application" = String, Path)), security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = InputsResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn app_inputs(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((namespace_id, app_id)): Path<(NamespaceId, ApplicationId)>,
) -> Result<Json<InputsResponse>, ApiError> {
    let app = readable::<Application>(&state, &user, &namespace_id, &app_id).await?;
    let mut summary = InputsSummary::default();
    let mut defaults = Defaults::new();
    let app_namespace = NamespaceId::from_trusted(&app.namespace);
    for id in recipe_ids(&app.templaterecipes) {
        // Checked when the application was written; a recipe made unusable since is a conflict.
        let chain = images::chain(&state, &id, &app_namespace, "templaterecipes")
            .await
            .map_err(|err| ApiError::conflict(format!("the application's recipes changed: {err}")))?;
        for recipe in chain.iter().rev() {
            summary.recipes.extend(recipe.inputs.clone());
            overlay(&mut defaults, &recipe.defaults);
        }
    }
    if let Some(template) = state
        .catalogue::<Template>()
        .find(&TemplateId::from_trusted(&app.template))
        .await?
    {
        summary.template = template.inputs.clone();
        overlay(&mut defaults, &template.defaults);
    }
    overlay(&mut defaults, &app.defaults);
    summary.defaults = defaults;

    let namespace = state.namespaces().load(&app_namespace).await?;
    let own_namespace = namespace.can_use(&user).then_some(&namespace.id);
    for endpoint in catalogue::usable_from::<Endpoint>(&state, own_namespace).await? {
        let mut suggested = endpoint.defaults.clone();
        let (uid, endpoint_id) = (uid_of(&user), EndpointId::from_trusted(&endpoint.id));
        if let Some(own) = user_defaults(&state, &uid, &endpoint_id, &app_namespace).await? {
            overlay(&mut suggested, &own);
        }
        summary.endpointdefaults.insert(endpoint.id.clone(), suggested);
        summary.endpointnames.insert(endpoint.id.clone(), endpoint.name.clone());
        summary.endpoints.insert(endpoint.id, endpoint.inputs);
    }
    Ok(Json(InputsResponse { app: summary }))
}
