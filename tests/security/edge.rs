//! Findings 3 to 6 and 8: the text rule at the edge (NUL never reaches PostgreSQL), HTTP
//! limits against slow clients, login throttling, private data dir files, JSON error bodies.

use crate::support::{ADMIN_KEY, Client, Cred};
use goterra_core::Sensitive;
use goterra_testing::TestServer;
use goterra_testing::db::ENGINES;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn platform(engine: goterra_db::Engine, configure: impl FnOnce(&mut goterra_core::Config)) -> TestServer {
    TestServer::start_with(
        engine,
        &[goterra_auth::spec(), goterra_deploy::spec(), goterra_store::spec()],
        |config| {
            config.admin_apikey = Some(Sensitive::new(ADMIN_KEY.into()));
            configure(config);
        },
    )
    .await
    .unwrap()
}

fn message_of(answer: &Value) -> &str {
    answer["message"]
        .as_str()
        .unwrap_or_else(|| panic!("not a JSON error body: {answer}"))
}

#[tokio::test]
async fn nul_and_control_characters_are_refused_with_400_on_both_engines() {
    for engine in ENGINES {
        let server = platform(engine, |_| {}).await;
        let base = server.url.clone();
        let client = Client::default();
        let key = client.register(&base, "alice", false).await;
        let cases: Vec<(&str, String, Cred, Option<Value>)> = vec![
            (
                "POST",
                format!("{base}/auth/login"),
                Cred::None,
                Some(json!({"uid": "ad\u{0}min", "password": "x"})),
            ),
            ("GET", format!("{base}/deploy/ns/%00"), Cred::None, None),
            ("GET", format!("{base}/deploy/ns/%00"), Cred::Key(&key), None),
            ("GET", format!("{base}/deploy/ns?skip=%00"), Cred::Key(&key), None),
            (
                "POST",
                format!("{base}/auth/register"),
                Cred::Key(ADMIN_KEY),
                Some(json!({"uid": "bob", "password": "bob-password-1", "email": "b\u{0}@example.org"})),
            ),
            (
                "PUT",
                format!("{base}/auth/user/alice"),
                Cred::Key(&key),
                Some(json!({"pub_key": "ssh-ed25519 AAAA\u{0}"})),
            ),
            (
                "POST",
                format!("{base}/deploy/ns"),
                Cred::Key(ADMIN_KEY),
                Some(json!({"name": "lab\u{1b}[31m"})),
            ),
            ("POST", format!("{base}/store"), Cred::Key(&key), None),
        ];
        for (method, url, cred, body) in cases {
            if url.ends_with("/store") {
                // The store value rule: a NUL in a value is refused, newlines are kept.
                let (status, created) = client.call(method, &url, cred, body).await;
                assert_eq!(status, StatusCode::OK);
                let dep = format!("{base}/store/{}", created["id"].as_str().unwrap());
                let (status, answer) = client
                    .call(
                        "PUT",
                        &dep,
                        Cred::Key(&key),
                        Some(json!({"key": "k", "value": "a\u{0}b"})),
                    )
                    .await;
                assert_eq!(status, StatusCode::BAD_REQUEST, "{engine:?}: {answer}");
                let (status, _) = client
                    .call(
                        "PUT",
                        &dep,
                        Cred::Key(&key),
                        Some(json!({"key": "k", "value": "line 1\nline 2\t."})),
                    )
                    .await;
                assert_eq!(status, StatusCode::OK);
                let (_, answer) = client.call("GET", &format!("{dep}/k"), Cred::Key(&key), None).await;
                assert_eq!(answer["value"], "line 1\nline 2\t.");
                continue;
            }
            let (status, answer) = client.call(method, &url, cred, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{engine:?} {method} {url}: {answer}");
            assert!(message_of(&answer).contains("control characters"), "{answer}");
        }
        // Nothing was written: bob does not exist, alice's key is unchanged.
        let (status, _) = client
            .call("GET", &format!("{base}/auth/user/bob"), Cred::Key(ADMIN_KEY), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, me) = client
            .call("GET", &format!("{base}/auth/me"), Cred::Key(&key), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["pub_key"], "");
        server.stop().await;
    }
}

#[tokio::test]
async fn framework_errors_are_json_with_their_status() {
    let server = platform(goterra_db::Engine::Sqlite, |_| {}).await;
    let base = server.url.clone();
    let client = Client::default();
    let key = client.register(&base, "alice", false).await;

    // 405 keeps the right Allow header.
    let response = client.http.patch(format!("{base}/auth/login")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    let answer: Value = response.json().await.unwrap();
    assert!(message_of(&answer).contains("POST"), "{answer}");

    // 413 from the body limit.
    let huge = "x".repeat(17 * 1024 * 1024);
    let response = client
        .http
        .put(format!("{base}/store/whatever"))
        .header("X-API-Key", &key)
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let _: Value = response.json().await.unwrap();

    // 400 for a path that is not UTF-8 once decoded, 404 for an unknown route.
    for (path, status) in [
        ("/deploy/ns/%ff", StatusCode::BAD_REQUEST),
        ("/nowhere", StatusCode::NOT_FOUND),
    ] {
        let (got, answer) = client
            .call("GET", &format!("{base}{path}"), Cred::Key(&key), None)
            .await;
        assert_eq!(got, status, "{path}");
        message_of(&answer);
    }

    // 414 and 431.
    let long = format!("{base}/deploy/ns/{}", "a".repeat(goterra_core::edge::MAX_URI_BYTES));
    let (status, answer) = client.call("GET", &long, Cred::Key(&key), None).await;
    assert_eq!(status, StatusCode::URI_TOO_LONG);
    message_of(&answer);
    let mut request = client.http.get(format!("{base}/auth/me"));
    for i in 0..=goterra_core::edge::MAX_HEADERS {
        request = request.header(format!("x-filler-{i}"), "1");
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let _: Value = response.json().await.unwrap();
    server.stop().await;
}

/// A refused request keeps its connection alive: its body is read before the answer, so that
/// hyper does not close the connection with the body half read, which resets it — a proxy in
/// front (Traefik) would lose the answer, or send the next request on the closing connection,
/// and answer 502. A body declared over the limit is refused at once, with `Connection: close`.
#[tokio::test]
async fn refused_requests_keep_their_connection_unless_their_body_is_too_large() {
    let server = platform(goterra_db::Engine::Sqlite, |_| {}).await;
    let addr = server.url.trim_start_matches("http://").to_string();
    let request = |method: &str, path: &str, length: usize| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
    };
    // Refused by the edge (a control character in the path), by the token check of a route
    // whose body the edge does not check (an agent's call), and of a GET with a body; each
    // followed on the same connection by a health check.
    for (method, path) in [
        ("POST", "/deploy/ns/a%01b"),
        ("PUT", "/deploy/agent/run/0123456789abcdef01234567/state"),
        ("GET", "/auth/me"),
    ] {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let body = format!("{{\"filler\": \"{}\"}}", "x".repeat(100_000));
        let first = format!("{}{body}", request(method, path, body.len()));
        stream.write_all(first.as_bytes()).await.unwrap();
        stream
            .write_all(b"GET /auth HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answers = Vec::new();
        let mut buffer = [0u8; 4096];
        while answers.windows(9).filter(|w| w == b"HTTP/1.1 ").count() < 2 {
            let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
                .await
                .unwrap_or_else(|_| panic!("{method} {path}: no second answer"))
                .unwrap();
            assert!(
                read > 0,
                "{method} {path}: closed after: {}",
                String::from_utf8_lossy(&answers)
            );
            answers.extend_from_slice(&buffer[..read]);
        }
        let answers = String::from_utf8_lossy(&answers).to_ascii_lowercase();
        assert!(answers.starts_with("http/1.1 4"), "{method} {path}: {answers}");
        assert!(!answers.contains("connection: close"), "{method} {path}: {answers}");
    }
    // Declared over the limit: refused before the body is sent, and the connection closes.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = request("POST", "/deploy/ns", 64 * 1024 * 1024);
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer)).await;
    assert!(read.is_ok(), "the connection must close after the answer");
    let answer = answer.to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 413"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    server.stop().await;
}

async fn raw_get(addr: &str, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer).await;
    answer
}

