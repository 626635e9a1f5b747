//! The ceiling of this HTTP stack: one axum route answering a small JSON body, nothing else
//! (no middleware, no authentication, no storage). `scripts/bench.sh` measures it first, and
//! every Goterra figure is printed as a ratio of it.

use axum::Json;
use axum::routing::get;
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8099")]
    listen: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let app = axum::Router::new().route("/", get(|| async { Json(serde_json::json!({"message": "ok"})) }));
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
