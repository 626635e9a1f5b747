//! Signing in and out, and `GET /app/config`.

use super::{Button, SignedIn};
use crate::Ui;
use crate::api::ApiFailure;
use crate::error::{PageError, retry_time};
use crate::layout::{self, Chrome, Section, url};
use crate::session::{NoSession, Session};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use goterra_core::Sensitive;
use goterra_core::extract::ClientAddress;
use maud::html;
use serde::Deserialize;

pub fn routes() -> Router<Ui> {
    Router::new()
        .route(crate::PREFIX, get(home))
        .route(&url("/config"), get(config))
        .route(&url("/login"), get(login_page).post(login))
        .route(&url("/logout"), get(logout_page).post(logout))
}

async fn home(State(ui): State<Ui>, headers: HeaderMap) -> Redirect {
    match ui.sessions.read(&headers) {
        Ok(_) => Redirect::to(&url("/ns")),
        Err(_) => Redirect::to(&url("/login")),
    }
}

async fn config(State(ui): State<Ui>) -> Json<crate::settings::PublicConfig> {
    Json(ui.settings.public_config())
}

#[derive(Deserialize)]
struct LoginQuery {
    expired: Option<u8>,
}

async fn login_page(State(ui): State<Ui>, headers: HeaderMap, Query(query): Query<LoginQuery>) -> Response {
    if ui.sessions.read(&headers).is_ok() {
        return Redirect::to(&url("/ns")).into_response();
    }
    let message = match (query.expired, ui.sessions.read(&headers)) {
        (Some(1), _) | (_, Err(NoSession::Expired)) => Some("Your session has expired: sign in again."),
        _ => None,
    };
    login_form(&ui, &headers, StatusCode::OK, "", message, None)
}

fn login_form(
    ui: &Ui,
    headers: &HeaderMap,
    status: StatusCode,
    uid: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let (csrf, cookie) = ui.sessions.login_csrf();
    let flash = ui.sessions.take_flash(headers).or(notice.map(str::to_string));
    let chrome = Chrome {
        session: None,
        flash,
        section: Section::None,
    };
    let body = html! {
        section class="narrow card" {
            h1 { "Sign in" }
            (layout::form_error(error))
            form method="post" action=(url("/login")) class="stack" {
                input type="hidden" name="csrf" value=(csrf);
                label for="uid" { "User id" }
                input id="uid" name="uid" autocomplete="username" value=(uid) autofocus;
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password";
                details {
                    summary { "Sign in with an API key instead" }
                    label for="apikey" { "API key" }
                    input id="apikey" name="apikey" type="password" autocomplete="off";
                    p class="hint" { "The key " code { "goterra up" } " printed (or " code { "<data-dir>/admin.apikey" } "). It is exchanged for a session and not kept." }
                }
                button type="submit" class="primary" { "Sign in" }
            }
            (super::sso::login_buttons(ui))
        }
    };
    let mut response = (status, layout::page(&chrome, "Sign in", body)).into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, cookie);
    headers.append(header::SET_COOKIE, ui.sessions.clear_flash());
    super::no_store(&mut response);
    response
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    apikey: String,
}

async fn login(
    State(ui): State<Ui>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    if !ui.sessions.login_csrf_matches(&headers, &form.csrf) {
        return Err(PageError::Csrf);
    }
    let uid = form.uid.trim().to_string();
    let apikey = Sensitive::new(form.apikey.trim().to_string());
    let password = Sensitive::new(form.password);
    let answer = if !apikey.expose().is_empty() {
        ui.api.login_with_key(apikey.clone()).await
    } else if uid.is_empty() || password.expose().is_empty() {
        let message = "Enter your user id and password, or an API key.";
        return Ok(login_form(
            &ui,
            &headers,
            StatusCode::BAD_REQUEST,
            &uid,
            None,
            Some(message),
        ));
    } else {
        ui.api.login(&uid, password, client).await
    };
    match answer {
        Ok(answer) => {
            let session = Session::new(Sensitive::new(answer.token), answer.user.uid, answer.user.admin);
            let mut response = Redirect::to(&url("/ns")).into_response();
            response
                .headers_mut()
                .append(header::SET_COOKIE, ui.sessions.start(&session));
            Ok(response)
        }
        Err(ApiFailure::Unauthorized | ApiFailure::Forbidden(_)) => {
            let message = if apikey.expose().is_empty() {
                "Wrong user id or password."
            } else {
                "This API key is not valid."
            };
            Ok(login_form(
                &ui,
                &headers,
                StatusCode::UNAUTHORIZED,
                &uid,
                None,
                Some(message),
            ))
        }
        Err(ApiFailure::Throttled { retry_after_secs, .. }) => {
            let message = format!(
                "Too many failed sign-ins for this user or from this address: try again {}.",
                retry_time(retry_after_secs)
            );
            let mut response = login_form(&ui, &headers, StatusCode::TOO_MANY_REQUESTS, &uid, None, Some(&message));
            if let Some(secs) = retry_after_secs {
                response.headers_mut().insert(header::RETRY_AFTER, secs.into());
            }
            Ok(response)
        }
        Err(ApiFailure::Rejected { message, .. }) => Ok(login_form(
            &ui,
            &headers,
            StatusCode::BAD_REQUEST,
            &uid,
            None,
            Some(&message),
        )),
        Err(other) => Err(other.into()),
    }
}

/// The original's sign-out address: here a confirmation, since signing out is a form (a link
/// or an image on another site must not sign anyone out).
async fn logout_page(me: SignedIn) -> Response {
    let body = html! {
        section class="narrow card" {
            h1 { "Sign out" }
            p { "Sign out of Goterra in this browser?" }
            form method="post" action=(url("/logout")) class="inline" {
                (layout::csrf_field(&me.session))
                button type="submit" class="primary" { "Sign out" }
            }
        }
    };
    me.render(Section::None, "Sign out", body)
}

async fn logout(button: Button) -> Response {
    let mut response = button.me.done("/login", "You are signed out.");
    response
        .headers_mut()
        .append(header::SET_COOKIE, button.me.ui.sessions.end());
    response
}
