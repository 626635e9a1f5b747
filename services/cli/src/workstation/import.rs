//! `catalog import DIR --ns NS [--public] [--dry-run]` and `catalog lint DIR`.

use super::catalog::{self, ItemFile, ItemKind, Problem};
use super::commands::CatalogCommand;
use super::error::{CliResult, failed, usage};
use super::items::Shown;
use super::output::{self, Format};
use super::resolve;
use super::session::Session;
use goterra_client::deploy::{Application, Endpoint, Recipe, Template};
use goterra_client::{Client, NamespaceId};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// What happened to one item.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ReportLine {
    pub kind: String,
    /// `dir/version` (`dir` for endpoints).
    pub item: String,
    /// `created`, `updated`, `unchanged`, `skipped`, `failed` (import); `ok`, `error` (lint).
    pub result: String,
    /// The id on the server, when there is one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Why an item was skipped or failed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

fn line(kind: ItemKind, item: String, result: &str, id: String, reason: String) -> ReportLine {
    ReportLine {
        kind: kind.to_string(),
        item,
        result: result.to_string(),
        id,
        reason,
    }
}

fn skipped(problem: Problem, result: &str) -> ReportLine {
    line(problem.kind, problem.key, result, String::new(), problem.reason)
}

fn print_report(format: Format, report: &[ReportLine]) -> CliResult<()> {
    output::print(format, &report, || {
        let mut table = output::table(&["Kind", "Item", "Result", "Id", "Reason"]);
        for entry in report {
            table.add_row(vec![
                entry.kind.clone(),
                entry.item.clone(),
                entry.result.clone(),
                entry.id.clone(),
                entry.reason.clone(),
            ]);
        }
        table
    })
}

/// Fails the command when some items could not be used, after the report was printed.
fn verdict(report: &[ReportLine], bad: &[&str]) -> CliResult<()> {
    let count = report
        .iter()
        .filter(|entry| bad.contains(&entry.result.as_str()))
        .count();
    if count == 0 {
        Ok(())
    } else {
        Err(failed(format!("{count} item(s) could not be used: see the report")))
    }
}

/// An item already in the namespace: its id and stored fields.
struct Stored {
    id: String,
    fields: Value,
}

async fn stored_of<K: Shown>(
    client: &Client,
    ns: &NamespaceId,
    into: &mut BTreeMap<(ItemKind, String), Stored>,
) -> CliResult<()> {
    for item in client.list_items::<K>(ns, false).await? {
        let (remote, version) = item.catalogue_key();
        if remote.is_empty() {
            continue;
        }
        let key = if version.is_empty() {
            remote.to_string()
        } else {
            format!("{remote}/{version}")
        };
        let fields = serde_json::to_value(&item).map_err(|err| failed(err.to_string()))?;
        into.insert(
            (K::KIND, key),
            Stored {
                id: item.id().to_string(),
                fields,
            },
        );
    }
    Ok(())
}

pub async fn run(session: &Session, command: CatalogCommand) -> CliResult<()> {
    match command {
        CatalogCommand::Lint { dir, out } => lint(&dir, out.output),
        CatalogCommand::Import {
            dir,
            ns,
            public,
            dry_run,
            out,
        } => {
            let (items, problems) = catalog::read_directory(&dir).map_err(usage)?;
            let client = session.client().await?;
            let ns = resolve::namespace_id(&client, &ns).await?;
            let report = import(&client, &ns, items, problems, public, dry_run).await?;
            print_report(out.output, &report)?;
            verdict(&report, &["skipped", "failed"])
        }
    }
}

fn lint(dir: &Path, format: Format) -> CliResult<()> {
    let (items, problems) = catalog::read_directory(dir).map_err(usage)?;
    let none = |_: ItemKind, _: &str| false;
    let mut report: Vec<ReportLine> = problems.into_iter().map(|p| skipped(p, "error")).collect();
    let broken = catalog::unresolvable(&items, &none);
    let usable: Vec<ItemFile> = items
        .into_iter()
        .filter(|item| !broken.iter().any(|b| b.kind == item.kind && b.key == item.key()))
        .collect();
    report.extend(broken.into_iter().map(|p| skipped(p, "error")));
    let (ordered, cycles) = catalog::plan(usable, &none);
    report.extend(cycles.into_iter().map(|p| skipped(p, "error")));
    report.extend(
        ordered
            .iter()
            .map(|item| line(item.kind, item.key(), "ok", String::new(), String::new())),
    );
    print_report(format, &report)?;
    verdict(&report, &["error"])
}

