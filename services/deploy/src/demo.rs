//! The `local` demo catalogue (`examples/local/`): a namespace `demo` with an endpoint `local`
//! whose "VMs" are background processes under a data directory, the recipes `master` (puts a
//! token in the store) and `worker` (waits for it), the template `local-cluster` and the
//! application `cluster`. `goterra up --demo` loads it through the API (as the bootstrap admin:
//! the template uses `local-exec`, which only admins may store); the end-to-end tests load it the
//! same way over HTTP. Loading twice finds what the first load made.

use anyhow::Context;
use axum::Router;
use goterra_client::deploy::{Application, CatalogueItem, Endpoint, Recipe, Template};
use goterra_client::ids::NamespaceId;
use goterra_client::{Client, Sensitive};
use serde_json::{Value, json};
use std::path::Path;

pub const NAMESPACE: &str = "demo";
pub const MASTER_SH: &str = include_str!("../../../examples/local/master.sh");
pub const WORKER_SH: &str = include_str!("../../../examples/local/worker.sh");
pub const LOCAL_TF: &str = include_str!("../../../examples/local/local.tf");

/// Ids of the demo catalogue.
#[derive(Clone, Debug)]
pub struct Demo {
    pub namespace: String,
    pub endpoint: String,
    pub application: String,
}

impl Demo {
    /// The request that starts a run of the cluster with `workers` workers.
    pub fn run_request(&self, workers: u32) -> Value {
        json!({"name": "demo", "endpoint": self.endpoint, "inputs": {"workers": workers.to_string()}})
    }

    /// `NS=… ENDPOINT=… APP=…` lines for a shell to source (ids are plain tokens).
    pub fn shell_variables(&self) -> String {
        format!(
            "NS={}\nENDPOINT={}\nAPP={}\n",
            self.namespace, self.endpoint, self.application
        )
    }

    /// How to start a run, for people; `key_file` holds the admin's API key.
    pub fn instructions(&self, url: &str, key_file: &Path) -> String {
        format!(
            "demo catalogue: namespace {ns}, endpoint {endpoint} (local), application {app} (cluster)\n\
             start a run (1 master, 2 workers):\n  \
             KEY=$(cat {key_file})\n  \
             curl -H \"X-API-Key: $KEY\" -d '{body}' {url}/deploy/ns/{ns}/run/{app}",
            ns = self.namespace,
            endpoint = self.endpoint,
            app = self.application,
            key_file = key_file.display(),
            body = self.run_request(2),
        )
    }
}

/// The id of the object named `name` among `objects`.
fn id_named<K: CatalogueItem>(objects: &[K], name: &str) -> Option<String> {
    objects
        .iter()
        .find(|object| object.name() == name)
        .map(|object| object.id().to_string())
}

/// The namespace named [`NAMESPACE`] among those the caller may list (admins: every one; names
/// are unique platform-wide), page by page.
async fn find_namespace(api: &Client) -> anyhow::Result<Option<NamespaceId>> {
    let page = goterra_core::extract::MAX_PAGE_SIZE;
    let mut skip = 0;
    loop {
        let listed = api.namespaces_page(true, Some(skip), Some(page)).await?;
        if let Some(namespace) = listed.iter().find(|namespace| namespace.name == NAMESPACE) {
            return Ok(Some(NamespaceId::from_trusted(&namespace.id)));
        }
        if i64::try_from(listed.len()).unwrap_or(i64::MAX) < page {
            return Ok(None);
        }
        skip += page;
    }
}

/// The id of the `K` named `name` in the existing demo namespace.
async fn existing<K: CatalogueItem>(api: &Client, ns: &NamespaceId, name: &str) -> anyhow::Result<String> {
    let objects = api.list_items::<K>(ns, true).await?;
    id_named(&objects, name).with_context(|| {
        format!(
            "namespace {NAMESPACE} exists but has no {} {name}: delete the namespace to load the demo again",
            K::ONE
        )
    })
}

async fn create<K: CatalogueItem>(api: &Client, ns: &NamespaceId, body: Value) -> anyhow::Result<String> {
    let id = api
        .create_item::<K>(ns, &body)
        .await
        .with_context(|| format!("cannot create the demo's {}", K::ONE))?;
    Ok(id.to_string())
}

/// Loads the catalogue as the caller of `api` (an admin), with the "VMs" under `vms_dir`;
/// finds it again when the caller already has a namespace named `demo`.
pub async fn load(api: &Client, vms_dir: &Path) -> anyhow::Result<Demo> {
    if let Some(ns) = find_namespace(api).await? {
        let endpoint = existing::<Endpoint>(api, &ns, "local").await?;
        let application = existing::<Application>(api, &ns, "cluster").await?;
        return Ok(Demo {
            namespace: ns.into_string(),
            endpoint,
            application,
        });
    }
    let ns = api
        .create_namespace(NAMESPACE)
        .await
        .context("cannot create the demo namespace")?;
    let endpoint = create::<Endpoint>(
        api,
        &ns,
        json!({"name": "local", "kind": "local", "description": "processes on the agent's host",
               "config": {"data_dir": vms_dir.display().to_string()}}),
    )
    .await?;
    let master = create::<Recipe>(
        api,
        &ns,
        json!({"name": "master", "base": ["local"], "script": MASTER_SH}),
    )
    .await?;
    let worker = create::<Recipe>(
        api,
        &ns,
        json!({"name": "worker", "base": ["local"], "script": WORKER_SH}),
    )
    .await?;
    let template = create::<Template>(
        api,
        &ns,
        json!({"name": "local-cluster", "data": {"local": LOCAL_TF}, "varrecipes": ["master", "worker"],
               "inputs": {"workers": "Number of workers"}, "defaults": {"workers": ["2"]}}),
    )
    .await?;
    let application = create::<Application>(
        api,
        &ns,
        json!({"name": "cluster", "description": "one master and N workers sharing a token",
               "template": template, "templaterecipes": {"master": [master], "worker": [worker]}}),
    )
    .await?;
    Ok(Demo {
        namespace: ns.into_string(),
        endpoint,
        application,
    })
}

/// [`load`] through `router` before it serves anyone (`goterra up --demo`): the router is
/// served on a loopback port of its own for the time of the load, so the loader is the same
/// typed client as everywhere else.
pub async fn load_through(router: Router, bearer: Sensitive<String>, vms_dir: &Path) -> anyhow::Result<Demo> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot open a loopback port to load the demo")?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    let api = Client::new(&format!("http://{address}"))?.with_token(bearer.into_inner());
    let loaded = load(&api, vms_dir).await;
    let _ = stop.send(());
    server.await.context("the demo's loopback server failed")??;
    loaded
}
