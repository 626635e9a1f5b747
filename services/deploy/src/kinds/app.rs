use super::{check_versioning, common_accessors};
use crate::catalogue::{Dependent, Kind, WriteContext, fetch};
use crate::model::{Application, Template};
use crate::state::AppState;
use crate::validate::{self, MAX_TEXT};
use goterra_core::ApiError;
use sqlx::{Any, Transaction};

impl Kind for Application {
    const TABLE: &'static str = "deploy_apps";
    const SEGMENT: &'static str = "app";
    const PARAM: &'static str = "application";
    const ONE: &'static str = "app";
    const MANY: &'static str = "apps";
    const LABEL: &'static str = "application";
    const EXTRA_COLUMNS: &'static [&'static str] = &["template_id"];

    common_accessors!();

    fn is_frozen(&self) -> bool {
        self.frozen
    }

    fn extra_values(&self) -> Vec<Option<String>> {
        vec![Some(self.template.clone())]
    }

    async fn validate(&mut self, ctx: &WriteContext<'_>, _previous: Option<&Self>) -> Result<(), ApiError> {
        self.name = validate::name("name", &self.name)?;
        validate::text("description", &self.description, MAX_TEXT)?;
        validate::short_strings("recipes", &self.recipes)?;
        check_versioning(&self.prev, &self.remote, &self.rversion, &self.version)?;
        self.template = self.template.trim().to_string();
        if self.template.is_empty() {
            return Err(validate::bad("template", "required: the id of a template"));
        }
        let template = match fetch::<Template>(ctx.state, &self.template).await? {
            Some(template) if template.public || template.namespace == self.namespace => template,
            _ => {
                return Err(validate::bad(
                    "template",
                    format!(
                        "template '{}' not found or not usable from this namespace",
                        validate::shorten(&self.template)
                    ),
                ));
            }
        };
        for var in &template.varrecipes {
            if !self.templaterecipes.contains_key(var) {
                return Err(validate::bad(
                    "templaterecipes",
                    format!("the template's recipe variable '{var}' needs a list of recipes (it may be empty)"),
                ));
            }
        }
        for (var, recipes) in &self.templaterecipes {
            if !template.varrecipes.contains(var) {
                return Err(validate::bad(
                    "templaterecipes",
                    format!("'{}' is not a recipe variable of the template", validate::shorten(var)),
                ));
            }
            validate::short_strings("templaterecipes", recipes)?;
        }
        validate::defaults("defaults", &self.defaults, &template.varrecipes)?;
        // Checks every recipe (and its ancestors) while computing the images.
        self.image = crate::images::base_images(ctx.state, &self.namespace, &self.templaterecipes).await?;
        Ok(())
    }

    /// Runs will be the users of an application; until they exist nothing holds one.
    /// Runs not destroyed yet (their destroy needs the object's owner to still find it).
    async fn dependents(state: &AppState, id: &str) -> Result<Vec<Dependent>, ApiError> {
        let runs = crate::runs::records::live_runs_using(state, "app_id", id).await?;
        Ok(runs
            .into_iter()
            .map(|(name, namespace_id)| Dependent {
                kind: "run",
                name,
                namespace_id,
            })
            .collect())
    }

    async fn write_relations(&self, tx: &mut Transaction<'_, Any>) -> Result<(), sqlx::Error> {
        Self::delete_relations(tx, &self.id).await?;
        for recipe in crate::images::recipe_ids(&self.templaterecipes) {
            sqlx::query("INSERT INTO deploy_app_recipes (app_id, recipe_id) VALUES ($1, $2)")
                .bind(self.id.clone())
                .bind(recipe)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    async fn delete_relations(tx: &mut Transaction<'_, Any>, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM deploy_app_recipes WHERE app_id = $1")
            .bind(id.to_string())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}
