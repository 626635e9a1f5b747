//! Wire types of the routes deploy serves to other platform services (acct), which call them
//! with a service credential ([`crate::auth::ServiceCaller`]), never a user's:
//!
//! | Method and path | Answer |
//! |---|---|
//! | `GET /deploy/service/ns/{id}` | [`NamespaceMembers`] |
//! | `GET /deploy/service/run/{id}/usage?attributes=a,b` | [`RunUsage`] |
//! | `GET /deploy/service/runs?since=T` | [`ChangedRuns`] |

use crate::tfstate::TerraformState;
pub use goterra_client::acct::{
    CHANGED_RUNS_PAGE, ChangedRun, ChangedRuns, NamespaceMembers, RunHistoryEntry, RunUsage, UsageResource,
};
use serde_json::Value;

/// Attribute names no service may read from a state, whatever it asks: whatever looks like a
/// credential.
const SECRET_WORDS: [&str; 7] = ["pass", "secret", "token", "key", "private", "credential", "cert"];

/// Checks a requested attribute name: a plain Terraform identifier that does not look like a
/// credential.
pub fn check_attribute_name(name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !plain {
        return Err(format!("attribute {name:?}: expected a Terraform attribute name"));
    }
    let lower = name.to_ascii_lowercase();
    if SECRET_WORDS.iter().any(|word| lower.contains(word)) {
        return Err(format!(
            "attribute {name:?}: looks like a credential and is never shown"
        ));
    }
    Ok(())
}

/// The managed resource instances of `state` with the `attributes` asked for (already checked
/// with [`check_attribute_name`]): scalar values only, sensitive ones left out.
pub fn usage_resources(state: &TerraformState, attributes: &[String]) -> Vec<UsageResource> {
    let mut listed = Vec::new();
    for resource in state.resources.iter().filter(|resource| resource.mode == "managed") {
        let base = resource.base_address();
        for instance in &resource.instances {
            let values = attributes
                .iter()
                .filter(|name| !instance.is_sensitive(name))
                .filter_map(|name| {
                    let value = instance.attributes.as_ref()?.get(name.as_str())?;
                    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
                        .then(|| (name.clone(), value.clone()))
                })
                .collect();
            listed.push(UsageResource {
                address: instance.address(&base),
                resource_type: resource.kind.clone(),
                attributes: values,
            });
        }
    }
    listed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_asked_scalar_non_sensitive_attributes_of_managed_instances() {
        let state: TerraformState = serde_json::from_value(serde_json::json!({
            "resources": [
                {"mode": "managed", "type": "openstack_compute_instance_v2", "name": "vm", "module": "module.c",
                 "instances": [
                    {"index_key": 0, "attributes": {"flavor_name": "m1.small", "admin_pass": "x", "size": 3},
                     "sensitive_attributes": []},
                    {"index_key": 1, "attributes": {"flavor_name": "m1.large", "size": {"nested": 1}},
                     "sensitive_attributes": [[{"type": "get_attr", "value": "flavor_name"}]]}]},
                {"mode": "data", "type": "openstack_images_image_v2", "name": "img",
                 "instances": [{"attributes": {"size": 9}}]}
            ]
        }))
        .unwrap();
        let listed = usage_resources(&state, &["flavor_name".into(), "size".into()]);
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].address, "module.c.openstack_compute_instance_v2.vm[0]");
        assert_eq!(listed[0].attributes.len(), 2);
        assert_eq!(listed[0].attributes["flavor_name"], "m1.small");
        assert!(
            listed[1].attributes.is_empty(),
            "sensitive and non-scalar values are left out"
        );
        assert!(!serde_json::to_string(&listed).unwrap().contains("admin_pass"));
    }

    #[test]
    fn credential_like_or_odd_attribute_names_are_refused() {
        assert!(check_attribute_name("flavor_name").is_ok());
        assert!(check_attribute_name("size").is_ok());
        for name in ["admin_pass", "access_key", "Token", "", "a.b", "9x", "private_ip"] {
            assert!(check_attribute_name(name).is_err(), "{name}");
        }
    }
}
