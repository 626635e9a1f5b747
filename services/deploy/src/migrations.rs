//! The deploy schema. One SQL text serves both engines (BIGINT for integers and 0/1 flags,
//! TEXT for strings and JSON documents, unix seconds for times).
//!
//! Each catalogue kind has one table whose columns are what the database must enforce or
//! search on (namespace, unique name, public/frozen flags, references); the rest of the object
//! is kept as a JSON document in `body`. `deploy_namespace_users` is read by the store service to
//! let namespace members into store deployments: keep its shape. `freeze` is a keyword in
//! PostgreSQL, hence always quoted.

use goterra_db::Migration;

const CATALOGUE_V1: &str = r#"
CREATE TABLE deploy_namespaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    "freeze" BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE TABLE deploy_namespace_users (
    namespace_id TEXT NOT NULL REFERENCES deploy_namespaces(id),
    uid TEXT NOT NULL,
    role TEXT NOT NULL,
    position BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace_id, uid)
);
CREATE INDEX deploy_namespace_users_by_uid ON deploy_namespace_users (uid);

CREATE TABLE deploy_recipes (
    id TEXT PRIMARY KEY,
    namespace_id TEXT NOT NULL REFERENCES deploy_namespaces(id),
    name TEXT NOT NULL,
    public BIGINT NOT NULL DEFAULT 0,
    frozen BIGINT NOT NULL DEFAULT 0,
    parent_id TEXT REFERENCES deploy_recipes(id),
    ts BIGINT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (namespace_id, name)
);
CREATE INDEX deploy_recipes_by_parent ON deploy_recipes (parent_id);
CREATE INDEX deploy_recipes_public ON deploy_recipes (public, name);

CREATE TABLE deploy_templates (
    id TEXT PRIMARY KEY,
    namespace_id TEXT NOT NULL REFERENCES deploy_namespaces(id),
    name TEXT NOT NULL,
    public BIGINT NOT NULL DEFAULT 0,
    frozen BIGINT NOT NULL DEFAULT 0,
    ts BIGINT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (namespace_id, name)
);
CREATE INDEX deploy_templates_public ON deploy_templates (public, name);

CREATE TABLE deploy_apps (
    id TEXT PRIMARY KEY,
    namespace_id TEXT NOT NULL REFERENCES deploy_namespaces(id),
    name TEXT NOT NULL,
    public BIGINT NOT NULL DEFAULT 0,
    frozen BIGINT NOT NULL DEFAULT 0,
    template_id TEXT NOT NULL REFERENCES deploy_templates(id),
    ts BIGINT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (namespace_id, name)
);
CREATE INDEX deploy_apps_by_template ON deploy_apps (template_id);
CREATE INDEX deploy_apps_public ON deploy_apps (public, name);

-- Which recipes an application runs: what makes "recipe still used" a query and a constraint.
CREATE TABLE deploy_app_recipes (
    app_id TEXT NOT NULL REFERENCES deploy_apps(id),
    recipe_id TEXT NOT NULL REFERENCES deploy_recipes(id),
    PRIMARY KEY (app_id, recipe_id)
);
CREATE INDEX deploy_app_recipes_by_recipe ON deploy_app_recipes (recipe_id);

CREATE TABLE deploy_endpoints (
    id TEXT PRIMARY KEY,
    namespace_id TEXT NOT NULL REFERENCES deploy_namespaces(id),
    name TEXT NOT NULL,
    public BIGINT NOT NULL DEFAULT 0,
    frozen BIGINT NOT NULL DEFAULT 0,
    kind TEXT NOT NULL,
    ts BIGINT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (namespace_id, name)
);
CREATE INDEX deploy_endpoints_public ON deploy_endpoints (public, name);

-- One cloud credential per user and endpoint; the password is encrypted (see crypto.rs).
CREATE TABLE deploy_endpoint_secrets (
    uid TEXT NOT NULL,
    endpoint_id TEXT NOT NULL REFERENCES deploy_endpoints(id),
    username TEXT NOT NULL,
    password TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (uid, endpoint_id)
);

-- Per-user suggested input values for an endpoint, when deploying from a namespace.
CREATE TABLE deploy_endpoint_defaults (
    uid TEXT NOT NULL,
    endpoint_id TEXT NOT NULL REFERENCES deploy_endpoints(id),
    namespace_id TEXT NOT NULL REFERENCES deploy_namespaces(id),
    defaults TEXT NOT NULL,
    PRIMARY KEY (uid, endpoint_id, namespace_id)
);
"#;

