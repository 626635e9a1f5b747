use super::common_accessors;
use crate::catalogue::{Dependent, Kind, WriteContext};
use crate::model::Endpoint;
use crate::state::AppState;
use crate::validate::{self, MAX_IDENTIFIER, MAX_LIST, MAX_NAME, MAX_TEXT};
use goterra_core::ApiError;
use sqlx::{Any, Transaction};

/// An endpoint kind (`openstack`, `aws`, `local`...): letters, digits, `_` and `-`.
pub(crate) fn check_kind(field: &str, kind: &str) -> Result<(), ApiError> {
    let valid = !kind.is_empty()
        && kind.len() <= MAX_IDENTIFIER
        && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(validate::bad(
            field,
            format!(
                "endpoint kind '{}' must be 1 to {MAX_IDENTIFIER} letters, digits, '_' or '-'",
                validate::shorten(kind)
            ),
        ))
    }
}

fn variables(field: &str, map: &std::collections::BTreeMap<String, String>) -> Result<(), ApiError> {
    validate::input_names(field, map, &[])?;
    validate::labels(field, map)
}

impl Kind for Endpoint {
    const TABLE: &'static str = "deploy_endpoints";
    const SEGMENT: &'static str = "endpoint";
    const PARAM: &'static str = "endpoint";
    const ONE: &'static str = "endpoint";
    const MANY: &'static str = "endpoints";
    const LABEL: &'static str = "endpoint";
    const EXTRA_COLUMNS: &'static [&'static str] = &["kind"];

    common_accessors!();

    fn is_frozen(&self) -> bool {
        false
    }

    fn extra_values(&self) -> Vec<Option<String>> {
        vec![Some(self.kind.clone())]
    }

    async fn validate(&mut self, _ctx: &WriteContext<'_>, _previous: Option<&Self>) -> Result<(), ApiError> {
        self.name = validate::name("name", &self.name)?;
        self.kind = self.kind.trim().to_string();
        check_kind("kind", &self.kind)?;
        if self.features.len() > MAX_LIST {
            return Err(validate::bad("features", format!("at most {MAX_LIST} entries")));
        }
        for (feature, value) in &self.features {
            validate::identifier("features", feature)?;
            validate::text("features", value, MAX_TEXT)?;
        }
        variables("inputs", &self.inputs)?;
        variables("config", &self.config)?;
        if self.images.len() > MAX_LIST {
            return Err(validate::bad("images", format!("at most {MAX_LIST} entries")));
        }
        for (base, image) in &self.images {
            if base.trim().is_empty() || base.len() > MAX_NAME {
                return Err(validate::bad(
                    "images",
                    format!("base image names are 1 to {MAX_NAME} characters"),
                ));
            }
            validate::text("images", image, MAX_TEXT)?;
        }
        validate::defaults("defaults", &self.defaults, &[])?;
        validate::text("remote", &self.remote, MAX_TEXT)
    }

    /// Runs will be the users of an endpoint; until they exist nothing holds one.
    /// Runs not destroyed yet (their destroy needs the object's owner to still find it).
    async fn dependents(state: &AppState, id: &str) -> Result<Vec<Dependent>, ApiError> {
        let runs = crate::runs::records::live_runs_using(state, "endpoint_id", id).await?;
        Ok(runs
            .into_iter()
            .map(|(name, namespace_id)| Dependent {
                kind: "run",
                name,
                namespace_id,
            })
            .collect())
    }

    /// The users' credentials and suggested values for the endpoint go with it.
    async fn delete_relations(tx: &mut Transaction<'_, Any>, id: &str) -> Result<(), sqlx::Error> {
        for table in ["deploy_endpoint_secrets", "deploy_endpoint_defaults"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE endpoint_id = $1"))
                .bind(id.to_string())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }
}
