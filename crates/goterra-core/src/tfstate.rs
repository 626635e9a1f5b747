//! The parts of a Terraform state (format version 4) that services read: resources, their
//! instances and their addresses. Deploy keeps states encrypted; run-agent lists a run's
//! resources from them and deploy hands acct the few attributes it bills on.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TerraformState {
    pub serial: u64,
    pub terraform_version: String,
    pub resources: Vec<StateResource>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StateResource {
    pub module: Option<String>,
    pub mode: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub provider: String,
    pub instances: Vec<StateInstance>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StateInstance {
    pub index_key: Option<Value>,
    pub attributes: Option<Value>,
    /// Paths of attributes Terraform marked sensitive, e.g. `[[{"type":"get_attr","value":"password"}]]`.
    pub sensitive_attributes: Vec<Value>,
}

impl StateResource {
    /// The address of the resource without an instance key: `module.net.null_resource.vm`.
    pub fn base_address(&self) -> String {
        let mut base = String::new();
        if let Some(module) = self.module.as_deref().filter(|m| !m.is_empty()) {
            base.push_str(module);
            base.push('.');
        }
        if self.mode == "data" {
            base.push_str("data.");
        }
        base.push_str(&format!("{}.{}", self.kind, self.name));
        base
    }
}

impl StateInstance {
    /// The instance's address under its resource's `base` address: `base[0]`, `base["eu"]`.
    pub fn address(&self, base: &str) -> String {
        match &self.index_key {
            Some(Value::Number(index)) => format!("{base}[{index}]"),
            Some(Value::String(key)) => format!("{base}[{}]", Value::String(key.clone())),
            _ => base.to_string(),
        }
    }

    /// True when Terraform marked the top-level attribute `name` (or a part of it) sensitive.
    pub fn is_sensitive(&self, name: &str) -> bool {
        self.sensitive_attributes.iter().any(|path| {
            path.as_array()
                .and_then(|steps| steps.first())
                .and_then(|step| step.get("value"))
                .and_then(Value::as_str)
                == Some(name)
        })
    }
}