/// Runs. What an agent needs again for a later action (template text, plain variables) is a
/// snapshot taken at creation, so editing or deleting the catalogue never strands a live run.
/// Columns named `*_sealed` are encrypted with the [`crate::crypto::SecretBox`] and set to NULL
/// once the run is destroyed. `action` is the action in flight (NULL when none).
const RUNS_V1: &str = r#"
CREATE TABLE deploy_runs (
    id TEXT PRIMARY KEY,
    namespace_id TEXT NOT NULL REFERENCES deploy_namespaces(id),
    app_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    uid TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    action TEXT,
    inputs TEXT NOT NULL,
    template TEXT NOT NULL,
    variables TEXT NOT NULL,
    sensitive_sealed TEXT,
    boot_sealed TEXT,
    deployment TEXT NOT NULL,
    outputs TEXT NOT NULL,
    error TEXT NOT NULL,
    events TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    ended_at BIGINT NOT NULL DEFAULT 0,
    duration_ms BIGINT NOT NULL DEFAULT 0,
    status_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL DEFAULT 0,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    requeues BIGINT NOT NULL DEFAULT 0,
    log_lines BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX deploy_runs_by_namespace ON deploy_runs (namespace_id, created_at);
CREATE INDEX deploy_runs_by_uid ON deploy_runs (uid, created_at);
CREATE INDEX deploy_runs_by_status ON deploy_runs (status);

CREATE TABLE deploy_run_logs (
    run_id TEXT NOT NULL REFERENCES deploy_runs(id),
    seq BIGINT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Terraform's state for the http backend, encrypted, with its lock.
CREATE TABLE deploy_run_states (
    run_id TEXT PRIMARY KEY REFERENCES deploy_runs(id),
    state_sealed TEXT,
    lock_id TEXT,
    lock_info TEXT,
    updated_at BIGINT NOT NULL
);
"#;

/// The claim of the agent running a run's action: reports carrying another claim come from an
/// agent that was taken over, and are refused.
const RUN_CLAIMS_V1: &str = "ALTER TABLE deploy_runs ADD COLUMN claim_id TEXT;";

/// Every run newest first (an admin's list of all runs) walks this index instead of sorting the
/// whole table: 100 000 runs took 176 ms per page on SQLite without it (`runs_page` bench).
const RUNS_BY_CREATION_V1: &str = "CREATE INDEX deploy_runs_by_creation ON deploy_runs (created_at, id);";

/// A run list filtered by status reads one index range per owner or namespace and status, in
/// page order (`RunRepo::list_in_status`): 23 ms (SQLite) and 52 ms (PostgreSQL) per first page
/// with 100 000 runs before, when the status was checked on every run of the user. The status
/// index gains the creation time for the same reason on the list of every run.
const RUN_LIST_INDEXES_V1: &str = "
CREATE INDEX deploy_runs_by_uid_status ON deploy_runs (uid, status, created_at, id);
CREATE INDEX deploy_runs_by_namespace_status ON deploy_runs (namespace_id, status, created_at, id);
DROP INDEX deploy_runs_by_status;
CREATE INDEX deploy_runs_by_status ON deploy_runs (status, created_at, id);
";

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        id: "deploy-0001-catalogue",
        postgres: CATALOGUE_V1,
        sqlite: CATALOGUE_V1,
    },
    Migration {
        id: "deploy-0002-runs",
        postgres: RUNS_V1,
        sqlite: RUNS_V1,
    },
    // The embedded run queue's table (same id as goterra-bus's, so applying it twice is a no-op):
    // deploy enqueues into it when no broker is configured.
    goterra_bus::MIGRATIONS[0],
    Migration {
        id: "deploy-0003-run-claims",
        postgres: RUN_CLAIMS_V1,
        sqlite: RUN_CLAIMS_V1,
    },
    Migration {
        id: "deploy-0004-runs-by-creation",
        postgres: RUNS_BY_CREATION_V1,
        sqlite: RUNS_BY_CREATION_V1,
    },
    Migration {
        id: "deploy-0005-run-list-indexes",
        postgres: RUN_LIST_INDEXES_V1,
        sqlite: RUN_LIST_INDEXES_V1,
    },
    // The queues deploys feed (goterra-bus's id again), marked when deploy starts.
    goterra_bus::MIGRATIONS[1],
];
