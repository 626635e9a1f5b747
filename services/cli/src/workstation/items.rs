//! `recipe|template|app|endpoint list|show|create|update|delete`, `endpoint secret ...` and
//! `endpoint defaults`.

use super::catalog::{self, ItemKind, Reference};
use super::commands::{EndpointCommand, ItemCommand, SecretCommand};
use super::error::{CliResult, failed, usage};
use super::output;
use super::prompt;
use super::resolve;
use super::session::Session;
use goterra_client::deploy::{Application, CatalogueItem, Endpoint, EndpointDefaults, Recipe, SecretRequest, Template};
use goterra_client::{Client, NamespaceId, Sensitive};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// How a kind is shown and read from files.
pub trait Shown: CatalogueItem + Clone {
    const KIND: ItemKind;
    const LABEL: &'static str;
    fn header() -> Vec<&'static str>;
    fn row(&self) -> Vec<String>;
}

impl Shown for Recipe {
    const KIND: ItemKind = ItemKind::Recipe;
    const LABEL: &'static str = "recipe";
    fn header() -> Vec<&'static str> {
        vec!["ID", "Name", "Description", "Public", "Namespace", "Parent", "Base"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.description.clone(),
            output::yes_no(self.public),
            self.namespace.clone(),
            self.parent.clone(),
            output::joined(&self.base),
        ]
    }
}

impl Shown for Template {
    const KIND: ItemKind = ItemKind::Template;
    const LABEL: &'static str = "template";
    fn header() -> Vec<&'static str> {
        vec!["ID", "Name", "Description", "Public", "Namespace", "Kinds"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.description.clone(),
            output::yes_no(self.public),
            self.namespace.clone(),
            self.data.keys().cloned().collect::<Vec<_>>().join(", "),
        ]
    }
}

impl Shown for Application {
    const KIND: ItemKind = ItemKind::App;
    const LABEL: &'static str = "application";
    fn header() -> Vec<&'static str> {
        vec!["ID", "Name", "Description", "Public", "Namespace", "Template"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.description.clone(),
            output::yes_no(self.public),
            self.namespace.clone(),
            self.template.clone(),
        ]
    }
}

impl Shown for Endpoint {
    const KIND: ItemKind = ItemKind::Endpoint;
    const LABEL: &'static str = "endpoint";
    fn header() -> Vec<&'static str> {
        vec!["ID", "Name", "Kind", "Public", "Namespace"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.kind.clone(),
            output::yes_no(self.public),
            self.namespace.clone(),
        ]
    }
}

fn items_table<K: Shown>(items: &[K]) -> comfy_table::Table {
    let mut table = output::table(&K::header());
    for item in items {
        table.add_row(item.row());
    }
    table
}

/// Every field of one object, as YAML would show them, in a two-column table.
fn item_details<K: Shown>(item: &K) -> comfy_table::Table {
    let value = serde_json::to_value(item).unwrap_or(Value::Null);
    let mut rows = Vec::new();
    if let Value::Object(fields) = value {
        for (name, field) in fields {
            let text = match field {
                Value::String(text) => text,
                Value::Null => String::new(),
                other => serde_yaml::to_string(&other).unwrap_or_default().trim_end().to_string(),
            };
            rows.push((name, text));
        }
    }
    let mut table = output::table(&["Field", "Value"]);
    for (name, text) in rows {
        table.add_row(vec![name, text]);
    }
    table
}

/// Looks a `name/version` reference up among `ns`'s and the public objects; anything else is
/// taken as an id.
pub async fn resolve_reference<K: Shown>(
    client: &Client,
    ns: &NamespaceId,
    reference: &Reference,
) -> CliResult<String> {
    let Some((dir, version)) = reference.split() else {
        return Ok(reference.0.clone());
    };
    let mut candidates = client.list_items::<K>(ns, true).await?;
    candidates.extend(client.list_public_items::<K>(true).await?);
    candidates
        .iter()
        .find(|item| item.catalogue_key() == (dir, version))
        .map(|item| item.id().to_string())
        .ok_or_else(|| {
            failed(format!(
                "broken reference: no {} {} in the namespace",
                K::LABEL,
                reference.0
            ))
        })
}

