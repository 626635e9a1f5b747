//! acct's configuration: which Terraform resource types are billed, how each one's kind and
//! quantity are read from its attributes, and the prices. The original's `acct.yml` shape
//! (`resources`, `billing.default`, `billing.endpoints[].{id,billing}`) is read from the
//! `acct:` section of `goterra.yml`, or from the file named by `GOT_ACCT_CONFIG`, which
//! replaces that section. `GOT_INFLUX_RESOURCES` (comma-separated) replaces `resources`.

use anyhow::{Context, anyhow, bail};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The default RabbitMQ queue acct consumes events from.
pub const DEFAULT_QUEUE: &str = "gotacct";
/// How often acct asks deploy for runs that changed, by default (a safety net for lost events).
pub const DEFAULT_RESYNC_SECONDS: u64 = 300;

/// `<resource type> -> <kind> -> price per unit and second`.
pub type PriceTable = BTreeMap<String, BTreeMap<String, f64>>;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Billing {
    pub default: PriceTable,
    pub endpoints: Vec<EndpointBilling>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointBilling {
    /// The endpoint id.
    pub id: String,
    pub billing: PriceTable,
}

/// How a resource type's kind and quantity are read.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TypeRule {
    /// A fixed kind (`shared`); used when `kind_attribute` is not set.
    pub kind: Option<String>,
    /// The attribute holding the kind (`flavor_name`).
    pub kind_attribute: Option<String>,
    /// The numeric attribute holding the quantity (`size`, in GB); without it, one unit.
    pub quantity_attribute: Option<String>,
}

/// The kind of a listed type with no rule and no `kind`.
pub const GENERIC_KIND: &str = "generic";

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcctConfig {
    /// The original's InfluxDB settings: no longer used (usage lives in the platform database).
    pub influxdb: Option<serde_yaml::Value>,
    /// Terraform resource types to bill (types named in `billing` or `types` are billed too).
    pub resources: Vec<String>,
    pub billing: Billing,
    /// Kind and quantity rules per type, over the built-in ones.
    pub types: BTreeMap<String, TypeRule>,
    /// RabbitMQ queue acct consumes (bound to the `gotevent` exchange).
    pub queue: String,
    /// Seconds between two catch-up passes over the runs deploy changed; 0: only at startup.
    pub resync_seconds: u64,
}

impl Default for AcctConfig {
    fn default() -> Self {
        Self {
            influxdb: None,
            resources: Vec::new(),
            billing: Billing::default(),
            types: BTreeMap::new(),
            queue: DEFAULT_QUEUE.to_string(),
            resync_seconds: DEFAULT_RESYNC_SECONDS,
        }
    }
}

/// The rules of the types the original knew, and of OpenStack volumes.
fn builtin_rule(resource_type: &str) -> Option<TypeRule> {
    let rule = |kind: Option<&str>, kind_attribute: Option<&str>, quantity_attribute: Option<&str>| TypeRule {
        kind: kind.map(str::to_string),
        kind_attribute: kind_attribute.map(str::to_string),
        quantity_attribute: quantity_attribute.map(str::to_string),
    };
    match resource_type {
        "openstack_compute_instance_v2" => Some(rule(None, Some("flavor_name"), None)),
        "openstack_sharedfilesystem_share_v2" => Some(rule(Some("shared"), None, Some("size"))),
        "openstack_blockstorage_volume_v2" | "openstack_blockstorage_volume_v3" => {
            Some(rule(Some("volume"), None, Some("size")))
        }
        _ => None,
    }
}

