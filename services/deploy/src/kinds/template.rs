use super::check_versioning;
use crate::catalogue::{Kind, WriteContext};
use crate::model::Template;
use crate::template_policy;
use crate::validate::{self, MAX_DOCUMENT, MAX_TEXT};
use goterra_core::ApiError;

/// Endpoint kinds a template may have files for.
const MAX_KINDS: usize = 16;

impl Kind for Template {
    const PARAM: &'static str = "template";
    const LABEL: &'static str = "template";

    fn lighten(&mut self) {
        self.data.values_mut().for_each(String::clear);
    }

    async fn validate(&mut self, ctx: &WriteContext<'_>, previous: Option<&Self>) -> Result<(), ApiError> {
        self.name = validate::name("name", &self.name)?;
        validate::text("description", &self.description, MAX_TEXT)?;
        validate::short_strings("tags", &self.tags)?;
        validate::list_len("model", &self.model)?;
        check_versioning(&self.prev, &self.remote, &self.rversion, &self.version)?;
        validate::list_len("varrecipes", &self.varrecipes)?;
        for (index, var) in self.varrecipes.iter().enumerate() {
            validate::identifier("varrecipes", var)?;
            if let Some(reason) = validate::reserved_input(var, &[]) {
                return Err(validate::bad("varrecipes", format!("'{var}' is reserved: {reason}")));
            }
            if self.varrecipes[..index].contains(var) {
                return Err(validate::bad("varrecipes", format!("'{var}' is listed twice")));
            }
        }
        validate::input_names("inputs", &self.inputs, &self.varrecipes)?;
        validate::labels("inputs", &self.inputs)?;
        validate::defaults("defaults", &self.defaults, &self.varrecipes)?;
        if self.data.len() > MAX_KINDS {
            return Err(validate::bad("data", format!("at most {MAX_KINDS} endpoint kinds")));
        }
        let inputs: Vec<String> = self.inputs.keys().cloned().collect();
        let mut admin_only = Vec::new();
        for (kind, source) in &self.data {
            super::endpoint::check_kind("data", kind)?;
            validate::text(&format!("data.{kind}"), source, MAX_DOCUMENT)?;
            admin_only.extend(template_policy::check(kind, source, &self.varrecipes, &inputs)?);
        }
        // What an admin approved stays usable when a member edits other fields.
        let data_unchanged = previous.is_some_and(|previous| previous.data == self.data);
        if !admin_only.is_empty() && !ctx.user.is_admin() && !data_unchanged {
            admin_only.dedup();
            return Err(ApiError::forbidden(format!(
                "data: {} run commands on the agent's host, outside any VM; only an admin may add them to a template",
                admin_only.join(" and ")
            )));
        }
        Ok(())
    }
}
