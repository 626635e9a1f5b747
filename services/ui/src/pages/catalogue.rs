//! The catalogue of a namespace — endpoints, recipes, templates, applications: list (own and
//! public), view, create, edit, delete, and a user's credentials for an endpoint.
//!
//! Maps (config, images, inputs...) are edited as `name = value` lines, lists as comma
//! separated words: plain form fields that work without JavaScript.

use super::{Button, SignedIn};
use crate::Ui;
use crate::api::{ApiFailure, UserApi};
use crate::error::PageError;
use crate::layout::{self, Section, csrf_field, url, visibility};
use crate::model::{Application, CatalogueItem, CatalogueKind, Endpoint, Recipe, Template};
use crate::session::{Posted, Session};
use axum::Router;
use axum::extract::{Path, Query};
use axum::response::Response;
use axum::routing::{get, post};
use goterra_core::Sensitive;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub fn routes() -> Router<Ui> {
    let mut router = Router::new()
        .route(&url("/ns/{ns}/endpoint/{id}/secret"), post(put_secret))
        .route(&url("/ns/{ns}/endpoint/{id}/secret/delete"), post(delete_secret));
    router = kind_routes::<Endpoint>(router);
    router = kind_routes::<Recipe>(router);
    router = kind_routes::<Template>(router);
    kind_routes::<Application>(router)
}

fn kind_routes<K: Editable>(router: Router<Ui>) -> Router<Ui> {
    let collection = url(&format!("/ns/{{ns}}/{}", K::SEGMENT));
    router
        .route(&collection, get(list::<K>).post(create::<K>))
        .route(&format!("{collection}/new"), get(new_form::<K>))
        .route(&format!("{collection}/{{id}}"), get(view::<K>).post(update::<K>))
        .route(&format!("{collection}/{{id}}/edit"), get(edit_form::<K>))
        .route(&format!("{collection}/{{id}}/delete"), post(delete::<K>))
}

/// A form field: one value, or several (`name=a&name=b`).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Field {
    One(String),
    Many(Vec<String>),
}

impl Field {
    fn text(&self) -> &str {
        match self {
            Self::One(text) => text,
            Self::Many(values) => values.first().map_or("", String::as_str),
        }
    }

    fn all(&self) -> Vec<String> {
        match self {
            Self::One(text) => vec![text.clone()],
            Self::Many(values) => values.clone(),
        }
    }
}

pub type Fields = BTreeMap<String, Field>;

fn text<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields.get(name).map_or("", Field::text)
}

/// How to read fields: `Strict` refuses what is malformed (to send it), `Lenient` keeps all
/// that can be kept (to show the form again after an error, without losing what was typed).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    Strict,
    Lenient,
}

/// `name = value` lines into a map (blank lines skipped; a line without `=` is refused when
/// strict, kept as a name without value when lenient).
fn parse_lines(fields: &Fields, name: &str, reading: Reading) -> Result<BTreeMap<String, String>, PageError> {
    let mut map = BTreeMap::new();
    for (number, line) in text(fields, name).lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            if reading == Reading::Lenient {
                map.insert(line.to_string(), String::new());
                continue;
            }
            return Err(PageError::BadRequest(format!(
                "{name}, line {}: write `name = value`",
                number + 1
            )));
        };
        map.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(map)
}

fn lines_of(map: &BTreeMap<String, String>) -> String {
    map.iter().map(|(key, value)| format!("{key} = {value}\n")).collect()
}

fn parse_list(fields: &Fields, name: &str) -> Vec<String> {
    text(fields, name)
        .split(',')
        .map(str::trim)
        .filter(|word| !word.is_empty())
        .map(str::to_string)
        .collect()
}