/// Imports `items` in dependency order; see [`CatalogCommand::Import`].
async fn import(
    client: &Client,
    ns: &NamespaceId,
    items: Vec<ItemFile>,
    problems: Vec<Problem>,
    public: bool,
    dry_run: bool,
) -> CliResult<Vec<ReportLine>> {
    let mut stored = BTreeMap::new();
    stored_of::<Recipe>(client, ns, &mut stored).await?;
    stored_of::<Template>(client, ns, &mut stored).await?;
    stored_of::<Endpoint>(client, ns, &mut stored).await?;
    stored_of::<Application>(client, ns, &mut stored).await?;
    let mut report: Vec<ReportLine> = problems.into_iter().map(|p| skipped(p, "skipped")).collect();

    let known = |kind: ItemKind, key: &str| stored.contains_key(&(kind, key.to_string()));
    let broken = catalog::unresolvable(&items, &known);
    let usable: Vec<ItemFile> = items
        .into_iter()
        .filter(|item| !broken.iter().any(|b| b.kind == item.kind && b.key == item.key()))
        .collect();
    report.extend(broken.into_iter().map(|p| skipped(p, "skipped")));
    let (ordered, cycles) = catalog::plan(usable, &known);
    report.extend(cycles.into_iter().map(|p| skipped(p, "skipped")));

    // Ids by (kind, dir/version): what the namespace has, then what this import creates.
    let mut ids: BTreeMap<(ItemKind, String), String> = stored
        .iter()
        .map(|(key, item)| (key.clone(), item.id.clone()))
        .collect();
    for item in ordered {
        let key = item.key();
        let resolved = catalog::resolved_body(&item, &|kind, reference| ids.get(&(kind, reference.0.clone())).cloned());
        let mut body = match resolved {
            Ok(body) => body,
            Err(reason) => {
                report.push(line(item.kind, key, "skipped", String::new(), reason));
                continue;
            }
        };
        if public {
            catalog::set_public(&mut body, true);
        }
        let existing = stored.get(&(item.kind, key.clone()));
        let entry = match existing {
            Some(existing) if catalog::same_fields(&body, &existing.fields) => {
                line(item.kind, key.clone(), "unchanged", existing.id.clone(), String::new())
            }
            Some(existing) => {
                let outcome = if dry_run {
                    Ok(())
                } else {
                    update(client, ns, item.kind, &existing.id, &body).await
                };
                match outcome {
                    Ok(()) => line(item.kind, key.clone(), "updated", existing.id.clone(), String::new()),
                    Err(reason) => line(item.kind, key.clone(), "failed", existing.id.clone(), reason),
                }
            }
            None => {
                let outcome = if dry_run {
                    Ok(String::new())
                } else {
                    create(client, ns, item.kind, &body).await
                };
                match outcome {
                    Ok(id) => line(item.kind, key.clone(), "created", id, String::new()),
                    Err(reason) => line(item.kind, key.clone(), "failed", String::new(), reason),
                }
            }
        };
        if entry.result != "failed" {
            // In a dry run new items have no id yet; their dependents still resolve.
            let id = if entry.id.is_empty() {
                format!("(new {key})")
            } else {
                entry.id.clone()
            };
            ids.insert((item.kind, key), id);
        }
        report.push(entry);
    }
    Ok(report)
}

async fn create(
    client: &Client,
    ns: &NamespaceId,
    kind: ItemKind,
    body: &serde_json::Map<String, Value>,
) -> Result<String, String> {
    let created = match kind {
        ItemKind::Recipe => client.create_item::<Recipe>(ns, body).await.map(|id| id.to_string()),
        ItemKind::Template => client.create_item::<Template>(ns, body).await.map(|id| id.to_string()),
        ItemKind::Endpoint => client.create_item::<Endpoint>(ns, body).await.map(|id| id.to_string()),
        ItemKind::App => client
            .create_item::<Application>(ns, body)
            .await
            .map(|id| id.to_string()),
    };
    created.map_err(|err| err.to_string())
}

async fn update(
    client: &Client,
    ns: &NamespaceId,
    kind: ItemKind,
    id: &str,
    body: &serde_json::Map<String, Value>,
) -> Result<(), String> {
    let bad_id = |_| format!("invalid id {id:?}");
    let updated = match kind {
        ItemKind::Recipe => client
            .update_item::<Recipe>(ns, &id.parse().map_err(bad_id)?, body)
            .await
            .map(drop),
        ItemKind::Template => client
            .update_item::<Template>(ns, &id.parse().map_err(bad_id)?, body)
            .await
            .map(drop),
        ItemKind::Endpoint => client
            .update_item::<Endpoint>(ns, &id.parse().map_err(bad_id)?, body)
            .await
            .map(drop),
        ItemKind::App => client
            .update_item::<Application>(ns, &id.parse().map_err(bad_id)?, body)
            .await
            .map(drop),
    };
    updated.map_err(|err| err.to_string())
}
