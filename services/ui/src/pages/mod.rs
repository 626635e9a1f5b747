//! The pages, one module per area. Handlers read the session, call the API through
//! [`crate::api`], and render with [`crate::layout`].

pub mod apidocs;
pub mod auth;
pub mod catalogue;
pub mod legacy;
pub mod namespaces;
pub mod profile;
pub mod runs;
pub mod sso;
pub mod usage;
pub mod users;

use crate::Ui;
use crate::api::UserApi;
use crate::error::PageError;
use crate::layout::{Chrome, Section};
use crate::session::{Posted, Session};
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::Markup;

/// The largest form body accepted (templates and recipe scripts are the big ones).
pub const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;

pub fn routes() -> Router<Ui> {
    Router::new()
        .merge(auth::routes())
        .merge(namespaces::routes())
        .merge(catalogue::routes())
        .merge(runs::routes())
        .merge(users::routes())
        .merge(profile::routes())
        .merge(sso::routes())
        .merge(apidocs::routes())
        .merge(usage::routes())
        .merge(legacy::routes())
}

/// A full page for a signed-in user, with the pending flash message shown (and cleared).
pub fn render(
    ui: &Ui,
    headers: &HeaderMap,
    session: &Session,
    section: Section,
    title: &str,
    body: Markup,
) -> Response {
    render_status(ui, headers, session, section, StatusCode::OK, title, body)
}

pub fn render_status(
    ui: &Ui,
    headers: &HeaderMap,
    session: &Session,
    section: Section,
    status: StatusCode,
    title: &str,
    body: Markup,
) -> Response {
    let flash = ui.sessions.take_flash(headers);
    let chrome = Chrome {
        session: Some(session),
        flash: flash.clone(),
        section,
    };
    let mut response = (status, crate::layout::page(&chrome, title, body)).into_response();
    if flash.is_some() {
        response
            .headers_mut()
            .append(header::SET_COOKIE, ui.sessions.clear_flash());
    }
    no_store(&mut response);
    response
}

/// After a successful form: back to `path` (under `/app`) with a message (303, so a reload
/// does not post again).
pub fn done(ui: &Ui, path: &str, message: &str) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, crate::layout::url(path))]).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, ui.sessions.flash(message));
    response
}

/// Pages show one user's data: no shared cache may keep them.
pub fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A page request of a signed-in user: the session (without one, the login page), the
/// request's headers (for its pending message) and the UI, to call the API and render.
pub struct SignedIn {
    pub ui: Ui,
    pub headers: HeaderMap,
    pub session: Session,
}

impl FromRequestParts<Ui> for SignedIn {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, ui: &Ui) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, ui).await?;
        Ok(Self {
            ui: ui.clone(),
            headers: parts.headers.clone(),
            session,
        })
    }
}

impl SignedIn {
    /// The API as this user.
    pub fn api(&self) -> UserApi {
        self.ui.api.as_user(&self.session)
    }

    /// The page ([`render`]).
    pub fn render(&self, section: Section, title: &str, body: Markup) -> Response {
        render(&self.ui, &self.headers, &self.session, section, title, body)
    }

    /// The page with another status than 200 ([`render_status`]).
    pub fn render_status(&self, section: Section, status: StatusCode, title: &str, body: Markup) -> Response {
        render_status(&self.ui, &self.headers, &self.session, section, status, title, body)
    }

    /// Back to `path` with `message` ([`done`]).
    pub fn done(&self, path: &str, message: &str) -> Response {
        done(&self.ui, path, message)
    }
}

/// A form that is only a button (delete, cancel, forget, sign out...): nothing but its CSRF
/// token is posted.
pub type Button = Posted<NoFields>;

#[derive(serde::Deserialize)]
pub struct NoFields {}
