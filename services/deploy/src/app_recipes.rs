//! The recipe ids of an application, in one deterministic order (for its relation rows, its
//! base images and its inputs).

use goterra_client::ids::RecipeId;
use std::collections::{BTreeMap, HashSet};

/// Variables by name, then list order, each id once.
pub fn recipe_ids(templaterecipes: &BTreeMap<String, Vec<String>>) -> Vec<RecipeId> {
    let mut seen = HashSet::new();
    templaterecipes
        .values()
        .flatten()
        .filter(|id| seen.insert(id.as_str()))
        .map(RecipeId::from_trusted)
        .collect()
}