/// What the pages of one kind need beyond [`CatalogueKind`].
pub trait Editable: CatalogueKind + Default + Send + Sync + 'static {
    /// Plural title: "Endpoints".
    const PLURAL: &'static str;
    /// The kind-specific part of the view page.
    fn details(&self) -> Markup;
    /// The kind-specific fields of the form (with what the form needs from the API).
    fn fields(&self, choices: &Choices) -> Markup;
    /// The API body from the posted fields.
    fn body(fields: &Fields, reading: Reading) -> Result<Value, PageError>;
    /// The template an application is built on.
    fn template_id(&self) -> Option<&str> {
        None
    }
    /// A step before the form, when the form depends on a choice (an application's template);
    /// `page` is the form page's own URL.
    fn pre_form(&self, _choices: &Choices, _page: &str) -> Option<Markup> {
        None
    }
}

/// Objects a form offers to pick from (recipes as parents, templates for applications).
#[derive(Default)]
pub struct Choices {
    pub recipes: Vec<Recipe>,
    pub templates: Vec<Template>,
    /// The template an application form is for.
    pub template: Option<Template>,
}

async fn own_and_public<K: CatalogueKind>(api: &UserApi, ns: &str) -> Result<Vec<K>, ApiFailure> {
    let (own, public) = tokio::join!(api.catalogue::<K>(ns), api.public_catalogue::<K>());
    let mut all = own?;
    for item in public? {
        if !all.iter().any(|known| known.id() == item.id()) {
            all.push(item);
        }
    }
    Ok(all)
}

async fn list<K: Editable>(me: SignedIn, Path(ns): Path<String>) -> Result<Response, PageError> {
    let items = own_and_public::<K>(&me.api(), &ns).await?;
    let base = format!("/ns/{ns}/{}", K::SEGMENT);
    let body = html! {
        (breadcrumbs(&ns, None))
        div class="heading" {
            h1 { (K::PLURAL) }
            a class="button primary" href=(url(&format!("{base}/new"))) { "New " (K::TITLE) }
        }
        @if items.is_empty() {
            p class="empty" { "No " (K::TITLE) " in this namespace, and none public." }
        } @else {
            table {
                thead { tr { th { "Name" } th { "Version" } th { "Visibility" } th { "Namespace" } } }
                tbody {
                    @for item in &items {
                        tr {
                            td { a href=(url(&format!("/ns/{ns}/{}/{}", K::SEGMENT, item.id()))) { (item.name()) } }
                            td { (item.version()) }
                            td { (visibility(item.public())) }
                            td { @if item.namespace() == ns { "this one" } @else { span class="muted" { "other (public)" } } }
                        }
                    }
                }
            }
        }
    };
    Ok(me.render(Section::Namespaces, K::PLURAL, body))
}

fn breadcrumbs(ns: &str, last: Option<(&str, &str)>) -> Markup {
    html! {
        nav class="crumbs" aria-label="Breadcrumb" {
            a href=(url("/ns")) { "Namespaces" } " / "
            a href=(url(&format!("/ns/{ns}"))) { "namespace" }
            @if let Some((href, label)) = last { " / " a href=(url(href)) { (label) } }
        }
    }
}

async fn view<K: Editable>(me: SignedIn, Path((ns, id)): Path<(String, String)>) -> Result<Response, PageError> {
    let api = me.api();
    let item = api.catalogue_item::<K>(&ns, &id).await?;
    let has_secret = if K::SEGMENT == Endpoint::SEGMENT {
        Some(api.has_secret(&ns, &id).await?)
    } else {
        None
    };
    let base = format!("/ns/{ns}/{}/{}", K::SEGMENT, item.id());
    let owned = item.namespace() == ns;
    let body = html! {
        (breadcrumbs(&ns, Some((&format!("/ns/{ns}/{}", K::SEGMENT), K::PLURAL))))
        div class="heading" {
            h1 { (item.name()) " " (visibility(item.public())) }
            div class="actions" {
                @if K::SEGMENT == Application::SEGMENT {
                    a class="button primary" href=(url(&format!("{base}/run"))) { "Run" }
                }
                @if owned {
                    a class="button" href=(url(&format!("{base}/edit"))) { "Edit" }
                    form method="post" action=(url(&format!("{base}/delete"))) class="inline" data-confirm=(format!("Delete {} {}?", K::TITLE, item.name())) {
                        (csrf_field(&me.session))
                        button type="submit" class="danger" { "Delete" }
                    }
                }
            }
        }
        dl class="facts" {
            dt { "Id" } dd { code { (item.id()) } }
            @if !item.description().is_empty() { dt { "Description" } dd { (item.description()) } }
            @if !item.version().is_empty() { dt { "Version" } dd { (item.version()) } }
            dt { "Namespace" } dd { (item.namespace()) }
        }
        (item.details())
        @if let Some(has_secret) = has_secret {
            (secret_form(&me.session, &ns, item.id(), has_secret))
        }
    };
    Ok(me.render(Section::Namespaces, item.name(), body))
}

