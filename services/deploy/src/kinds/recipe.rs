use super::check_versioning;
use crate::catalogue::{Kind, WriteContext};
use crate::model::Recipe;
use crate::validate::{self, MAX_DOCUMENT, MAX_TEXT};
use goterra_core::ApiError;

impl Kind for Recipe {
    const PARAM: &'static str = "recipe";
    const LABEL: &'static str = "recipe";

    fn lighten(&mut self) {
        self.script.clear();
    }

    async fn validate(&mut self, ctx: &WriteContext<'_>, _previous: Option<&Self>) -> Result<(), ApiError> {
        self.name = validate::name("name", &self.name)?;
        validate::text("description", &self.description, MAX_TEXT)?;
        validate::text("script", &self.script, MAX_DOCUMENT)?;
        self.base = self.base.iter().map(|image| image.trim().to_string()).collect();
        validate::short_strings("base", &self.base)?;
        if self.base.iter().any(String::is_empty) {
            return Err(validate::bad("base", "image names must not be empty"));
        }
        validate::short_strings("tags", &self.tags)?;
        validate::input_names("inputs", &self.inputs, &[])?;
        validate::labels("inputs", &self.inputs)?;
        validate::defaults("defaults", &self.defaults, &[])?;
        check_versioning(&self.prev, &self.remote, &self.rversion, &self.version)?;
        self.parent = self.parent.trim().to_string();
        crate::images::check_parent(ctx.state, self).await
    }
}
