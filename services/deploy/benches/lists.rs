//! Every list route's first page with 100 000 runs and 10 000 catalogue objects in the
//! database, on SQLite and PostgreSQL. Run: `scripts/bench/lists.sh` or
//! `cargo bench --workspace --bench lists`.
//!
//! The data is written straight into deploy's tables (one `INSERT ... SELECT` over a recursive
//! row counter per table; catalogue objects are copies of one object of each kind created
//! through the API), then each route is asked
//! `GOT_BENCH_REQUESTS` times (default 200, one at a time, after a warm-up) and the client's
//! p50 and p99 are printed as a Markdown table. `GOT_BENCH_RUNS` and `GOT_BENCH_CATALOGUE`
//! override the counts; PostgreSQL at `GOT_TEST_POSTGRES_URL` (a database is created and
//! dropped).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Api, app_body, endpoint_body, recipe_body, template_body};
use goterra_db::Engine;
use serde_json::Value;
use sqlx::Row;
use std::time::{Duration, Instant};

const NAMESPACES: usize = 100;
const USERS: usize = 10;
const ROWS_PER_INSERT: usize = 500;

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs `sql` once per chunk of `rows`, each row binding its values in order.
async fn bulk_insert(api: &Api, table_and_columns: &str, rows: Vec<Vec<Value>>) {
    let mut tx = api.server.platform.db.pool().begin().await.unwrap();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let width = chunk[0].len();
        let values: Vec<String> = (0..chunk.len())
            .map(|row| {
                let marks: Vec<String> = (1..=width).map(|col| format!("${}", row * width + col)).collect();
                format!("({})", marks.join(", "))
            })
            .collect();
        let sql = format!("INSERT INTO {table_and_columns} VALUES {}", values.join(", "));
        let mut query = sqlx::query(&sql);
        for value in chunk.iter().flatten() {
            query = match value {
                Value::Number(n) => query.bind(n.as_i64().unwrap()),
                Value::Null => query.bind(Option::<String>::None),
                Value::String(s) => query.bind(s.clone()),
                other => query.bind(other.to_string()),
            };
        }
        query.execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// `NAMESPACES` namespaces (owned by `u0`..`u9` in turn), the first one created through the API.
async fn seed_namespaces(api: &Api) -> Vec<String> {
    let lab = api.namespace("u0", "lab", &[]).await;
    let mut namespaces = vec![lab];
    let mut rows = Vec::new();
    let mut owners = Vec::new();
    for n in 1..NAMESPACES {
        let id = format!("5eedn{n}");
        rows.push(vec![
            Value::from(id.clone()),
            Value::from(format!("ns-{n:04}")),
            Value::from(0),
            Value::from(1_700_000_000 + n as i64),
        ]);
        owners.push(vec![
            Value::from(id.clone()),
            Value::from(format!("u{}", n % USERS)),
            Value::from("owner"),
            Value::from(0),
        ]);
        namespaces.push(id);
    }
    bulk_insert(api, "deploy_namespaces (id, name, \"freeze\", created_at)", rows).await;
    bulk_insert(
        api,
        "deploy_namespace_users (namespace_id, uid, role, position)",
        owners,
    )
    .await;
    namespaces
}

/// `WITH RECURSIVE` rows numbered 0..count, then `insert` selecting from them (both engines).
async fn insert_numbered(api: &Api, count: usize, insert: &str, binds: &[String]) {
    let sql = format!("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {count}) {insert}");
    let mut query = sqlx::query(&sql);
    for value in binds {
        query = query.bind(value.clone());
    }
    query.execute(api.server.platform.db.pool()).await.unwrap();
}

/// The namespace of row `i`: the first namespace for every tenth row, else one of the others.
const NAMESPACE_OF_ROW: &str = "CASE WHEN i % 10 = 0 THEN $1 ELSE '5eedn' || (i % 100) END";

/// `count` catalogue objects, a quarter of each kind, spread over the namespaces, half public:
/// copies of one object of each kind created through the API in the first namespace.
async fn seed_catalogue(api: &Api, namespaces: &[String], count: usize) {
    let lab = &namespaces[0];
    let recipe = api.create(lab, "recipe", "u0", recipe_body("proto-recipe", true)).await;
    let template = api
        .create(lab, "template", "u0", template_body("proto-template", true))
        .await;
    api.create(lab, "app", "u0", app_body("proto-app", true, &template, &recipe))
        .await;
    api.create(lab, "endpoint", "u0", endpoint_body("proto-endpoint", true))
        .await;
    for (table, prototype, extra) in [
        ("deploy_recipes", "proto-recipe", ""),
        ("deploy_templates", "proto-template", ""),
        ("deploy_apps", "proto-app", "template_id"),
        ("deploy_endpoints", "proto-endpoint", "kind"),
    ] {
        let extra_select = if extra.is_empty() {
            String::new()
        } else {
            format!(", {extra}")
        };
        let row = sqlx::query(&format!(
            "SELECT body{extra_select} FROM {table} WHERE namespace_id = $1"
        ))
        .bind(lab.clone())
        .fetch_one(api.server.platform.db.pool())
        .await
        .unwrap();
        let mut binds = vec![
            lab.clone(),
            row.try_get::<String, _>("body").unwrap(),
            format!("\"{prototype}\""),
        ];
        let prefix = table.trim_start_matches("deploy_");
        let name = format!("'{prefix}-' || i");
        let mut values = format!(
            "'5eedc' || i, {NAMESPACE_OF_ROW}, {name}, i % 2, 0, 1700000000 + i, replace($2, $3, '\"' || {name} || '\"')"
        );
        if !extra.is_empty() {
            binds.push(row.try_get::<String, _>(extra).unwrap());
            values.push_str(", $4");
        }
        insert_numbered(
            api,
            count / 4,
            &format!("INSERT INTO {table} (id, namespace_id, name, public, frozen, ts, body{extra_select}) SELECT {values} FROM n"),
            &binds,
        )
        .await;
    }
}

/// `count` runs of `USERS` users, a tenth of them in the first namespace, the rest spread.
async fn seed_runs(api: &Api, namespaces: &[String], count: usize) {
    let insert = format!(
        "INSERT INTO deploy_runs (id, namespace_id, app_id, endpoint_id, uid, name, description, status, inputs, \
         template, variables, deployment, outputs, error, events, created_at, status_at) \
         SELECT '5eedr' || i, {NAMESPACE_OF_ROW}, 'app', 'endpoint', 'u' || (i % {USERS}), 'run-' || i, '', \
         CASE i % 4 WHEN 0 THEN 'deploy_success' WHEN 1 THEN 'destroy_success' WHEN 2 THEN 'deploy_failure' \
         ELSE 'deploy_pending' END, '{{}}', '', '{{}}', '', '', '', '[]', 1700000000 + i, 1700000000 + i FROM n"
    );
    insert_numbered(api, count, &insert, &[namespaces[0].clone()]).await;
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

async fn measure(api: &Api, engine: Engine, user: &str, path: &str, shown: &str, requests: usize) {
    for _ in 0..3 {
        let reply = api.get(path, user).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    }
    let mut times = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        let reply = api.get(path, user).await;
        times.push(started.elapsed());
        assert_eq!(reply.status, 200, "{path}");
    }
    times.sort();
    let pick = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "| {engine:?} | `GET {shown}` as {user} | {:.2} | {:.2} |",
        ms(pick(0.5)),
        ms(pick(0.99))
    );
}