fn secret_form(session: &Session, ns: &str, endpoint: &str, has_secret: bool) -> Markup {
    let base = format!("/ns/{ns}/endpoint/{endpoint}/secret");
    html! {
        section class="card narrow" {
            h2 { "Your credentials for this endpoint" }
            @if has_secret {
                p { "You have stored credentials; runs on this endpoint use them unless you give others." }
                form method="post" action=(url(&format!("{base}/delete"))) class="inline" {
                    (csrf_field(session))
                    button type="submit" class="danger small" { "Forget them" }
                }
            } @else {
                p { "No credentials stored: runs will ask for them." }
            }
            form method="post" action=(url(&base)) class="stack" {
                (csrf_field(session))
                label for="secret-name" { "Cloud user name" }
                input id="secret-name" name="name" required autocomplete="off";
                label for="secret-password" { "Password" }
                input id="secret-password" name="password" type="password" required autocomplete="new-password";
                button type="submit" { @if has_secret { "Replace credentials" } @else { "Store credentials" } }
            }
        }
    }
}

#[derive(Deserialize)]
struct SecretForm {
    name: String,
    password: String,
}

async fn put_secret(Path((ns, id)): Path<(String, String)>, posted: Posted<SecretForm>) -> Result<Response, PageError> {
    let Posted { me, form } = posted;
    let password = Sensitive::new(form.password);
    me.api().put_secret(&ns, &id, form.name.trim(), password).await?;
    Ok(me.done(&format!("/ns/{ns}/endpoint/{id}"), "Credentials stored."))
}

async fn delete_secret(Path((ns, id)): Path<(String, String)>, button: Button) -> Result<Response, PageError> {
    button.me.api().delete_secret(&ns, &id).await?;
    Ok(button
        .me
        .done(&format!("/ns/{ns}/endpoint/{id}"), "Credentials forgotten."))
}

#[derive(Deserialize)]
struct NewQuery {
    template: Option<String>,
}

async fn choices<K: Editable>(api: &UserApi, ns: &str, template: Option<&str>) -> Result<Choices, PageError> {
    let mut choices = Choices::default();
    if K::SEGMENT == Recipe::SEGMENT || K::SEGMENT == Application::SEGMENT {
        choices.recipes = own_and_public::<Recipe>(api, ns).await?;
    }
    if K::SEGMENT == Application::SEGMENT {
        choices.templates = own_and_public::<Template>(api, ns).await?;
        choices.template = template.and_then(|id| choices.templates.iter().find(|t| t.id == id).cloned());
    }
    Ok(choices)
}

async fn new_form<K: Editable>(
    me: SignedIn,
    Path(ns): Path<String>,
    Query(query): Query<NewQuery>,
) -> Result<Response, PageError> {
    let choices = choices::<K>(&me.api(), &ns, query.template.as_deref()).await?;
    let body = form_page::<K>(&me.session, &ns, None, &K::default(), &choices, None);
    Ok(me.render(Section::Namespaces, &format!("New {}", K::TITLE), body))
}

