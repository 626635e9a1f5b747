//! The run's store deployment, created and deleted through the store's HTTP API (`{public_url}/store`)
//! with the typed [`goterra_client::Client`] and a short-lived user token minted for the run
//! owner. Deploy and the store may run in different processes, and the store owns its backend
//! (memory, Redis): HTTP is the one way in that works in both topologies. The store must be
//! reachable at the platform's public URL.

use goterra_client::ids::{DeploymentId, NamespaceId, Uid};
use goterra_client::{Client, ClientError};
use goterra_core::token::unix_now;
use goterra_core::{Claims, Identity, Platform, Sensitive};

/// Lifetime of the token deploy mints to talk to the store on the owner's behalf.
const CALL_TOKEN_TTL_SECS: u64 = 120;

pub struct Deployment {
    pub id: DeploymentId,
    pub token: Sensitive<String>,
}

/// The platform's API as `identity`, with a token valid for one call.
fn client_as(platform: &Platform, identity: &Identity) -> Result<Client, ClientError> {
    let mut claims = Claims::for_user(identity);
    claims.exp = Some(unix_now() + CALL_TOKEN_TTL_SECS);
    Ok(Client::new(&platform.config.public_url())?.with_token(platform.tokens.issue(&claims)))
}

/// A new deployment owned by `owner`, readable from the run's namespace.
pub async fn create(platform: &Platform, owner: &Identity, namespace: &NamespaceId) -> Result<Deployment, ClientError> {
    let created = client_as(platform, owner)?
        .create_deployment(Some(namespace.as_str()))
        .await?;
    Ok(Deployment {
        id: DeploymentId::from_trusted(created.id),
        token: Sensitive::new(created.token),
    })
}

/// Deletes the run's deployment as its owner `uid` (already gone: done).
pub async fn delete(platform: &Platform, uid: &Uid, deployment: &DeploymentId) -> Result<(), ClientError> {
    if deployment.as_str().is_empty() {
        return Ok(());
    }
    let owner = Identity {
        uid: uid.to_string(),
        admin: false,
        super_user: false,
        email: String::new(),
        kind: String::new(),
    };
    match client_as(platform, &owner)?.delete_deployment(deployment).await {
        Err(err) if err.is_not_found() => Ok(()),
        outcome => outcome.map(drop),
    }
}