#[tokio::main]
async fn main() {
    let runs = env_count("GOT_BENCH_RUNS", 100_000);
    let catalogue = env_count("GOT_BENCH_CATALOGUE", 10_000);
    let requests = env_count("GOT_BENCH_REQUESTS", 200);
    println!("{runs} runs, {catalogue} catalogue objects, {NAMESPACES} namespaces; {requests} requests per line\n");
    println!("| engine | route (first page) | p50 ms | p99 ms |");
    println!("|---|---|---|---|");
    for engine in goterra_testing::db::ENGINES {
        let api = Api::start(engine).await;
        let seeding = Instant::now();
        let namespaces = seed_namespaces(&api).await;
        seed_catalogue(&api, &namespaces, catalogue).await;
        seed_runs(&api, &namespaces, runs).await;
        if engine == Engine::Postgres {
            sqlx::query("ANALYZE")
                .execute(api.server.platform.db.pool())
                .await
                .unwrap();
        }
        eprintln!("{engine:?}: seeded in {:.1} s", seeding.elapsed().as_secs_f64());
        let lab = &namespaces[0];
        let mut routes = vec![
            ("admin", "/deploy/ns".to_string()),
            ("u3", "/deploy/ns".to_string()),
            ("admin", "/deploy/run?all=1".to_string()),
            ("u3", "/deploy/run".to_string()),
            ("u3", "/deploy/run?all=1".to_string()),
            ("u3", "/deploy/run?status=deploy_failure".to_string()),
            (
                "u3",
                "/deploy/run?all=1&status=deploy_success,deploy_failure".to_string(),
            ),
            ("admin", "/deploy/run?all=1&status=deploy_failure".to_string()),
            ("admin", format!("/deploy/ns/{lab}/run")),
            ("u0", format!("/deploy/ns/{lab}/run")),
        ];
        for (segment, many) in [
            ("recipe", "recipes"),
            ("template", "templates"),
            ("app", "apps"),
            ("endpoint", "endpoints"),
        ] {
            routes.push(("u0", format!("/deploy/ns/{lab}/{segment}")));
            routes.push(("u3", format!("/deploy/{many}")));
        }
        for (user, path) in routes {
            let shown = path.replace(lab.as_str(), "{ns}");
            measure(&api, engine, user, &path, &shown, requests).await;
        }
        api.server.stop().await;
    }
}
