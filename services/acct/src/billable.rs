//! Which of a run's resources are billed, as what kind and in what quantity, from the
//! attributes deploy returned and the configured rules. An entry that does not fit its rule
//! (a missing flavor, a non-numeric size) is logged and skipped: one odd resource never stops
//! the accounting of the others.

use crate::config::{AcctConfig, GENERIC_KIND};
use goterra_core::service_api::UsageResource;
use serde_json::Value;

/// One billed resource instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Billable {
    /// Terraform address, unique within a run.
    pub address: String,
    pub resource_type: String,
    pub kind: String,
    /// Units billed per second (1 for an instance, the size in GB for a volume).
    pub quantity: f64,
}

/// The billed instances among `resources`, in their order.
pub fn billables(config: &AcctConfig, run: &str, resources: &[UsageResource]) -> Vec<Billable> {
    let billed = config.billed_types();
    resources
        .iter()
        .filter(|resource| billed.contains(&resource.resource_type))
        .filter_map(|resource| match billable(config, resource) {
            Ok(billable) => Some(billable),
            Err(reason) => {
                tracing::warn!(run = %run, address = %resource.address, %reason, "resource not billed");
                None
            }
        })
        .collect()
}

fn billable(config: &AcctConfig, resource: &UsageResource) -> Result<Billable, String> {
    let rule = config.rule(&resource.resource_type);
    let kind = match &rule.kind_attribute {
        Some(name) => match resource.attributes.get(name) {
            Some(Value::String(kind)) if !kind.trim().is_empty() => kind.trim().to_string(),
            Some(other) => return Err(format!("attribute {name} is not a name: {other}")),
            None => return Err(format!("attribute {name} is missing")),
        },
        None => rule.kind.clone().unwrap_or_else(|| GENERIC_KIND.to_string()),
    };
    let quantity = match &rule.quantity_attribute {
        Some(name) => match resource.attributes.get(name).and_then(quantity_of) {
            Some(quantity) => quantity,
            None => return Err(format!("attribute {name} is missing or not a number, 0 or more")),
        },
        None => 1.0,
    };
    Ok(Billable {
        address: resource.address.clone(),
        resource_type: resource.resource_type.clone(),
        kind,
        quantity,
    })
}

/// A number, or a string holding one (providers store some sizes as strings).
fn quantity_of(value: &Value) -> Option<f64> {
    let number = match value {
        Value::Number(number) => number.as_f64()?,
        Value::String(text) => text.trim().parse().ok()?,
        _ => return None,
    };
    (number.is_finite() && number >= 0.0).then_some(number)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn resource(address: &str, resource_type: &str, attributes: Value) -> UsageResource {
        UsageResource {
            address: address.into(),
            resource_type: resource_type.into(),
            attributes: serde_json::from_value(attributes).unwrap(),
        }
    }

    #[test]
    fn every_instance_is_billed_on_its_own_and_odd_ones_are_skipped() {
        let config = AcctConfig::from_value(
            serde_yaml::from_str(
                "resources: [openstack_compute_instance_v2, openstack_sharedfilesystem_share_v2, null_resource]",
            )
            .unwrap(),
        )
        .unwrap();
        let resources = [
            resource(
                "openstack_compute_instance_v2.vm[0]",
                "openstack_compute_instance_v2",
                json!({"flavor_name": "m1.small"}),
            ),
            resource(
                "module.w.openstack_compute_instance_v2.vm[1]",
                "openstack_compute_instance_v2",
                json!({"flavor_name": "m1.small"}),
            ),
            resource(
                "openstack_compute_instance_v2.odd",
                "openstack_compute_instance_v2",
                json!({"flavor_name": 3}),
            ),
            resource(
                "openstack_compute_instance_v2.none",
                "openstack_compute_instance_v2",
                json!({}),
            ),
            resource(
                "openstack_sharedfilesystem_share_v2.s",
                "openstack_sharedfilesystem_share_v2",
                json!({"size": "20"}),
            ),
            resource(
                "openstack_sharedfilesystem_share_v2.bad",
                "openstack_sharedfilesystem_share_v2",
                json!({"size": -1}),
            ),
            resource("null_resource.x[\"a\"]", "null_resource", json!({})),
            resource("aws_instance.y", "aws_instance", json!({})),
        ];
        let billed = billables(&config, "run", &resources);
        let summary: Vec<_> = billed
            .iter()
            .map(|b| (b.address.as_str(), b.kind.as_str(), b.quantity))
            .collect();
        assert_eq!(
            summary,
            [
                ("openstack_compute_instance_v2.vm[0]", "m1.small", 1.0),
                ("module.w.openstack_compute_instance_v2.vm[1]", "m1.small", 1.0),
                ("openstack_sharedfilesystem_share_v2.s", "shared", 20.0),
                ("null_resource.x[\"a\"]", "generic", 1.0),
            ]
        );
    }
}
