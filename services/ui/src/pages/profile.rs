//! The signed-in user's profile: email and SSH public key, password change (with the current
//! password), and a new API key shown once.

use super::{Button, SignedIn, done};
use crate::Ui;
use crate::api::ApiFailure;
use crate::error::{PageError, form_refusal};
use crate::layout::{self, Section, csrf_field, url};
use crate::model::{UpdateUserRequest, User};
use crate::session::{Posted, Session};
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use goterra_core::Sensitive;
use goterra_core::extract::ClientAddress;
use maud::{Markup, html};
use serde::Deserialize;

pub fn routes() -> Router<Ui> {
    Router::new()
        .route(&url("/profile"), get(show).post(update))
        .route(&url("/profile/password"), post(password))
        .route(&url("/profile/apikey"), post(new_key))
}

#[derive(Default)]
struct Notes<'a> {
    profile_error: Option<&'a str>,
    password_error: Option<&'a str>,
    new_key: Option<&'a str>,
    identities: &'a [goterra_client::auth::IdentityView],
}

fn body(ui: &Ui, session: &Session, user: &User, notes: &Notes<'_>) -> Markup {
    html! {
        h1 { "Profile of " (user.uid) }
        p class="muted" { @if user.admin { "Administrator. " } "Account kind: " @if user.kind.is_empty() { "local" } @else { (user.kind) } "." }
        section class="card narrow" {
            h2 { "Profile" }
            (layout::form_error(notes.profile_error))
            form method="post" action=(url("/profile")) class="stack" {
                (csrf_field(session))
                label for="p-email" { "Email" }
                input id="p-email" name="email" type="email" value=(user.email);
                label for="p-key" { "SSH public key (installed in your VMs)" }
                textarea id="p-key" name="pub_key" rows="3" class="mono" { (user.pub_key) }
                button type="submit" class="primary" { "Save" }
            }
        }
        @if user.kind.is_empty() {
            section class="card narrow" {
                h2 { "Password" }
                (layout::form_error(notes.password_error))
                form method="post" action=(url("/profile/password")) class="stack" {
                    (csrf_field(session))
                    label for="p-current" { "Current password" }
                    input id="p-current" name="current" type="password" required autocomplete="current-password";
                    label for="p-new" { "New password" }
                    input id="p-new" name="new" type="password" required autocomplete="new-password";
                    label for="p-again" { "New password again" }
                    input id="p-again" name="again" type="password" required autocomplete="new-password";
                    button type="submit" { "Change password" }
                }
            }
        }
        section class="card narrow" {
            h2 { "API key" }
            @if let Some(key) = notes.new_key {
                div class="secret-once" role="status" {
                    p { "Your new API key, shown this once (the previous one no longer works):" }
                    output class="mono" { (key) }
                }
            } @else {
                p { "For the command-line client and scripts. Only its hash is kept, so it cannot be shown again: make a new one when you need it." }
            }
            form method="post" action=(url("/profile/apikey")) data-confirm="Replace your API key? The current one stops working." {
                (csrf_field(session))
                button type="submit" { "Make a new API key" }
            }
        }
        (super::sso::identities_card(ui, session, notes.identities))
    }
}

fn page(me: &SignedIn, status: StatusCode, user: &User, notes: &Notes<'_>) -> Response {
    let body = body(&me.ui, &me.session, user, notes);
    me.render_status(Section::Profile, status, "Profile", body)
}

async fn show(me: SignedIn) -> Result<Response, PageError> {
    let api = me.api();
    let user = api.me().await?;
    let identities = if me.ui.settings.sso_providers.is_empty() {
        Vec::new()
    } else {
        api.identities(&me.session.uid).await?
    };
    let notes = Notes {
        identities: &identities,
        ..Notes::default()
    };
    Ok(page(&me, StatusCode::OK, &user, &notes))
}

#[derive(Deserialize)]
struct ProfileForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    pub_key: String,
}

async fn update(posted: Posted<ProfileForm>) -> Result<Response, PageError> {
    let Posted { me, form } = posted;
    let api = me.api();
    let changes = UpdateUserRequest {
        email: Some(form.email.trim().to_string()),
        pub_key: Some(form.pub_key.trim().to_string()),
        ..UpdateUserRequest::default()
    };
    match api.update_user(&me.session.uid, &changes).await {
        Ok(()) => Ok(me.done("/profile", "Profile saved.")),
        Err(failure) => {
            let (status, message) = form_refusal(failure)?;
            let mut user = api.me().await?;
            user.email = form.email;
            user.pub_key = form.pub_key;
            let notes = Notes {
                profile_error: Some(&message),
                ..Notes::default()
            };
            Ok(page(&me, status, &user, &notes))
        }
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    current: String,
    new: String,
    again: String,
}

async fn password(ClientAddress(client): ClientAddress, posted: Posted<PasswordForm>) -> Result<Response, PageError> {
    let Posted { me, form } = posted;
    let api = me.api();
    let result = if form.new != form.again {
        Err((StatusCode::BAD_REQUEST, "The two new passwords differ.".to_string()))
    } else {
        let current = Sensitive::new(form.current);
        let new = Sensitive::new(form.new.clone());
        match api.change_password(&me.session.uid, current, new).await {
            Ok(()) => Ok(()),
            Err(failure) => Err(form_refusal(failure)?),
        }
    };
    match result {
        Ok(()) => {
            // The change revoked every older token, this session's too: sign in again with
            // the new password so that the user stays signed in here.
            let renewed = me.ui.api.login(&me.session.uid, Sensitive::new(form.new), client).await;
            Ok(renew_session(&me.ui, renewed, "/profile", "Password changed."))
        }
        Err((status, message)) => {
            let user = api.me().await?;
            let notes = Notes {
                password_error: Some(&message),
                ..Notes::default()
            };
            Ok(page(&me, status, &user, &notes))
        }
    }
}

async fn new_key(button: Button) -> Result<Response, PageError> {
    let mut me = button.me;
    let key = me.api().new_api_key(&me.session.uid).await?;
    // The new key revoked every older token, this session's too: the key itself signs the
    // user in again, and the page is drawn with the new session.
    let answer = me.ui.api.login_with_key(key.clone()).await?;
    me.session = Session::new(Sensitive::new(answer.token), answer.user.uid, answer.user.admin);
    let user = me.api().me().await?;
    let notes = Notes {
        new_key: Some(key.expose()),
        ..Notes::default()
    };
    let mut response = page(&me, StatusCode::OK, &user, &notes);
    response
        .headers_mut()
        .append(header::SET_COOKIE, me.ui.sessions.start(&me.session));
    Ok(response)
}

/// After a change that revoked the user's tokens: the new session from `renewed` and a
/// redirect to `path` with `message`; when signing in again failed, the login page says why.
fn renew_session(
    ui: &Ui,
    renewed: Result<crate::model::LoginAnswer, ApiFailure>,
    path: &str,
    message: &str,
) -> Response {
    match renewed {
        Ok(answer) => {
            let session = Session::new(Sensitive::new(answer.token), answer.user.uid, answer.user.admin);
            let mut response = done(ui, path, message);
            response
                .headers_mut()
                .append(header::SET_COOKIE, ui.sessions.start(&session));
            response
        }
        Err(failure) => {
            tracing::warn!(%failure, "signing in again after a credential change failed");
            let mut response = done(ui, "/login", &format!("{message} Sign in again."));
            response.headers_mut().append(header::SET_COOKIE, ui.sessions.end());
            response
        }
    }
}
