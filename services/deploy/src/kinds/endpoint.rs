use crate::catalogue::{Kind, WriteContext};
use crate::model::Endpoint;
use crate::validate::{self, MAX_IDENTIFIER, MAX_LIST, MAX_NAME, MAX_TEXT};
use goterra_core::ApiError;

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
    const PARAM: &'static str = "endpoint";
    const LABEL: &'static str = "endpoint";

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
}
