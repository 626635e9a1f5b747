use super::{check_versioning, common_accessors};
use crate::catalogue::{Dependent, Kind, WriteContext, dependents_by};
use crate::model::Recipe;
use crate::state::AppState;
use crate::validate::{self, MAX_DOCUMENT, MAX_TEXT};
use goterra_core::ApiError;

impl Kind for Recipe {
    const TABLE: &'static str = "deploy_recipes";
    const SEGMENT: &'static str = "recipe";
    const PARAM: &'static str = "recipe";
    const ONE: &'static str = "recipe";
    const MANY: &'static str = "recipes";
    const LABEL: &'static str = "recipe";
    const EXTRA_COLUMNS: &'static [&'static str] = &["parent_id"];

    common_accessors!();

    fn is_frozen(&self) -> bool {
        self.frozen
    }

    fn extra_values(&self) -> Vec<Option<String>> {
        vec![Some(self.parent.clone()).filter(|parent| !parent.is_empty())]
    }

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

    async fn dependents(state: &AppState, id: &str) -> Result<Vec<Dependent>, ApiError> {
        let mut users = dependents_by(
            state,
            "application",
            "SELECT a.name, a.namespace_id FROM deploy_app_recipes r JOIN deploy_apps a ON a.id = r.app_id \
             WHERE r.recipe_id = $1 ORDER BY a.name",
            id,
        )
        .await?;
        users.extend(
            dependents_by(
                state,
                "recipe",
                "SELECT name, namespace_id FROM deploy_recipes WHERE parent_id = $1 ORDER BY name",
                id,
            )
            .await?,
        );
        Ok(users)
    }
}
