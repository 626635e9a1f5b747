//! User administration (admins): list, create (the API key is shown once), edit, promote and
//! demote, delete. The auth API decides who may: a plain user gets its 403.

use super::{Button, SignedIn};
use crate::Ui;
use crate::error::{PageError, form_refusal};
use crate::layout::{self, Section, csrf_field, url};
use crate::model::{RegisterRequest, UpdateUserRequest, User};
use crate::session::{Posted, Session};
use axum::Router;
use axum::extract::{Path, Query};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;

const PAGE_SIZE: u64 = 50;

pub fn routes() -> Router<Ui> {
    Router::new()
        .route(&url("/users"), get(list).post(create))
        .route(&url("/users/{uid}"), get(edit).post(update))
        .route(&url("/users/{uid}/delete"), post(delete))
}

#[derive(Deserialize)]
struct ListQuery {
    page: Option<u64>,
}

async fn list(me: SignedIn, Query(query): Query<ListQuery>) -> Result<Response, PageError> {
    let page = query.page.unwrap_or(0);
    let users = me.api().users(page * PAGE_SIZE, PAGE_SIZE).await?;
    let body = list_body(&me.session, &users, page, None, None);
    Ok(me.render(Section::Users, "Users", body))
}

fn list_body(
    session: &Session,
    users: &[User],
    page: u64,
    created: Option<(&str, &str)>,
    error: Option<&str>,
) -> Markup {
    html! {
        h1 { "Users" }
        @if let Some((uid, key)) = created {
            section class="card secret-once" role="status" {
                h2 { "User " (uid) " created" }
                p { "Their API key, shown this once (only its hash is kept):" }
                output class="mono" { (key) }
            }
        }
        table {
            thead { tr { th { "User" } th { "Email" } th { "Role" } th { "Kind" } } }
            tbody {
                @for user in users {
                    tr {
                        td { a href=(url(&format!("/users/{}", user.uid))) { (user.uid) } }
                        td { (user.email) }
                        td { @if user.admin { span class="tag public" { "admin" } } @else { "user" } @if user.super_user { " " span class="tag" { "super" } } }
                        td { @if user.kind.is_empty() { "local" } @else { (user.kind) } }
                    }
                }
            }
        }
        nav class="pager" aria-label="Pages" {
            @if page > 0 { a href=(url(&format!("/users?page={}", page - 1))) rel="prev" { "← Previous" } }
            span { "Page " (page + 1) }
            @if u64::try_from(users.len()).unwrap_or(0) == PAGE_SIZE { a href=(url(&format!("/users?page={}", page + 1))) rel="next" { "Next →" } }
        }
        section class="card narrow" {
            h2 { "New user" }
            (layout::form_error(error))
            form method="post" action=(url("/users")) class="stack" {
                (csrf_field(session))
                label for="u-uid" { "User id" }
                input id="u-uid" name="uid" required autocomplete="off";
                label for="u-email" { "Email" }
                input id="u-email" name="email" type="email";
                label for="u-password" { "Password" }
                input id="u-password" name="password" type="password" required autocomplete="new-password";
                div class="check" {
                    input id="u-admin" name="admin" type="checkbox" value="1";
                    label for="u-admin" { "Administrator" }
                }
                button type="submit" class="primary" { "Create user" }
            }
        }
    }
}

#[derive(Deserialize)]
struct NewUserForm {
    uid: String,
    #[serde(default)]
    email: String,
    password: String,
    #[serde(default)]
    admin: String,
}

async fn create(posted: Posted<NewUserForm>) -> Result<Response, PageError> {
    let Posted { me, form } = posted;
    let api = me.api();
    let uid = form.uid.trim().to_string();
    let result = api
        .register(&RegisterRequest {
            uid: uid.clone(),
            password: form.password,
            email: form.email.trim().to_string(),
            pub_key: String::new(),
            kind: None,
            admin: Some(form.admin == "1"),
            super_user: None,
        })
        .await;
    let users = api.users(0, PAGE_SIZE).await?;
    match result {
        Ok(key) => {
            let body = list_body(&me.session, &users, 0, Some((&uid, key.expose())), None);
            Ok(me.render(Section::Users, "Users", body))
        }
        Err(failure) => {
            let (status, message) = form_refusal(failure)?;
            let body = list_body(&me.session, &users, 0, None, Some(&message));
            Ok(me.render_status(Section::Users, status, "Users", body))
        }
    }
}

async fn edit(me: SignedIn, Path(uid): Path<String>) -> Result<Response, PageError> {
    let user = me.api().user(&uid).await?;
    let session = &me.session;
    let body = html! {
        nav class="crumbs" aria-label="Breadcrumb" { a href=(url("/users")) { "Users" } }
        h1 { "User " (user.uid) }
        form method="post" action=(url(&format!("/users/{}", user.uid))) class="stack narrow" {
            (csrf_field(session))
            label for="e-email" { "Email" }
            input id="e-email" name="email" type="email" value=(user.email);
            label for="e-key" { "SSH public key" }
            textarea id="e-key" name="pub_key" rows="3" class="mono" { (user.pub_key) }
            div class="check" {
                input id="e-admin" name="admin" type="checkbox" value="1" checked[user.admin];
                label for="e-admin" { "Administrator" }
            }
            button type="submit" class="primary" { "Save" }
        }
        section class="card danger-zone narrow" {
            form method="post" action=(url(&format!("/users/{}/delete", user.uid))) data-confirm=(format!("Delete user {}?", user.uid)) {
                (csrf_field(session))
                button type="submit" class="danger" { "Delete user" }
            }
        }
    };
    Ok(me.render(Section::Users, &user.uid, body))
}

#[derive(Deserialize)]
struct EditForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    pub_key: String,
    #[serde(default)]
    admin: String,
}

async fn update(Path(uid): Path<String>, posted: Posted<EditForm>) -> Result<Response, PageError> {
    let Posted { me, form } = posted;
    let changes = UpdateUserRequest {
        email: Some(form.email.trim().to_string()),
        pub_key: Some(form.pub_key.trim().to_string()),
        admin: Some(form.admin == "1"),
        ..UpdateUserRequest::default()
    };
    me.api().update_user(&uid, &changes).await?;
    Ok(me.done(&format!("/users/{uid}"), "User saved."))
}

async fn delete(Path(uid): Path<String>, button: Button) -> Result<Response, PageError> {
    button.me.api().delete_user(&uid).await?;
    Ok(button.me.done("/users", &format!("User {uid} deleted.")))
}
