//! Recipe chains (a recipe and its ancestors) and the base images of an application.

use crate::app_recipes::recipe_ids;
use crate::catalogue::find_usable;
use crate::model::Recipe;
use crate::state::AppState;
use crate::validate::bad;
use goterra_client::ids::{NamespaceId, RecipeId};
use goterra_core::ApiError;
use std::collections::{BTreeMap, HashSet};

/// Longest parent chain accepted; deeper chains are refused rather than followed.
pub const MAX_CHAIN: usize = 32;

fn inaccessible(field: &str, id: &RecipeId) -> ApiError {
    bad(
        field,
        format!(
            "recipe '{}' not found or not usable from this namespace",
            crate::validate::shorten(id.as_str())
        ),
    )
}

/// A recipe usable from `namespace_id`: public or in that namespace.
pub async fn usable_recipe(
    state: &AppState,
    id: &RecipeId,
    namespace_id: &NamespaceId,
    field: &str,
) -> Result<Recipe, ApiError> {
    find_usable::<Recipe>(state, namespace_id, id)
        .await?
        .ok_or_else(|| inaccessible(field, id))
}

/// The recipe `id` then its ancestors up to the root, each usable from `namespace_id`.
pub async fn chain(
    state: &AppState,
    id: &RecipeId,
    namespace_id: &NamespaceId,
    field: &str,
) -> Result<Vec<Recipe>, ApiError> {
    let mut chain = Vec::new();
    let mut seen = HashSet::new();
    let mut next = Some(id.clone());
    while let Some(current) = next {
        if !seen.insert(current.clone()) {
            return Err(bad(
                field,
                format!("recipe '{}' has a cycle of parents", chain_name(&chain)),
            ));
        }
        if chain.len() >= MAX_CHAIN {
            return Err(bad(
                field,
                format!("recipe chains are limited to {MAX_CHAIN} ancestors"),
            ));
        }
        let recipe = usable_recipe(state, &current, namespace_id, field).await?;
        next = Some(&recipe.parent)
            .filter(|parent| !parent.is_empty())
            .map(RecipeId::from_trusted);
        chain.push(recipe);
    }
    Ok(chain)
}

fn chain_name(chain: &[Recipe]) -> String {
    chain.first().map(|recipe| recipe.name.clone()).unwrap_or_default()
}

/// Checks a recipe's `parent`: usable from the recipe's namespace, and no cycle through itself.
pub async fn check_parent(state: &AppState, recipe: &Recipe) -> Result<(), ApiError> {
    if recipe.parent.is_empty() {
        return Ok(());
    }
    if recipe.parent == recipe.id {
        return Err(bad("parent", "a recipe cannot be its own parent"));
    }
    let (parent, namespace) = (
        RecipeId::from_trusted(&recipe.parent),
        NamespaceId::from_trusted(&recipe.namespace),
    );
    let ancestors = chain(state, &parent, &namespace, "parent").await?;
    if ancestors.iter().any(|ancestor| ancestor.id == recipe.id) {
        return Err(bad("parent", "this parent would make a cycle"));
    }
    if ancestors.len() >= MAX_CHAIN {
        return Err(bad(
            "parent",
            format!("recipe chains are limited to {MAX_CHAIN} ancestors"),
        ));
    }
    Ok(())
}

/// The base images every recipe of the application supports: the intersection of the root
/// ancestors' `base` lists, in the order of the first recipe's list. No recipe: the configured
/// default image.
pub async fn base_images(
    state: &AppState,
    namespace_id: &NamespaceId,
    templaterecipes: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<String>, ApiError> {
    let ids = recipe_ids(templaterecipes);
    if ids.is_empty() {
        let default = state.platform.config.default_image.trim();
        return Ok(if default.is_empty() {
            Vec::new()
        } else {
            vec![default.to_string()]
        });
    }
    let mut roots: Vec<(String, Vec<String>)> = Vec::new();
    for id in &ids {
        let chain = chain(state, id, namespace_id, "templaterecipes").await?;
        let (Some(leaf), Some(root)) = (chain.first(), chain.last()) else {
            continue;
        };
        if root.base.is_empty() {
            return Err(bad(
                "templaterecipes",
                format!("recipe '{}' has no base image nor parent recipe", root.name),
            ));
        }
        roots.push((leaf.name.clone(), root.base.clone()));
    }
    let Some((_, first)) = roots.first() else {
        return Ok(Vec::new());
    };
    let mut common: Vec<String> = Vec::new();
    for image in first {
        if !common.contains(image) && roots.iter().all(|(_, base)| base.contains(image)) {
            common.push(image.clone());
        }
    }
    if common.is_empty() {
        let listed: Vec<String> = roots
            .iter()
            .map(|(name, base)| format!("'{name}' ({})", base.join(", ")))
            .collect();
        return Err(bad(
            "templaterecipes",
            format!("the recipes have no base image in common: {}", listed.join(", ")),
        ));
    }
    Ok(common)
}
