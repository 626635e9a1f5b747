//! Namespaces: the list, creation, and a namespace's dashboard (people, catalogue, runs,
//! usage) with its management forms (owners and members, freeze, delete).

use super::{Button, SignedIn};
use crate::Ui;
use crate::error::{PageError, form_refusal};
use crate::layout::{self, Section, csrf_field, url};
use crate::model::{Application, Endpoint, Namespace, Recipe, Template};
use crate::session::{Posted, Session};
use axum::Router;
use axum::extract::{Path, Query};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

pub fn routes() -> Router<Ui> {
    Router::new()
        .route(&url("/ns"), get(list).post(create))
        .route(&url("/ns/{ns}"), get(dashboard))
        .route(&url("/ns/{ns}/people"), post(people))
        .route(&url("/ns/{ns}/freeze"), post(freeze))
        .route(&url("/ns/{ns}/delete"), post(delete))
}

#[derive(Deserialize)]
struct ListQuery {
    all: Option<u8>,
}

async fn list(me: SignedIn, Query(query): Query<ListQuery>) -> Result<Response, PageError> {
    let SignedIn { ui, session, .. } = &me;
    let all = session.admin && query.all == Some(1);
    let namespaces = me.api().namespaces(all).await?;
    let body = html! {
        div class="heading" {
            h1 { "Namespaces" }
            @if session.admin {
                nav class="tabs" aria-label="Which namespaces" {
                    a href=(url("/ns")) aria-current=[(!all).then_some("page")] { "Mine" }
                    a href=(url("/ns?all=1")) aria-current=[all.then_some("page")] { "All" }
                }
            }
        }
        @if namespaces.is_empty() {
            p class="empty" { "You are not in any namespace yet." }
        } @else {
            ul class="cards" {
                @for ns in &namespaces {
                    li class="card" {
                        h2 { a href=(url(&format!("/ns/{}", ns.id))) { (ns.name) } }
                        p class="muted" { "Owners: " (ns.owners.join(", ")) }
                        p class="muted" { (ns.members.len()) " member(s)" @if ns.freeze { " · " span class="tag" { "frozen" } } }
                    }
                }
            }
        }
        @if session.admin || ui.settings.allow_user_create_ns {
            (create_form(session, "", None))
        }
    };
    Ok(me.render(Section::Namespaces, "Namespaces", body))
}

fn create_form(session: &Session, name: &str, error: Option<&str>) -> Markup {
    html! {
        section class="card narrow" {
            h2 { "New namespace" }
            (layout::form_error(error))
            form method="post" action=(url("/ns")) class="inline" {
                (csrf_field(session))
                label for="ns-name" { "Name" }
                input id="ns-name" name="name" required value=(name) pattern="[A-Za-z0-9_.\\-]+" title="letters, digits, . _ -";
                button type="submit" class="primary" { "Create" }
            }
        }
    }
}

#[derive(Deserialize)]
struct NewNamespace {
    #[serde(default)]
    name: String,
}

async fn create(posted: Posted<NewNamespace>) -> Result<Response, PageError> {
    let Posted { me, form } = posted;
    match me.api().create_namespace(form.name.trim()).await {
        Ok(id) => Ok(me.done(&format!("/ns/{id}"), "Namespace created.")),
        Err(failure) => {
            let (status, message) = form_refusal(failure)?;
            let body = create_form(&me.session, &form.name, Some(&message));
            Ok(me.render_status(Section::Namespaces, status, "New namespace", body))
        }
    }
}

