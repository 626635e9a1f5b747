//! Names or ids on the command line to ids: a namespace, an application, an endpoint, a run.

use super::error::{CliError, CliResult, failed};
use goterra_client::deploy::{CatalogueItem, Namespace};
use goterra_client::runs::Run;
use goterra_client::{Client, NamespaceId, RunId};

/// The namespace whose id or name is `given` (ids win; names are unique platform-wide).
pub async fn namespace(client: &Client, given: &str) -> CliResult<Namespace> {
    let given = given.trim();
    if given.is_empty() {
        return Err(CliError::Usage("--ns cannot be empty".into()));
    }
    let listed = client.namespaces(false).await?;
    if let Some(found) = listed
        .iter()
        .find(|ns| ns.id == given)
        .or_else(|| listed.iter().find(|ns| ns.name == given))
    {
        return Ok(found.clone());
    }
    // Admins see namespaces they are not members of with `all`.
    let everyone = client.namespaces(true).await.unwrap_or_default();
    if let Some(found) = everyone.iter().find(|ns| ns.id == given || ns.name == given) {
        return Ok(found.clone());
    }
    if let Ok(id) = given.parse::<NamespaceId>()
        && let Ok(found) = client.namespace(&id).await
    {
        return Ok(found);
    }
    Err(failed(format!(
        "no namespace {given:?} among those you can see (`goterra-cli ns list`)"
    )))
}

pub async fn namespace_id(client: &Client, given: &str) -> CliResult<NamespaceId> {
    Ok(NamespaceId::from_trusted(namespace(client, given).await?.id))
}

/// The id of the `K` whose id or name is `given`, among the namespace's and the public ones.
pub async fn item_id<K>(client: &Client, ns: &NamespaceId, given: &str, label: &str) -> CliResult<K::Id>
where
    K: CatalogueItem,
{
    let given = given.trim();
    let mut candidates = client.list_items::<K>(ns, true).await?;
    candidates.extend(client.list_public_items::<K>(true).await?);
    let found = candidates
        .iter()
        .find(|item| item.id() == given)
        .or_else(|| {
            let named: Vec<&K> = candidates.iter().filter(|item| item.name() == given).collect();
            // The namespace's own object wins over a public one of the same name.
            named
                .iter()
                .find(|item| item.namespace() == ns.as_str())
                .or_else(|| named.first())
                .copied()
        })
        .ok_or_else(|| {
            failed(format!(
                "no {label} {given:?} in this namespace or among the public ones"
            ))
        })?;
    found
        .id()
        .parse()
        .map_err(|_| failed(format!("the server gave an invalid {label} id {:?}", found.id())))
}

/// A run by id: in `ns` when given, otherwise found among the runs the caller may see.
pub async fn run(client: &Client, ns: Option<&str>, run: &str) -> CliResult<(NamespaceId, Run)> {
    let run_id: RunId = run
        .trim()
        .parse()
        .map_err(|err| CliError::Usage(format!("invalid run id {run:?}: {err}")))?;
    if let Some(ns) = ns {
        let ns = namespace_id(client, ns).await?;
        let found = client.run(&ns, &run_id).await?;
        return Ok((ns, found));
    }
    for all in [false, true] {
        let mut skip = 0;
        loop {
            let page = client.runs(None, all, Some(skip), Some(500)).await?;
            if let Some(found) = page.iter().find(|r| r.id == run_id.as_str()) {
                let ns = NamespaceId::from_trusted(found.namespace.clone());
                let fresh = client.run(&ns, &run_id).await?;
                return Ok((ns, fresh));
            }
            if page.len() < 500 {
                break;
            }
            skip += 500;
        }
    }
    Err(failed(format!(
        "no run {run_id} among the runs you can see: give its namespace with --ns"
    )))
}
