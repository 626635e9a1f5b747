//! A run's sensitive values: sealed (encrypted) for storage, opened for the agent's spec, and the
//! redaction rule that keeps them out of logs, errors and outputs.

use crate::state::AppState;
use crate::storage::StorageError;
use goterra_core::{ApiError, Sensitive};
use serde_json::Value;
use std::collections::BTreeMap;

/// Shortest secret value redacted (shorter ones would blank ordinary words).
const MIN_REDACTED: usize = 4;
/// What a redacted value is replaced by.
const REDACTED: &str = "********";

/// A map of strings, encrypted for storage.
pub fn seal_map(state: &AppState, map: &BTreeMap<String, String>) -> Result<String, ApiError> {
    let json = serde_json::to_vec(map).map_err(StorageError::from)?;
    Ok(state.secrets.encrypt(&json))
}

/// The sensitive values of a run, decrypted (for redaction and the agent's spec).
pub fn open_map(state: &AppState, sealed: &str) -> Result<BTreeMap<String, Sensitive<String>>, ApiError> {
    let plain = state.secrets.decrypt(sealed)?;
    let map: BTreeMap<String, String> = serde_json::from_slice(plain.expose()).map_err(StorageError::from)?;
    Ok(map
        .into_iter()
        .map(|(name, value)| (name, Sensitive::new(value)))
        .collect())
}

/// A JSON object of strings, decrypted (boot scripts).
pub fn open_value(state: &AppState, sealed: &str) -> Result<Value, ApiError> {
    let plain = state.secrets.decrypt(sealed)?;
    Ok(serde_json::from_slice(plain.expose()).map_err(StorageError::from)?)
}

/// The secret values of a run, ready to be redacted from what the agent reports.
pub struct Redactor {
    /// Longest first, so a secret containing another is redacted whole.
    values: Vec<String>,
}

impl Redactor {
    /// The run's sensitive values (none once destroyed).
    pub async fn for_run(state: &AppState, id: &goterra_client::ids::RunId) -> Result<Self, ApiError> {
        let sealed = state.run_repo().sealed(id).await?;
        let mut values: Vec<String> = match sealed.sensitive {
            Some(sealed) => open_map(state, &sealed)?
                .into_values()
                .map(Sensitive::into_inner)
                .filter(|value| value.len() >= MIN_REDACTED)
                .collect(),
            None => Vec::new(),
        };
        values.sort_by_key(|value| std::cmp::Reverse(value.len()));
        Ok(Self { values })
    }

    /// `text` with every secret value replaced by `********`.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.values {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
        text
    }
}