async fn dashboard(me: SignedIn, Path(id): Path<String>) -> Result<Response, PageError> {
    let session = &me.session;
    let api = me.api();
    let (ns, endpoints, recipes, templates, apps, runs, usage) = tokio::join!(
        api.namespace(&id),
        api.catalogue::<Endpoint>(&id),
        api.catalogue::<Recipe>(&id),
        api.catalogue::<Template>(&id),
        api.catalogue::<Application>(&id),
        api.namespace_runs(&id, true, &[], 0, 10),
        api.namespace_usage(&id),
    );
    let ns = ns?;
    let (endpoints, recipes, templates, apps) = (endpoints?, recipes?, templates?, apps?);
    let runs = runs.unwrap_or_default();
    let is_owner = session.admin || ns.owners.contains(&session.uid);
    let base = format!("/ns/{}", ns.id);
    let body = html! {
        div class="heading" {
            h1 { "Namespace " (ns.name) @if ns.freeze { " " span class="tag" { "frozen" } } }
            a class="button" href=(url(&format!("{base}/run"))) { "Runs of this namespace" }
        }
        div class="grid" {
            section class="card" {
                h2 { "Applications" }
                @if apps.is_empty() { p class="empty" { "No application yet." } }
                ul class="plain" {
                    @for app in &apps {
                        li {
                            a href=(url(&format!("{base}/app/{}", app.id))) { (app.name) }
                            " "
                            a class="button small primary" href=(url(&format!("{base}/app/{}/run", app.id))) { "Run" }
                        }
                    }
                }
                p { a href=(url(&format!("{base}/app"))) { "All applications" } " · " a href=(url(&format!("{base}/app/new"))) { "New application" } }
            }
            (catalogue_card(&base, "Endpoints", "endpoint", endpoints.iter().map(|e| (e.id.as_str(), e.name.as_str()))))
            (catalogue_card(&base, "Recipes", "recipe", recipes.iter().map(|e| (e.id.as_str(), e.name.as_str()))))
            (catalogue_card(&base, "Templates", "template", templates.iter().map(|e| (e.id.as_str(), e.name.as_str()))))
        }
        section class="card" {
            h2 { "Recent runs" }
            (super::runs::run_table(&runs, true))
        }
        section class="card" {
            h2 { "People" }
            (people_list(session, &ns, "owner", &ns.owners, is_owner))
            (people_list(session, &ns, "member", &ns.members, is_owner))
            @if is_owner {
                form method="post" action=(url(&format!("{base}/people"))) class="inline" {
                    (csrf_field(session))
                    input type="hidden" name="action" value="add";
                    label for="person" { "User id" }
                    input id="person" name="uid" required;
                    label for="role" { "as" }
                    select id="role" name="role" {
                        option value="member" { "member" }
                        option value="owner" { "owner" }
                    }
                    button type="submit" { "Add" }
                }
            }
        }
        section class="card" {
            h2 { "Usage and cost" }
            (super::usage::summary(usage.ok().flatten().as_ref()))
            p { a href=(url(&format!("{base}/usage"))) { "Usage of this namespace" } }
        }
        @if is_owner {
            section class="card danger-zone" {
                h2 { "Manage" }
                form method="post" action=(url(&format!("{base}/freeze"))) class="inline" {
                    (csrf_field(session))
                    input type="hidden" name="freeze" value=(if ns.freeze { "0" } else { "1" });
                    button type="submit" { @if ns.freeze { "Unfreeze" } @else { "Freeze (no new runs)" } }
                }
                form method="post" action=(url(&format!("{base}/delete"))) class="inline" data-confirm=(format!("Delete namespace {}?", ns.name)) {
                    (csrf_field(session))
                    button type="submit" class="danger" { "Delete namespace" }
                }
            }
        }
    };
    Ok(me.render(Section::Namespaces, &ns.name, body))
}

fn catalogue_card<'a>(
    base: &str,
    title: &str,
    segment: &str,
    items: impl Iterator<Item = (&'a str, &'a str)>,
) -> Markup {
    let items: Vec<_> = items.collect();
    html! {
        section class="card" {
            h2 { (title) " " span class="count" { (items.len()) } }
            ul class="plain" {
                @for (id, name) in items.iter().take(8) {
                    li { a href=(url(&format!("{base}/{segment}/{id}"))) { (name) } }
                }
            }
            p { a href=(url(&format!("{base}/{segment}"))) { "All" } " · " a href=(url(&format!("{base}/{segment}/new"))) { "New" } }
        }
    }
}

fn people_list(session: &Session, ns: &Namespace, role: &str, uids: &[String], editable: bool) -> Markup {
    html! {
        h3 { (role) "s" }
        @if uids.is_empty() { p class="empty" { "None." } }
        ul class="plain" {
            @for uid in uids {
                li {
                    (uid)
                    @if editable {
                        form method="post" action=(url(&format!("/ns/{}/people", ns.id))) class="inline" {
                            (csrf_field(session))
                            input type="hidden" name="action" value="remove";
                            input type="hidden" name="role" value=(role);
                            input type="hidden" name="uid" value=(uid);
                            button type="submit" class="small" aria-label=(format!("Remove {role} {uid}")) { "Remove" }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct PeopleForm {
    action: String,
    role: String,
    uid: String,
}

async fn people(Path(id): Path<String>, posted: Posted<PeopleForm>) -> Result<Response, PageError> {
    let Posted { me, form } = posted;
    let api = me.api();
    let mut ns = api.namespace(&id).await?;
    let uid = form.uid.trim().to_string();
    if uid.is_empty() {
        return Err(PageError::BadRequest("enter a user id".into()));
    }
    let list = match form.role.as_str() {
        "owner" => &mut ns.owners,
        "member" => &mut ns.members,
        _ => return Err(PageError::BadRequest("role: owner or member".into())),
    };
    match form.action.as_str() {
        "add" if !list.contains(&uid) => list.push(uid.clone()),
        "add" => {}
        "remove" => list.retain(|existing| existing != &uid),
        _ => return Err(PageError::BadRequest("action: add or remove".into())),
    }
    api.update_namespace(&ns).await?;
    let verb = if form.action == "add" { "added" } else { "removed" };
    Ok(me.done(&format!("/ns/{id}"), &format!("{} {uid} {verb}.", form.role)))
}

#[derive(Deserialize)]
struct FreezeForm {
    freeze: String,
}

async fn freeze(Path(id): Path<String>, posted: Posted<FreezeForm>) -> Result<Response, PageError> {
    let Posted { me, form } = posted;
    let api = me.api();
    let mut ns = api.namespace(&id).await?;
    ns.freeze = form.freeze == "1";
    api.update_namespace(&ns).await?;
    let message = if ns.freeze {
        "Namespace frozen."
    } else {
        "Namespace unfrozen."
    };
    Ok(me.done(&format!("/ns/{id}"), message))
}

async fn delete(Path(id): Path<String>, button: Button) -> Result<Response, PageError> {
    button.me.api().delete_namespace(&id).await?;
    Ok(button.me.done("/ns", "Namespace deleted."))
}
