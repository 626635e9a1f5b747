//! The run's store deployment, created and deleted through the store's HTTP API (`{public_url}/store`)
//! with a short-lived user token minted for the run owner. Deploy and the store may run in
//! different processes, and the store owns its backend (memory, Redis): HTTP is the one way in
//! that works in both topologies. The store must be reachable at the platform's public URL.

use goterra_core::token::unix_now;
use goterra_core::{Claims, Identity, Platform, Sensitive};
use serde::Deserialize;
use std::time::Duration;

/// Lifetime of the token deploy mints to talk to the store on the owner's behalf.
const CALL_TOKEN_TTL_SECS: u64 = 120;

pub struct Deployment {
    pub id: String,
    pub token: Sensitive<String>,
}

#[derive(Deserialize)]
struct Created {
    id: String,
    token: String,
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?)
}

fn token_for(platform: &Platform, identity: &Identity) -> String {
    let mut claims = Claims::for_user(identity);
    claims.exp = Some(unix_now() + CALL_TOKEN_TTL_SECS);
    platform.tokens.issue(&claims)
}

fn owner_token(platform: &Platform, uid: &str) -> String {
    let identity = Identity {
        uid: uid.to_string(),
        admin: false,
        super_user: false,
        email: String::new(),
        kind: String::new(),
    };
    token_for(platform, &identity)
}

/// Creates a deployment owned by the run owner in namespace `namespace`.
pub async fn create(platform: &Platform, owner: &Identity, namespace: &str) -> anyhow::Result<Deployment> {
    let url = format!("{}/store", platform.config.public_url());
    let response = client()?
        .post(&url)
        .bearer_auth(token_for(platform, owner))
        .header("X-API-NS", namespace)
        .send()
        .await
        .map_err(|err| anyhow::anyhow!("cannot reach the store at {url}: {}", err.without_url()))?;
    let status = response.status();
    if !status.is_success() {
        anyhow::bail!("the store answered {status} when creating the run's deployment");
    }
    let created: Created = response.json().await?;
    Ok(Deployment {
        id: created.id,
        token: Sensitive::new(created.token),
    })
}

/// Deletes the deployment; an already deleted one is fine.
pub async fn delete(platform: &Platform, uid: &str, deployment: &str) -> anyhow::Result<()> {
    if deployment.is_empty() {
        return Ok(());
    }
    let url = format!("{}/store/{deployment}", platform.config.public_url());
    let response = client()?
        .delete(&url)
        .bearer_auth(owner_token(platform, uid))
        .send()
        .await
        .map_err(|err| anyhow::anyhow!("cannot reach the store: {}", err.without_url()))?;
    let status = response.status();
    if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
        Ok(())
    } else {
        anyhow::bail!("the store answered {status} when deleting deployment {deployment}")
    }
}
