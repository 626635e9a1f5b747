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

pub const MIGRATIONS: &[Migration] = &[Migration {
    id: "deploy-0001-catalogue",
    postgres: CATALOGUE_V1,
    sqlite: CATALOGUE_V1,
}];