/// Newline and tab are multi-line text: allowed in scripts, descriptions, Terraform template
/// bodies, store values and SSH public keys, refused with 400 in one-line fields (names, ids,
/// emails, store keys, input values), the path and the query — the same on both engines.
#[tokio::test]
async fn newline_and_tab_only_in_multiline_fields_on_both_engines() {
    for engine in ENGINES {
        let server = platform(engine, |_| {}).await;
        let base = server.url.clone();
        let client = Client::default();
        let key = client.register(&base, "alice", false).await;
        let (status, answer) = client
            .call(
                "POST",
                &format!("{base}/deploy/ns"),
                Cred::Key(ADMIN_KEY),
                Some(json!({"name": "lab"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let ns = answer["ns"].as_str().unwrap().to_string();
        let (_, created) = client
            .call("POST", &format!("{base}/store"), Cred::Key(&key), None)
            .await;
        let dep = format!("{base}/store/{}", created["id"].as_str().unwrap());

        let recipe = json!({"name": "boot", "description": "Two\nlines\tand a tab", "script": "#!/bin/sh\n\techo hi\r\n", "base": ["debian"]});
        let accepted: Vec<(&str, String, Cred, Value)> = vec![
            (
                "POST",
                format!("{base}/deploy/ns/{ns}/recipe"),
                Cred::Key(ADMIN_KEY),
                recipe,
            ),
            (
                "PUT",
                dep.clone(),
                Cred::Key(&key),
                json!({"key": "cert", "value": "-----BEGIN-----\nabc\n"}),
            ),
            (
                "PUT",
                format!("{base}/auth/user/alice"),
                Cred::Key(&key),
                json!({"pub_key": "ssh-ed25519 AAAA a@b\n"}),
            ),
        ];
        for (method, url, cred, body) in accepted {
            let (status, answer) = client.call(method, &url, cred, Some(body)).await;
            assert!(status.is_success(), "{engine:?} {method} {url}: {status} {answer}");
        }

        let refused: Vec<(&str, String, Cred, Option<Value>)> = vec![
            (
                "POST",
                format!("{base}/deploy/ns"),
                Cred::Key(ADMIN_KEY),
                Some(json!({"name": "two\nlines"})),
            ),
            (
                "PUT",
                format!("{base}/deploy/ns/{ns}"),
                Cred::Key(ADMIN_KEY),
                Some(json!({"name": "tab\there"})),
            ),
            (
                "POST",
                format!("{base}/deploy/ns/{ns}/recipe"),
                Cred::Key(ADMIN_KEY),
                Some(json!({"name": "bad\nname", "script": "echo", "base": ["debian"]})),
            ),
            (
                "PUT",
                format!("{base}/auth/user/alice"),
                Cred::Key(&key),
                Some(json!({"email": "a@b.org\nBcc: x"})),
            ),
            (
                "PUT",
                dep.clone(),
                Cred::Key(&key),
                Some(json!({"key": "two\nlines", "value": "v"})),
            ),
            (
                "POST",
                format!("{base}/auth/login"),
                Cred::None,
                Some(json!({"uid": "alice\n", "password": "x"})),
            ),
            ("GET", format!("{base}/deploy/ns/a%0Ab"), Cred::Key(&key), None),
            ("GET", format!("{base}/deploy/ns?skip=1%09"), Cred::Key(&key), None),
        ];
        for (method, url, cred, body) in refused {
            let (status, answer) = client.call(method, &url, cred, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{engine:?} {method} {url}: {answer}");
            assert!(message_of(&answer).contains("control characters"), "{answer}");
        }

        // What was refused left nothing behind; what was accepted reads back as written.
        let (_, namespaces) = client
            .call("GET", &format!("{base}/deploy/ns"), Cred::Key(ADMIN_KEY), None)
            .await;
        assert_eq!(namespaces["ns"].as_array().unwrap().len(), 1, "{namespaces}");
        assert_eq!(namespaces["ns"][0]["name"], "lab");
        let (_, me) = client
            .call("GET", &format!("{base}/auth/me"), Cred::Key(&key), None)
            .await;
        assert_eq!(me["pub_key"], "ssh-ed25519 AAAA a@b\n");
        assert_eq!(me["email"], "alice@example.org");
        let (_, value) = client.call("GET", &format!("{dep}/cert"), Cred::Key(&key), None).await;
        assert_eq!(value["value"], "-----BEGIN-----\nabc\n");
        let (_, recipes) = client
            .call(
                "GET",
                &format!("{base}/deploy/ns/{ns}/recipe"),
                Cred::Key(ADMIN_KEY),
                None,
            )
            .await;
        assert_eq!(recipes["recipes"].as_array().unwrap().len(), 1, "{recipes}");
        assert_eq!(recipes["recipes"][0]["script"], "#!/bin/sh\n\techo hi\r\n");
        server.stop().await;
    }
}

#[tokio::test]
async fn connections_are_capped_with_room_kept_for_health_checks() {
    let server = platform(goterra_db::Engine::Sqlite, |config| {
        config.http.max_connections = 8;
        config.http.health_connections = 2;
        config.http.header_timeout_secs = 120;
    })
    .await;
    let addr = server.url.trim_start_matches("http://").to_string();
    // Six silent connections (nothing sent) leave only the room kept for health checks.
    let mut silent = Vec::new();
    for _ in 0..6 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // Health, readiness and metrics are what load balancers and monitors ask under load.
    for path in ["/auth", "/auth/ready", "/deploy/metrics"] {
        let answer = raw_get(&addr, path).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
    }
    let other = raw_get(&addr, "/auth/me").await;
    assert!(other.starts_with("HTTP/1.1 503"), "{other}");
    assert!(other.contains("\"message\""), "{other}");
    // Beyond the cap, connections are closed at once instead of piling up.
    for _ in 0..2 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let refused = raw_get(&addr, "/auth").await;
    assert!(refused.is_empty(), "{refused}");
    drop(silent);
    server.stop().await;
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_long_polls_still_work() {
    let server = platform(goterra_db::Engine::Sqlite, |config| {
        config.http.header_timeout_secs = 1;
    })
    .await;
    let addr = server.url.trim_start_matches("http://").to_string();
    // A client that never finishes its headers is cut after the header timeout.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /auth HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut buffer = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(30), slow.read(&mut buffer)).await;
    assert!(read.is_ok(), "a slow client must be cut off");

    // A long-poll on the store waits longer than the header timeout and is answered.
    let client = Client::default();
    let key = client.register(&server.url, "alice", false).await;
    let (_, created) = client
        .call("POST", &format!("{}/store", server.url), Cred::Key(&key), None)
        .await;
    let dep = format!("{}/store/{}", server.url, created["id"].as_str().unwrap());
    let waiter = {
        let client = client.clone();
        let dep = dep.clone();
        let key = key.clone();
        tokio::spawn(async move {
            client
                .call("GET", &format!("{dep}/late?wait=60"), Cred::Key(&key), None)
                .await
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, _) = client
        .call(
            "PUT",
            &dep,
            Cred::Key(&key),
            Some(json!({"key": "late", "value": "here"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = waiter.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["value"], "here");
    server.stop().await;
}

#[tokio::test]
async fn password_logins_are_throttled_per_uid_with_retry_after() {
    for engine in ENGINES {
        let server = platform(engine, |_| {}).await;
        let base = server.url.clone();
        let client = Client::default();
        let key = client.register(&base, "alice", false).await;
        client.register(&base, "bob", false).await;
        let mut throttled = None;
        for _ in 0..=goterra_auth::throttle::FREE_FAILURES_PER_UID + 1 {
            let response = client
                .http
                .post(format!("{base}/auth/login"))
                .json(&json!({"uid": "alice", "password": "wrong-password"}))
                .send()
                .await
                .unwrap();
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                throttled = Some(response);
                break;
            }
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let throttled = throttled.expect("repeated failures are throttled");
        let retry_after: u64 = throttled.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry_after >= 1);
        let answer: Value = throttled.json().await.unwrap();
        message_of(&answer);
        // Blocked: even the right password waits, before any hashing.
        let (status, _) = client.login(&base, "alice", "alice-password-1").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        // Other users, API keys and tokens are not affected.
        let (status, _) = client.login(&base, "bob", "bob-password-1").await;
        assert_eq!(status, StatusCode::OK);
        let (status, _) = client
            .call("GET", &format!("{base}/auth/api"), Cred::Key(&key), None)
            .await;
        assert_eq!(status, StatusCode::OK);
        server.stop().await;
    }
}

/// A password login from `forwarded_for` as a proxy on loopback relays it.
async fn login_forwarded(base: &str, forwarded_for: &str, uid: &str, password: &str) -> StatusCode {
    reqwest::Client::new()
        .post(format!("{base}/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"uid": uid, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

/// Fails logins of unknown uids (so that no uid is blocked) from `forwarded_for` until the
/// address is throttled.
async fn throttle_address(base: &str, forwarded_for: &str) {
    for attempt in 0..=goterra_auth::throttle::FREE_FAILURES_PER_ADDRESS {
        let status = login_forwarded(base, forwarded_for, &format!("nobody-{attempt}"), "wrong-password").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            return;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    panic!("{forwarded_for} was never throttled");
}

/// Behind a trusted proxy (loopback by default) failures count against the client the proxy
/// names in `X-Forwarded-For`, so one client's guesses do not lock everyone behind the proxy
/// out; with no trusted proxy, the header is ignored and the peer is the client.
#[tokio::test]
async fn failed_logins_count_per_forwarded_client_only_behind_trusted_proxies() {
    let server = platform(goterra_db::Engine::Sqlite, |_| {}).await;
    let base = server.url.clone();
    Client::default().register(&base, "alice", false).await;
    throttle_address(&base, "198.51.100.1").await;
    assert_eq!(
        login_forwarded(&base, "198.51.100.2", "alice", "alice-password-1").await,
        StatusCode::OK,
        "another client behind the same proxy is not throttled"
    );
    // A client that writes a fake first hop is still counted under the address the proxy saw.
    assert_eq!(
        login_forwarded(&base, "198.51.100.2, 198.51.100.1", "alice", "alice-password-1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    server.stop().await;

    let server = platform(goterra_db::Engine::Sqlite, |config| {
        config.http.trusted_proxies = goterra_core::forwarded::TrustedProxies::none();
    })
    .await;
    let base = server.url.clone();
    Client::default().register(&base, "alice", false).await;
    throttle_address(&base, "198.51.100.1").await;
    assert_eq!(
        login_forwarded(&base, "198.51.100.2", "alice", "alice-password-1").await,
        StatusCode::TOO_MANY_REQUESTS,
        "an untrusted peer cannot pick the address it is counted under"
    );
    server.stop().await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_dir_and_its_files_become_private_whatever_existed_before() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(data_dir.join("vms")).unwrap();
    std::fs::set_permissions(data_dir.join("vms"), std::fs::Permissions::from_mode(0o755)).unwrap();
    for file in ["goterra.db", "vms/notes", "vms/run.sh"] {
        std::fs::write(data_dir.join(file), "").unwrap();
    }
    std::fs::set_permissions(data_dir.join("goterra.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(data_dir.join("vms/notes"), std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(data_dir.join("vms/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = data_dir.clone();
    let server = TestServer::start_with(goterra_db::Engine::Sqlite, &[goterra_auth::spec()], move |config| {
        config.data_dir = dir;
        // The SQLite database in the data dir, as `goterra up` has it.
        config.database.url = None;
    })
    .await
    .unwrap();
    let mode = |path: &str| std::fs::metadata(data_dir.join(path)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(""), 0o700);
    assert_eq!(mode("vms"), 0o700);
    assert_eq!(mode("vms/notes"), 0o600);
    assert_eq!(mode("vms/run.sh"), 0o700, "executables keep their owner's execute bit");
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let expected = if entry.file_type().unwrap().is_dir() {
            0o700
        } else {
            0o600
        };
        assert_eq!(mode(&name), expected, "{name}");
    }
    assert!(data_dir.join("goterra.db").exists());
    server.stop().await;
}