async fn edit_form<K: Editable>(
    me: SignedIn,
    Path((ns, id)): Path<(String, String)>,
    Query(query): Query<NewQuery>,
) -> Result<Response, PageError> {
    let api = me.api();
    let item = api.catalogue_item::<K>(&ns, &id).await?;
    let template = query.template.or_else(|| item.template_id().map(str::to_string));
    let choices = choices::<K>(&api, &ns, template.as_deref()).await?;
    let body = form_page::<K>(&me.session, &ns, Some(&id), &item, &choices, None);
    Ok(me.render(Section::Namespaces, &format!("Edit {}", item.name()), body))
}

fn form_page<K: Editable>(
    session: &Session,
    ns: &str,
    id: Option<&str>,
    item: &K,
    choices: &Choices,
    error: Option<&str>,
) -> Markup {
    let (action, page) = match id {
        Some(id) => (
            url(&format!("/ns/{ns}/{}/{id}", K::SEGMENT)),
            url(&format!("/ns/{ns}/{}/{id}/edit", K::SEGMENT)),
        ),
        None => (
            url(&format!("/ns/{ns}/{}", K::SEGMENT)),
            url(&format!("/ns/{ns}/{}/new", K::SEGMENT)),
        ),
    };
    if let Some(step) = item.pre_form(choices, &page) {
        return html! {
            (breadcrumbs(ns, Some((&format!("/ns/{ns}/{}", K::SEGMENT), K::PLURAL))))
            h1 { @if id.is_some() { "Edit " (K::TITLE) " " (item.name()) } @else { "New " (K::TITLE) } }
            (step)
        };
    }
    html! {
        (breadcrumbs(ns, Some((&format!("/ns/{ns}/{}", K::SEGMENT), K::PLURAL))))
        h1 { @if id.is_some() { "Edit " (K::TITLE) " " (item.name()) } @else { "New " (K::TITLE) } }
        (layout::form_error(error))
        form method="post" action=(action) class="stack wide" {
            (csrf_field(session))
            label for="f-name" { "Name" }
            input id="f-name" name="name" required value=(item.name());
            label for="f-description" { "Description" }
            input id="f-description" name="description" value=(item.description());
            div class="check" {
                input id="f-public" name="public" type="checkbox" value="1" checked[item.public()];
                label for="f-public" { "Public: usable from every namespace" }
            }
            (item.fields(choices))
            button type="submit" class="primary" { @if id.is_some() { "Save" } @else { "Create" } }
        }
    }
}

async fn create<K: Editable>(Path(ns): Path<String>, posted: Posted<Fields>) -> Result<Response, PageError> {
    let Posted { me, form } = posted;
    let result = match K::body(&form, Reading::Strict) {
        Ok(body) => me.api().create_item::<K>(&ns, &body).await.map_err(PageError::from),
        Err(err) => Err(err),
    };
    match result {
        Ok(id) => Ok(me.done(
            &format!("/ns/{ns}/{}/{id}", K::SEGMENT),
            &format!("{} created.", capitalised(K::TITLE)),
        )),
        Err(err) => refill::<K>(&me, &ns, None, &form, err).await,
    }
}

async fn update<K: Editable>(
    Path((ns, id)): Path<(String, String)>,
    posted: Posted<Fields>,
) -> Result<Response, PageError> {
    let Posted { me, form } = posted;
    let result = match K::body(&form, Reading::Strict) {
        Ok(body) => me
            .api()
            .update_item::<K>(&ns, &id, &body)
            .await
            .map_err(PageError::from),
        Err(err) => Err(err),
    };
    match result {
        Ok(()) => Ok(me.done(&format!("/ns/{ns}/{}/{id}", K::SEGMENT), "Saved.")),
        Err(err) => refill::<K>(&me, &ns, Some(&id), &form, err).await,
    }
}