/// The body of a `create`/`update` file, references resolved against the server.
async fn body_from_file<K: Shown>(client: &Client, ns: &NamespaceId, path: &Path) -> CliResult<Map<String, Value>> {
    let item = catalog::read_item_file(K::KIND, path).map_err(usage)?;
    let mut ids: BTreeMap<(ItemKind, String), String> = BTreeMap::new();
    if let Some(parent) = &item.references.parent {
        ids.insert(
            (ItemKind::Recipe, parent.0.clone()),
            resolve_reference::<Recipe>(client, ns, parent).await?,
        );
    }
    if let Some(template) = &item.references.template {
        ids.insert(
            (ItemKind::Template, template.0.clone()),
            resolve_reference::<Template>(client, ns, template).await?,
        );
    }
    for list in item.references.recipes.values() {
        for recipe in list {
            ids.insert(
                (ItemKind::Recipe, recipe.0.clone()),
                resolve_reference::<Recipe>(client, ns, recipe).await?,
            );
        }
    }
    catalog::resolved_body(&item, &|kind, reference| ids.get(&(kind, reference.0.clone())).cloned()).map_err(failed)
}

pub async fn run<K: Shown>(session: &Session, command: ItemCommand) -> CliResult<()> {
    match command {
        ItemCommand::List { ns, out } => {
            let items: Vec<K> = session
                .run(|client| {
                    let ns = ns.clone();
                    async move {
                        match ns {
                            Some(ns) => {
                                let id = resolve::namespace_id(&client, &ns).await?;
                                Ok(client.list_items::<K>(&id, true).await?)
                            }
                            None => Ok(client.list_public_items::<K>(true).await?),
                        }
                    }
                })
                .await?;
            output::print(out.output, &items, || items_table(&items))
        }
        ItemCommand::Show { item, ns, out } => {
            let found: K = session
                .run(|client| {
                    let (item, ns) = (item.clone(), ns.clone());
                    async move {
                        let ns = resolve::namespace_id(&client, &ns).await?;
                        let id = resolve::item_id::<K>(&client, &ns, &item, K::LABEL).await?;
                        Ok(client.get_item::<K>(&ns, &id).await?)
                    }
                })
                .await?;
            output::print(out.output, &found, || item_details(&found))
        }
        ItemCommand::Create { file, ns, public } => {
            let id = session
                .run(|client| {
                    let (file, ns) = (file.clone(), ns.clone());
                    async move {
                        let ns = resolve::namespace_id(&client, &ns).await?;
                        let mut body = body_from_file::<K>(&client, &ns, &file).await?;
                        if public {
                            catalog::set_public(&mut body, true);
                        }
                        Ok(client.create_item::<K>(&ns, &body).await?)
                    }
                })
                .await?;
            println!("{} created: {id}", capitalized(K::LABEL));
            Ok(())
        }
        ItemCommand::Update { item, file, ns } => {
            let updated: K = session
                .run(|client| {
                    let (item, file, ns) = (item.clone(), file.clone(), ns.clone());
                    async move {
                        let ns = resolve::namespace_id(&client, &ns).await?;
                        let id = resolve::item_id::<K>(&client, &ns, &item, K::LABEL).await?;
                        let body = body_from_file::<K>(&client, &ns, &file).await?;
                        Ok(client.update_item::<K>(&ns, &id, &body).await?)
                    }
                })
                .await?;
            println!("{} {} updated", capitalized(K::LABEL), updated.id());
            Ok(())
        }
        ItemCommand::Delete { item, ns, yes } => {
            prompt::confirm(&format!("Delete {} {item}?", K::LABEL), yes)?;
            session
                .run(|client| {
                    let (item, ns) = (item.clone(), ns.clone());
                    async move {
                        let ns = resolve::namespace_id(&client, &ns).await?;
                        let id = resolve::item_id::<K>(&client, &ns, &item, K::LABEL).await?;
                        Ok(client.delete_item::<K>(&ns, &id).await?)
                    }
                })
                .await?;
            println!("{} {item} deleted", capitalized(K::LABEL));
            Ok(())
        }
    }
}

