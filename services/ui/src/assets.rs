//! The stylesheet and the script, embedded in the binary. Their URLs carry a hash of their
//! content, so browsers may keep them forever; a new build changes the URL.

use crate::Ui;
use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

pub struct Asset {
    pub file: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
    version: LazyLock<String>,
}

impl Asset {
    /// `/app/static/<hash>/<file>`.
    pub fn url(&self) -> String {
        format!("{}/static/{}/{}", crate::PREFIX, *self.version, self.file)
    }
}

fn version_of(body: &str) -> String {
    hex::encode(&Sha256::digest(body.as_bytes())[..6])
}

pub static STYLESHEET: Asset = Asset {
    file: "app.css",
    content_type: "text/css; charset=utf-8",
    body: include_str!("../assets/app.css"),
    version: LazyLock::new(|| version_of(include_str!("../assets/app.css"))),
};

pub static SCRIPT: Asset = Asset {
    file: "app.js",
    content_type: "text/javascript; charset=utf-8",
    body: include_str!("../assets/app.js"),
    version: LazyLock::new(|| version_of(include_str!("../assets/app.js"))),
};

pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub fn routes() -> Router<Ui> {
    Router::new().route(&format!("{}/static/{{version}}/{{file}}", crate::PREFIX), get(serve))
}

async fn serve(Path((version, file)): Path<(String, String)>) -> Response {
    let Some(asset) = [&STYLESHEET, &SCRIPT].into_iter().find(|asset| asset.file == file) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    // An old page asking for a previous build's URL gets today's file, not to be kept.
    let cache = if version == *asset.version {
        IMMUTABLE
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        asset.body,
    )
        .into_response()
}