/// The form again, with what the user typed and the API's message, for an input error.
async fn refill<K: Editable>(
    me: &SignedIn,
    ns: &str,
    id: Option<&str>,
    form: &Fields,
    err: PageError,
) -> Result<Response, PageError> {
    let status = match &err {
        PageError::BadRequest(_) | PageError::Rejected { .. } => err.status(),
        _ => return Err(err),
    };
    // Rebuild the item from the fields the user sent, so nothing typed is lost.
    let item: K = K::body(form, Reading::Lenient)
        .ok()
        .and_then(|body| serde_json::from_value(body).ok())
        .unwrap_or_default();
    let template = form.get("template").map(|t| t.text().to_string());
    let choices = choices::<K>(&me.api(), ns, template.as_deref()).await?;
    let body = form_page::<K>(&me.session, ns, id, &item, &choices, Some(&err.to_string()));
    Ok(me.render_status(Section::Namespaces, status, K::TITLE, body))
}

async fn delete<K: Editable>(Path((ns, id)): Path<(String, String)>, button: Button) -> Result<Response, PageError> {
    button.me.api().delete_item::<K>(&ns, &id).await?;
    Ok(button.me.done(
        &format!("/ns/{ns}/{}", K::SEGMENT),
        &format!("{} deleted.", capitalised(K::TITLE)),
    ))
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn common_body(fields: &Fields) -> Value {
    json!({
        "name": text(fields, "name").trim(),
        "description": text(fields, "description").trim(),
        "public": text(fields, "public") == "1",
    })
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

fn map_table(title: &str, map: &BTreeMap<String, String>) -> Markup {
    html! {
        @if !map.is_empty() {
            h2 { (title) }
            table class="kv" {
                tbody { @for (key, value) in map { tr { th scope="row" { (key) } td { (value) } } } }
            }
        }
    }
}

fn lines_field(name: &str, label: &str, hint: &str, map: &BTreeMap<String, String>) -> Markup {
    let id = format!("f-{name}");
    html! {
        label for=(id) { (label) }
        textarea id=(id) name=(name) rows="4" class="mono" { (lines_of(map)) }
        p class="hint" { (hint) }
    }
}

fn text_field(name: &str, label: &str, value: &str) -> Markup {
    let id = format!("f-{name}");
    html! {
        label for=(id) { (label) }
        input id=(id) name=(name) value=(value);
    }
}

impl Editable for Endpoint {
    const PLURAL: &'static str = "Endpoints";

    fn details(&self) -> Markup {
        html! {
            dl class="facts" { dt { "Kind" } dd { code { (self.kind) } } }
            (map_table("Configuration", &self.config))
            (map_table("Images", &self.images))
            (map_table("Features", &self.features))
            (map_table("Inputs users give", &self.inputs))
        }
    }

    fn fields(&self, _: &Choices) -> Markup {
        html! {
            label for="f-kind" { "Kind" }
            input id="f-kind" name="kind" required value=(self.kind) placeholder="openstack, aws, local…";
            (lines_field("config", "Configuration", "One `name = value` per line (region, auth_url…).", &self.config))
            (lines_field("images", "Images", "One `image name = cloud image id` per line.", &self.images))
            (lines_field("features", "Features", "One `name = value` per line (ip_public = 1…).", &self.features))
            (lines_field("inputs", "Inputs users give", "One `input name = label` per line.", &self.inputs))
        }
    }

    fn body(fields: &Fields, reading: Reading) -> Result<Value, PageError> {
        Ok(merge(
            common_body(fields),
            json!({
                "kind": text(fields, "kind").trim(),
                "config": parse_lines(fields, "config", reading)?,
                "images": parse_lines(fields, "images", reading)?,
                "features": parse_lines(fields, "features", reading)?,
                "inputs": parse_lines(fields, "inputs", reading)?,
            }),
        ))
    }
}

impl Editable for Recipe {
    const PLURAL: &'static str = "Recipes";

    fn details(&self) -> Markup {
        html! {
            dl class="facts" {
                @if !self.base.is_empty() { dt { "Base images" } dd { (self.base.join(", ")) } }
                @if !self.parent.is_empty() { dt { "Parent recipe" } dd { code { (self.parent) } } }
                @if !self.tags.is_empty() { dt { "Tags" } dd { (self.tags.join(", ")) } }
            }
            (map_table("Inputs", &self.inputs))
            h2 { "Script" }
            @if self.script.is_empty() { p class="muted" { "Not shown (public recipe of another namespace)." } }
            @else { pre class="code" { (self.script) } }
        }
    }

    fn fields(&self, choices: &Choices) -> Markup {
        let script = if self.script.is_empty() {
            "#!/bin/bash\nset -e\n"
        } else {
            self.script.as_str()
        };
        html! {
            (text_field("version", "Version", &self.version))
            label for="f-script" { "Script (runs in the VM at boot)" }
            textarea id="f-script" name="script" rows="14" class="mono" spellcheck="false" { (script) }
            (text_field("base", "Base images (comma separated)", &self.base.join(", ")))
            label for="f-parent" { "Parent recipe (instead of base images)" }
            select id="f-parent" name="parent" {
                option value="" { "— none —" }
                @for recipe in &choices.recipes {
                    @if recipe.id != self.id {
                        option value=(recipe.id) selected[recipe.id == self.parent] { (recipe.name) " " (recipe.version) }
                    }
                }
            }
            p class="hint" { "A recipe has base images or a parent, not both." }
            (lines_field("inputs", "Inputs", "One `input name = label` per line.", &self.inputs))
            (text_field("tags", "Tags (comma separated)", &self.tags.join(", ")))
        }
    }

    fn body(fields: &Fields, reading: Reading) -> Result<Value, PageError> {
        Ok(merge(
            common_body(fields),
            json!({
                "version": text(fields, "version").trim(),
                // Browsers send CRLF line ends; a shell script wants LF.
                "script": text(fields, "script").replace("\r\n", "\n"),
                "base": parse_list(fields, "base"),
                "parent": text(fields, "parent"),
                "inputs": parse_lines(fields, "inputs", reading)?,
                "tags": parse_list(fields, "tags"),
            }),
        ))
    }
}

impl Editable for Template {
    const PLURAL: &'static str = "Templates";

    fn details(&self) -> Markup {
        html! {
            dl class="facts" {
                dt { "Recipe variables" } dd { (self.varrecipes.join(", ")) }
                @if !self.tags.is_empty() { dt { "Tags" } dd { (self.tags.join(", ")) } }
            }
            (map_table("Inputs", &self.inputs))
            @for (kind, terraform) in &self.data {
                h2 { "Terraform for " code { (kind) } }
                pre class="code" { (terraform) }
            }
        }
    }

    fn fields(&self, _: &Choices) -> Markup {
        html! {
            (text_field("version", "Version", &self.version))
            (text_field("varrecipes", "Recipe variables (comma separated, e.g. recipes_master)", &self.varrecipes.join(", ")))
            (lines_field("inputs", "Inputs", "One `input name = label` per line.", &self.inputs))
            @for (kind, terraform) in &self.data {
                label for=(format!("f-data-{kind}")) { "Terraform for " code { (kind) } " (empty to remove)" }
                textarea id=(format!("f-data-{kind}")) name=(format!("data.{kind}")) rows="12" class="mono" spellcheck="false" { (terraform) }
            }
            fieldset {
                legend { "Terraform for another endpoint kind" }
                label for="f-newkind" { "Endpoint kind" }
                input id="f-newkind" name="newkind" placeholder="openstack, aws, local…";
                label for="f-newdata" { "Terraform" }
                textarea id="f-newdata" name="newdata" rows="12" class="mono" spellcheck="false" {}
            }
            (text_field("tags", "Tags (comma separated)", &self.tags.join(", ")))
        }
    }

    fn body(fields: &Fields, reading: Reading) -> Result<Value, PageError> {
        let mut data = BTreeMap::new();
        for (name, value) in fields {
            if let Some(kind) = name.strip_prefix("data.") {
                let terraform = value.text().replace("\r\n", "\n");
                if !terraform.trim().is_empty() {
                    data.insert(kind.to_string(), terraform);
                }
            }
        }
        let kind = text(fields, "newkind").trim();
        let terraform = text(fields, "newdata").replace("\r\n", "\n");
        if !kind.is_empty() && !terraform.trim().is_empty() {
            data.insert(kind.to_string(), terraform);
        } else if reading == Reading::Strict && kind.is_empty() != terraform.trim().is_empty() {
            return Err(PageError::BadRequest(
                "give both the endpoint kind and its Terraform".into(),
            ));
        }
        Ok(merge(
            common_body(fields),
            json!({
                "version": text(fields, "version").trim(),
                "varrecipes": parse_list(fields, "varrecipes"),
                "inputs": parse_lines(fields, "inputs", reading)?,
                "data": data,
                "tags": parse_list(fields, "tags"),
            }),
        ))
    }
}

impl Editable for Application {
    const PLURAL: &'static str = "Applications";

    fn details(&self) -> Markup {
        html! {
            dl class="facts" {
                dt { "Template" } dd { code { (self.template) } }
                @if !self.image.is_empty() { dt { "Base images" } dd { (self.image.join(", ")) } }
            }
            h2 { "Recipes per variable" }
            table class="kv" {
                tbody {
                    @for (variable, recipes) in &self.templaterecipes {
                        tr { th scope="row" { (variable) } td { (recipes.join(", ")) } }
                    }
                }
            }
        }
    }

    fn fields(&self, choices: &Choices) -> Markup {
        let chosen = choices.template.as_ref();
        html! {
            (text_field("version", "Version", &self.version))
            label for="f-template" { "Template" }
            select id="f-template" name="template" required data-reload="template" {
                option value="" { "— choose —" }
                @for template in &choices.templates {
                    option value=(template.id) selected[chosen.is_some_and(|t| t.id == template.id)] { (template.name) " " (template.version) }
                }
            }
            @if let Some(template) = chosen {
                    @for variable in &template.varrecipes {
                        @let selected = self.templaterecipes.get(variable).cloned().unwrap_or_default();
                        label for=(format!("f-r-{variable}")) { "Recipes for " code { (variable) } }
                        select id=(format!("f-r-{variable}")) name=(format!("recipes.{variable}")) multiple size="4" {
                            @for recipe in &choices.recipes {
                                option value=(recipe.id) selected[selected.contains(&recipe.id)] { (recipe.name) " " (recipe.version) }
                            }
                        }
                    }
            }
        }
    }

    fn template_id(&self) -> Option<&str> {
        Some(self.template.as_str()).filter(|t| !t.is_empty())
    }

    fn pre_form(&self, choices: &Choices, page: &str) -> Option<Markup> {
        if choices.template.is_some() {
            return None;
        }
        Some(html! {
            form method="get" action=(page) class="stack wide" {
                label for="f-template" { "Template" }
                select id="f-template" name="template" required {
                    @for template in &choices.templates {
                        option value=(template.id) { (template.name) " " (template.version) " (" (template.varrecipes.join(", ")) ")" }
                    }
                }
                p class="hint" { "An application is a template and the recipes to run for each of its recipe variables." }
                button type="submit" class="primary" { "Next: choose recipes" }
            }
        })
    }

    fn body(fields: &Fields, _reading: Reading) -> Result<Value, PageError> {
        let mut templaterecipes = BTreeMap::new();
        for (name, value) in fields {
            if let Some(variable) = name.strip_prefix("recipes.") {
                templaterecipes.insert(variable.to_string(), value.all());
            }
        }
        Ok(merge(
            common_body(fields),
            json!({
                "version": text(fields, "version").trim(),
                "template": text(fields, "template"),
                "templaterecipes": templaterecipes,
            }),
        ))
    }
}
