//! `store dump|watch` and `store get|put --run` on a run's store deployment, with your user
//! credentials (the in-VM forms use the deployment token instead).

use super::commands::StoreTarget;
use super::error::{CliResult, usage};
use super::output::{self, Format};
use super::resolve;
use super::session::Session;
use goterra_client::{Client, DeploymentId};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A client with your credentials, and the deployment of `--run` (or `--deployment`).
pub async fn deployment(
    session: &Session,
    target: &StoreTarget,
    deployment: Option<&str>,
) -> CliResult<(Client, DeploymentId)> {
    let client = session.client().await?;
    let id = match (&target.run, deployment.map(str::trim).filter(|d| !d.is_empty())) {
        (Some(run), _) => {
            let (_, found) = resolve::run(&client, target.ns.as_deref(), run).await?;
            if found.deployment.is_empty() {
                return Err(usage(format!("run {run} has no store deployment (yet)")));
            }
            found.deployment
        }
        (None, Some(deployment)) => deployment.to_string(),
        (None, None) => return Err(usage("give --run RUN (or --deployment ID)")),
    };
    let id = id
        .parse()
        .map_err(|err| usage(format!("invalid deployment id {id:?}: {err}")))?;
    Ok((client, id))
}

fn keys_table(keys: &BTreeMap<String, String>) -> comfy_table::Table {
    let mut table = output::table(&["Key", "Value"]);
    for (key, value) in keys {
        table.add_row(vec![key.clone(), value.clone()]);
    }
    table
}

/// Every key of the deployment (starting with `prefix`).
pub async fn dump(
    session: &Session,
    target: &StoreTarget,
    deployment_id: Option<&str>,
    prefix: Option<&str>,
    format: Format,
) -> CliResult<()> {
    let (client, id) = deployment(session, target, deployment_id).await?;
    let data = client.store_keys(&id, prefix).await?;
    output::print(format, &data.deployment, || keys_table(&data.deployment))
}

/// Prints `key = value` for every key (starting with `prefix`) as it appears or changes, until
/// `timeout` has passed.
pub async fn watch(
    session: &Session,
    target: &StoreTarget,
    deployment_id: Option<&str>,
    prefix: Option<&str>,
    interval: Duration,
    timeout: Duration,
) -> CliResult<()> {
    let (client, id) = deployment(session, target, deployment_id).await?;
    let deadline = Instant::now() + timeout;
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let data = client.store_keys(&id, prefix).await?;
        for (key, value) in data.deployment {
            if seen.get(&key) != Some(&value) {
                println!("{key} = {value}");
                seen.insert(key, value);
            }
        }
        if Instant::now() + interval > deadline {
            return Ok(());
        }
        tokio::time::sleep(interval).await;
    }
}
