//! Usage: what runs now (endpoint → run → resource) and cost per namespace, from the
//! accounting API. While accounting has no data (or no such route yet) the pages say so.

use super::SignedIn;
use crate::Ui;
use crate::error::PageError;
use crate::layout::{Section, url};
use axum::Router;
use axum::extract::Path;
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use serde_json::Value;

pub fn routes() -> Router<Ui> {
    Router::new()
        .route(&url("/usage"), get(platform))
        .route(&url("/ns/{ns}/usage"), get(namespace))
}

async fn platform(me: SignedIn) -> Result<Response, PageError> {
    if !me.session.admin {
        return Err(PageError::Forbidden("usage of the whole platform: admins only".into()));
    }
    let resources = me.api().running_resources(None).await?;
    let body = html! {
        h1 { "Usage" }
        h2 { "Running now" }
        (table_of(resources.as_ref()))
    };
    Ok(me.render(Section::Usage, "Usage", body))
}

async fn namespace(me: SignedIn, Path(ns): Path<String>) -> Result<Response, PageError> {
    let api = me.api();
    // The namespace first: who may not see it gets deploy's answer, not an empty page.
    let namespace = api.namespace(&ns).await?;
    let (resources, totals) = tokio::join!(api.running_resources(Some(&ns)), api.namespace_usage(&ns));
    let body = html! {
        nav class="crumbs" aria-label="Breadcrumb" { a href=(url(&format!("/ns/{ns}"))) { "namespace " (namespace.name) } }
        h1 { "Usage of " (namespace.name) }
        h2 { "Running now" }
        (table_of(resources?.as_ref()))
        h2 { "Cost" }
        (summary(totals?.as_ref()))
    };
    Ok(me.render(Section::Usage, "Usage", body))
}

/// The namespace's totals, or the empty state.
pub fn summary(answer: Option<&Value>) -> Markup {
    table_of(answer)
}

/// The first list in an accounting answer, as a table with a column per field.
fn table_of(answer: Option<&Value>) -> Markup {
    let rows: Vec<&serde_json::Map<String, Value>> = answer
        .and_then(first_list)
        .map(|list| list.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default();
    if rows.is_empty() {
        return html! { p class="empty" { "No accounting data yet." } };
    }
    let mut columns: Vec<&str> = Vec::new();
    for row in &rows {
        for key in row.keys() {
            if !columns.contains(&key.as_str()) {
                columns.push(key);
            }
        }
    }
    html! {
        table {
            thead { tr { @for column in &columns { th { (column) } } } }
            tbody {
                @for row in &rows {
                    tr { @for column in &columns { td { (row.get(*column).map(cell).unwrap_or_default()) } } }
                }
            }
        }
    }
}

fn first_list(value: &Value) -> Option<&Vec<Value>> {
    match value {
        Value::Array(list) => Some(list),
        Value::Object(object) => object.values().find_map(Value::as_array),
        _ => None,
    }
}

fn cell(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