impl AcctConfig {
    /// From the platform config's `acct:` section, `GOT_ACCT_CONFIG` and `GOT_INFLUX_RESOURCES`.
    pub fn load(section: &serde_yaml::Value, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        let mut config = match get("GOT_ACCT_CONFIG") {
            Some(path) => Self::from_file(Path::new(&path))?,
            None => Self::from_value(section.clone()).context("invalid `acct` section of the config")?,
        };
        if let Some(resources) = get("GOT_INFLUX_RESOURCES") {
            config.resources = resources
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_string)
                .collect();
        }
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read GOT_ACCT_CONFIG file {}", path.display()))?;
        let value: serde_yaml::Value =
            serde_yaml::from_str(&text).with_context(|| format!("invalid acct config file {}", path.display()))?;
        Self::from_value(value).with_context(|| format!("invalid acct config file {}", path.display()))
    }

    pub fn from_value(value: serde_yaml::Value) -> anyhow::Result<Self> {
        if value.is_null() {
            return Ok(Self::default());
        }
        let config: Self =
            serde_path_to_error::deserialize(value).map_err(|err| anyhow!("key `{}`: {}", err.path(), err.inner()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let tables = std::iter::once(("billing.default".to_string(), &self.billing.default)).chain(
            self.billing
                .endpoints
                .iter()
                .enumerate()
                .map(|(index, endpoint)| (format!("billing.endpoints[{index}].billing"), &endpoint.billing)),
        );
        for (place, table) in tables {
            for (resource_type, kinds) in table {
                for (kind, price) in kinds {
                    if !price.is_finite() || *price < 0.0 {
                        bail!("key `{place}.{resource_type}.{kind}`: a price must be a number, 0 or more");
                    }
                }
            }
        }
        for (index, endpoint) in self.billing.endpoints.iter().enumerate() {
            if endpoint.id.trim().is_empty() {
                bail!("key `billing.endpoints[{index}].id`: an endpoint id is required");
            }
        }
        for (resource_type, rule) in &self.types {
            for (key, attribute) in [
                ("kind_attribute", &rule.kind_attribute),
                ("quantity_attribute", &rule.quantity_attribute),
            ] {
                if let Some(name) = attribute {
                    goterra_core::service_api::check_attribute_name(name)
                        .map_err(|err| anyhow!("key `types.{resource_type}.{key}`: {err}"))?;
                }
            }
        }
        if self.queue.trim().is_empty() {
            bail!("key `queue`: the RabbitMQ queue name may not be empty");
        }
        Ok(())
    }

    /// Every billed type: listed in `resources`, or named in `types` or a price table.
    pub fn billed_types(&self) -> BTreeSet<String> {
        let mut types: BTreeSet<String> = self.resources.iter().cloned().collect();
        types.extend(self.types.keys().cloned());
        types.extend(self.billing.default.keys().cloned());
        for endpoint in &self.billing.endpoints {
            types.extend(endpoint.billing.keys().cloned());
        }
        types
    }

    /// The rule of a billed type: configured, built in, or one `generic` unit.
    pub fn rule(&self, resource_type: &str) -> TypeRule {
        self.types
            .get(resource_type)
            .cloned()
            .or_else(|| builtin_rule(resource_type))
            .unwrap_or_default()
    }

    /// The attributes acct asks deploy for: those the rules of the billed types read.
    pub fn attributes(&self) -> Vec<String> {
        let mut names = BTreeSet::new();
        for resource_type in self.billed_types() {
            let rule = self.rule(&resource_type);
            names.extend(rule.kind_attribute);
            names.extend(rule.quantity_attribute);
        }
        names.into_iter().collect()
    }

    /// Price per unit and second of a kind of a type on an endpoint: the endpoint's override,
    /// else the default, else 0.
    pub fn price(&self, endpoint: &str, resource_type: &str, kind: &str) -> f64 {
        let lookup = |table: &PriceTable| table.get(resource_type).and_then(|kinds| kinds.get(kind)).copied();
        self.billing
            .endpoints
            .iter()
            .find(|billing| billing.id == endpoint)
            .and_then(|billing| lookup(&billing.billing))
            .or_else(|| lookup(&self.billing.default))
            .unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ORIGINAL: &str = r#"
influxdb:
  url: "http://got-influx:8086"
resources:
  - "openstack_compute_instance_v2"
  - "openstack_sharedfilesystem_share_v2"
billing:
  default:
    openstack_block_storage: { block_device: 0 }
    openstack_compute_instance_v2: { m1.small: 0.5, m1.large: 2 }
    openstack_sharedfilesystem_share_v2: { shared: 0.1 }
  endpoints:
    - id: "5d1dc8f33137cfe23c714cf8"
      billing:
        openstack_compute_instance_v2: { m1.small: 0.25 }
"#;

    fn original() -> AcctConfig {
        AcctConfig::from_value(serde_yaml::from_str(ORIGINAL).unwrap()).unwrap()
    }

    #[test]
    fn the_original_acct_yml_loads_and_endpoint_prices_override_defaults() {
        let config = original();
        assert_eq!(config.price("other", "openstack_compute_instance_v2", "m1.small"), 0.5);
        assert_eq!(
            config.price("5d1dc8f33137cfe23c714cf8", "openstack_compute_instance_v2", "m1.small"),
            0.25
        );
        assert_eq!(
            config.price("5d1dc8f33137cfe23c714cf8", "openstack_compute_instance_v2", "m1.large"),
            2.0,
            "kinds the endpoint does not override keep the default"
        );
        assert_eq!(config.price("x", "openstack_compute_instance_v2", "m9"), 0.0);
        assert_eq!(config.attributes(), ["flavor_name", "size"]);
    }

    #[test]
    fn rules_default_to_one_generic_unit_and_can_be_configured() {
        let config = AcctConfig::from_value(
            serde_yaml::from_str(
                "resources: [null_resource]\ntypes:\n  custom_disk: {kind: disk, quantity_attribute: gigabytes}\n",
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(config.rule("null_resource"), TypeRule::default());
        assert_eq!(
            config.rule("custom_disk").quantity_attribute.as_deref(),
            Some("gigabytes")
        );
        assert!(config.billed_types().contains("custom_disk"));
    }

    #[test]
    fn bad_values_are_errors_naming_the_key() {
        for (yaml, key) in [
            ("billing: {default: {t: {k: -1}}}", "billing.default.t.k"),
            (
                "billing: {endpoints: [{id: e, billing: {t: {k: .nan}}}]}",
                "billing.endpoints[0].billing.t.k",
            ),
            ("types: {t: {kind_attribute: admin_pass}}", "types.t.kind_attribute"),
            ("resourcez: []", "resourcez"),
            ("billing: {default: {t: {k: cheap}}}", "billing.default"),
        ] {
            let err = AcctConfig::from_value(serde_yaml::from_str(yaml).unwrap()).unwrap_err();
            assert!(format!("{err:#}").contains(key), "{yaml}: {err:#}");
        }
    }

    #[test]
    fn got_acct_config_replaces_the_section_and_influx_resources_the_list() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acct.yml");
        std::fs::write(&path, ORIGINAL).unwrap();
        let section: serde_yaml::Value = serde_yaml::from_str("resources: [null_resource]").unwrap();
        let path_text = path.display().to_string();
        let config = AcctConfig::load(&section, |name| match name {
            "GOT_ACCT_CONFIG" => Some(path_text.clone()),
            "GOT_INFLUX_RESOURCES" => Some("a, b".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(config.resources, ["a", "b"]);
        assert_eq!(config.price("x", "openstack_compute_instance_v2", "m1.large"), 2.0);
        let missing = AcctConfig::load(&section, |name| {
            (name == "GOT_ACCT_CONFIG").then(|| "/nonexistent/acct.yml".into())
        });
        assert!(format!("{:#}", missing.unwrap_err()).contains("/nonexistent/acct.yml"));
    }
}
