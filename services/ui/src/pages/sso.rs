//! Single sign-on in the web UI: the login buttons, the page the identity provider sends the
//! browser back to (`/app/auth/oidc/{provider}/callback`, the original's redirect URI), and
//! linking identities from the profile.
//!
//! The UI relays the provider's answer to auth (with the browser's flow cookie, which auth set
//! when the flow started), gets a token, and starts a UI session with it.

use crate::Ui;
use crate::api::ApiFailure;
use crate::error::PageError;
use crate::layout::{csrf_field, url};
use crate::session::{Posted, Session, cookie};
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use goterra_client::auth::IdentityView;
use goterra_core::Sensitive;
use maud::{Markup, html};
use serde::Deserialize;

/// auth's flow cookie (see goterra-auth's `oidc::flow`).
const FLOW_COOKIE: &str = "goterra_oidc";

pub fn routes() -> Router<Ui> {
    Router::new()
        .route(&url("/auth/oidc/{provider}/callback"), get(callback))
        .route(&url("/profile/identities"), post(link))
        .route(&url("/profile/identities/unlink"), post(unlink))
}

/// One button per provider that is on, for the login page.
pub fn login_buttons(ui: &Ui) -> Markup {
    html! {
        @if !ui.settings.sso_providers.is_empty() {
            div class="stack sso" {
                p class="muted" { "Or sign in with" }
                @for provider in &ui.settings.sso_providers {
                    a class="button" id=(format!("sso-{}", provider.name))
                        href=(format!("/auth/oidc/{}?via=app", provider.name)) { (provider.display_name) }
                }
            }
        }
    }
}

fn end_flow(ui: &Ui) -> HeaderValue {
    let secure = if ui.settings.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{FLOW_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("goterra_oidc=; Path=/; Max-Age=0"))
}

async fn callback(
    State(ui): State<Ui>,
    headers: HeaderMap,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let flow = cookie(&headers, FLOW_COOKIE)
        .map(|value| format!("{FLOW_COOKIE}={value}"))
        .unwrap_or_default();
    let session = ui.sessions.read(&headers).ok();
    let answer = ui.api.oidc_callback(&provider, &pairs, &flow, session.as_ref()).await;
    let mut response = match answer {
        // The signed-in user came back from linking an identity.
        Ok(answer) if session.as_ref().is_some_and(|s| s.uid == answer.uid) => {
            super::done(&ui, "/profile", "The identity is linked: you can sign in with it.")
        }
        Ok(answer) => {
            let token = Sensitive::new(answer.token);
            let me = ui
                .api
                .as_user(&Session::new(token.clone(), answer.uid.clone(), false))
                .me()
                .await?;
            let session = Session::new(token, me.uid, me.admin);
            let mut response = Redirect::to(crate::PREFIX).into_response();
            response
                .headers_mut()
                .append(header::SET_COOKIE, ui.sessions.start(&session));
            response
        }
        Err(ApiFailure::Unavailable) => return Err(PageError::from(ApiFailure::Unavailable)),
        Err(failure) => {
            let message = match failure {
                ApiFailure::Unauthorized => "The identity provider's answer was refused.".to_string(),
                ApiFailure::Forbidden(message) | ApiFailure::NotFound(message) => message,
                ApiFailure::Rejected { message, .. } | ApiFailure::Throttled { message, .. } => message,
                ApiFailure::Unavailable => String::new(),
            };
            super::done(&ui, "/login", &format!("Single sign-on failed: {message}"))
        }
    };
    response.headers_mut().append(header::SET_COOKIE, end_flow(&ui));
    super::no_store(&mut response);
    Ok(response)
}

/// The profile's identities card: those linked, and a link button per provider.
pub fn identities_card(ui: &Ui, session: &Session, identities: &[IdentityView]) -> Markup {
    html! {
        @if !ui.settings.sso_providers.is_empty() || !identities.is_empty() {
            section class="card narrow" id="identities" {
                h2 { "Single sign-on" }
                @if identities.is_empty() {
                    p { "No identity-provider account is linked to yours." }
                } @else {
                    ul {
                        @for identity in identities {
                            li {
                                strong { (display_name(ui, &identity.provider)) } " "
                                span class="mono" { (identity.subject) }
                                @if !identity.email.is_empty() { " (" (identity.email) ")" }
                                @if session.admin {
                                    form method="post" action=(url("/profile/identities/unlink")) class="inline"
                                        data-confirm="Unlink this identity? It will no longer sign in to this account." {
                                        (csrf_field(session))
                                        input type="hidden" name="provider" value=(identity.provider);
                                        button type="submit" { "Unlink" }
                                    }
                                }
                            }
                        }
                    }
                }
                @for provider in &ui.settings.sso_providers {
                    form method="post" action=(url("/profile/identities")) {
                        (csrf_field(session))
                        input type="hidden" name="provider" value=(provider.name);
                        button type="submit" id=(format!("link-{}", provider.name)) { "Link a " (provider.display_name) " account" }
                    }
                }
            }
        }
    }
}

fn display_name(ui: &Ui, name: &str) -> String {
    ui.settings
        .sso_providers
        .iter()
        .find(|provider| provider.name == name)
        .map_or_else(|| name.to_string(), |provider| provider.display_name.clone())
}

#[derive(Deserialize)]
struct ProviderForm {
    provider: String,
}

/// Sends the browser to the provider, carrying auth's flow cookie.
async fn link(posted: Posted<ProviderForm>) -> Result<Response, PageError> {
    let Posted { me, form } = posted;
    match me.api().start_identity_link(&me.session.uid, &form.provider).await {
        Ok((location, flow_cookie)) => {
            let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
            if let Some(value) = flow_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Ok(response)
        }
        Err(ApiFailure::Unavailable) => Err(ApiFailure::Unavailable.into()),
        Err(failure) => Ok(me.done("/profile", &failure.to_string())),
    }
}

async fn unlink(posted: Posted<ProviderForm>) -> Result<Response, PageError> {
    let Posted { me, form } = posted;
    match me.api().unlink_identity(&me.session.uid, &form.provider).await {
        Ok(()) => Ok(me.done("/profile", "The identity is unlinked.")),
        Err(ApiFailure::Unavailable) => Err(ApiFailure::Unavailable.into()),
        Err(failure) => Ok(me.done("/profile", &failure.to_string())),
    }
}
