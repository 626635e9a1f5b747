use super::check_versioning;
use crate::catalogue::{Kind, WriteContext, find_usable};
use crate::model::{Application, Template};
use crate::validate::{self, MAX_TEXT};
use goterra_client::ids::{NamespaceId, TemplateId};
use goterra_core::ApiError;

impl Kind for Application {
    const PARAM: &'static str = "application";
    const LABEL: &'static str = "application";

    async fn validate(&mut self, ctx: &WriteContext<'_>, _previous: Option<&Self>) -> Result<(), ApiError> {
        self.name = validate::name("name", &self.name)?;
        validate::text("description", &self.description, MAX_TEXT)?;
        validate::short_strings("recipes", &self.recipes)?;
        check_versioning(&self.prev, &self.remote, &self.rversion, &self.version)?;
        self.template = self.template.trim().to_string();
        if self.template.is_empty() {
            return Err(validate::bad("template", "required: the id of a template"));
        }
        let namespace = NamespaceId::from_trusted(&self.namespace);
        let template_id = TemplateId::from_trusted(&self.template);
        let template = match find_usable::<Template>(ctx.state, &namespace, &template_id).await? {
            Some(template) => template,
            None => {
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
        self.image = crate::images::base_images(ctx.state, &namespace, &self.templaterecipes).await?;
        Ok(())
    }
}
