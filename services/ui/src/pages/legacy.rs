//! The original UI's page addresses (`reference/ui.md` §3), kept as permanent redirects to
//! their counterparts here, so that bookmarks and links into the old UI still lead somewhere.

use crate::Ui;
use crate::error::{NO_SUCH_PAGE, PageError};
use crate::layout::url;
use axum::Router;
use axum::http::Uri;
use axum::response::Redirect;
use axum::routing::get;

/// The old addresses, under `/app` as they were.
const OLD_PAGES: [&str; 5] = [
    "/ns/{ns}/run/app/{app}",
    "/ns/{ns}/edit/{kind}",
    "/ns/{ns}/edit/{kind}/{id}",
    "/user/{uid}",
    "/usage/ns/{ns}",
];

pub fn routes() -> Router<Ui> {
    OLD_PAGES
        .iter()
        .fold(Router::new(), |router, old| router.route(&url(old), get(moved)))
}

/// The page that replaced an old address. The segments are taken from the raw path, still
/// percent-encoded, so the new address is a valid one.
async fn moved(uri: Uri) -> Result<Redirect, PageError> {
    let rest = uri.path().strip_prefix(crate::PREFIX).unwrap_or_default();
    let segments: Vec<&str> = rest.split('/').skip(1).collect();
    let new = match segments.as_slice() {
        ["ns", ns, "run", "app", app] => format!("/ns/{ns}/app/{app}/run"),
        ["ns", ns, "edit", kind] => format!("/ns/{ns}/{kind}/new"),
        ["ns", ns, "edit", kind, id] => format!("/ns/{ns}/{kind}/{id}/edit"),
        // The original ignored the uid and showed the signed-in user's profile; so does this.
        ["user", _] => "/profile".to_string(),
        ["usage", "ns", ns] => format!("/ns/{ns}/usage"),
        _ => return Err(PageError::NotFound(NO_SUCH_PAGE.into())),
    };
    Ok(Redirect::permanent(&url(&new)))
}