fn capitalized(label: &str) -> String {
    let mut chars = label.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `NAME=VALUE[,VALUE...]` pairs into a defaults map.
fn parse_defaults(pairs: &[String]) -> CliResult<BTreeMap<String, Vec<String>>> {
    let mut defaults = BTreeMap::new();
    for pair in pairs {
        let (name, values) = pair
            .split_once('=')
            .filter(|(name, _)| !name.trim().is_empty())
            .ok_or_else(|| usage(format!("--set {pair:?}: expected NAME=VALUE[,VALUE...]")))?;
        defaults.insert(
            name.trim().to_string(),
            values
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect(),
        );
    }
    Ok(defaults)
}

pub async fn endpoint(session: &Session, command: EndpointCommand) -> CliResult<()> {
    match command {
        EndpointCommand::Item(command) => run::<Endpoint>(session, command).await,
        EndpointCommand::Defaults { endpoint, ns, set, out } => {
            let wanted = if set.is_empty() {
                None
            } else {
                Some(parse_defaults(&set)?)
            };
            let defaults = session
                .run(|client| {
                    let (endpoint, ns, wanted) = (endpoint.clone(), ns.clone(), wanted.clone());
                    async move {
                        let ns = resolve::namespace_id(&client, &ns).await?;
                        let id = resolve::item_id::<Endpoint>(&client, &ns, &endpoint, "endpoint").await?;
                        Ok(match wanted {
                            Some(defaults) => {
                                client
                                    .set_endpoint_defaults(&ns, &id, &EndpointDefaults { defaults })
                                    .await?
                            }
                            None => client.endpoint_defaults(&ns, &id).await?,
                        })
                    }
                })
                .await?;
            output::print(out.output, &defaults, || {
                let mut table = output::table(&["Input", "Values"]);
                for (name, values) in &defaults.defaults {
                    table.add_row(vec![name.clone(), output::joined(values)]);
                }
                table
            })
        }
        EndpointCommand::Secret(command) => secret(session, command).await,
    }
}

async fn secret(session: &Session, command: SecretCommand) -> CliResult<()> {
    match command {
        SecretCommand::Set {
            endpoint,
            ns,
            user,
            password_stdin,
        } => {
            let password = Sensitive::new(if password_stdin {
                prompt::stdin_line("password")?
            } else {
                prompt::hidden("Cloud password")?
            });
            let request = SecretRequest { name: user, password };
            session
                .run(|client| {
                    let (endpoint, ns, request) = (endpoint.clone(), ns.clone(), request.clone());
                    async move {
                        let ns = resolve::namespace_id(&client, &ns).await?;
                        let id = resolve::item_id::<Endpoint>(&client, &ns, &endpoint, "endpoint").await?;
                        Ok(client.set_endpoint_secret(&ns, &id, &request).await?)
                    }
                })
                .await?;
            println!("Secret for endpoint {endpoint} stored");
            Ok(())
        }
        SecretCommand::Show { endpoint, ns, out } => {
            let status = session
                .run(|client| {
                    let (endpoint, ns) = (endpoint.clone(), ns.clone());
                    async move {
                        let ns = resolve::namespace_id(&client, &ns).await?;
                        let id = resolve::item_id::<Endpoint>(&client, &ns, &endpoint, "endpoint").await?;
                        Ok(client.endpoint_secret(&ns, &id).await?)
                    }
                })
                .await?;
            output::print(out.output, &status, || {
                output::details(vec![
                    ("user", status.name.clone()),
                    ("password", "stored (never shown)".into()),
                ])
            })
        }
        SecretCommand::Delete { endpoint, ns } => {
            session
                .run(|client| {
                    let (endpoint, ns) = (endpoint.clone(), ns.clone());
                    async move {
                        let ns = resolve::namespace_id(&client, &ns).await?;
                        let id = resolve::item_id::<Endpoint>(&client, &ns, &endpoint, "endpoint").await?;
                        Ok(client.delete_endpoint_secret(&ns, &id).await?)
                    }
                })
                .await?;
            println!("Secret for endpoint {endpoint} deleted");
            Ok(())
        }
    }
}
