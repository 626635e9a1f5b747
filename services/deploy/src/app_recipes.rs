//! The recipe ids of an application, in one deterministic order (for its relation rows, its
//! base images and its inputs).

use std::collections::{BTreeMap, HashSet};

/// Variables by name, then list order, each id once.
pub fn recipe_ids(templaterecipes: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut seen = HashSet::new();
    templaterecipes
        .values()
        .flatten()
        .filter(|id| seen.insert(id.as_str()))
        .cloned()
        .collect()
}
