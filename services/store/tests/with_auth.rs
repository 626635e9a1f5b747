//! The store next to the real auth service, as in `goterra up`: API keys are checked by auth,
//! and a deployment token is refused by auth's routes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use goterra_core::Sensitive;
use goterra_testing::TestServer;
use goterra_testing::db::ENGINES;

const ADMIN_KEY: &str = "admin-key-for-store-tests-0123456789";

#[tokio::test]
async fn deployment_tokens_are_refused_by_auth_and_api_keys_are_checked_by_it() {
    for engine in ENGINES {
        let server = TestServer::start_with(engine, &[goterra_auth::spec(), goterra_store::spec()], |config| {
            config.admin_apikey = Some(Sensitive::new(ADMIN_KEY.to_string()));
        })
        .await
        .unwrap();
        let http = reqwest::Client::new();
        let created: serde_json::Value = http
            .post(format!("{}/store", server.url))
            .header("X-API-Key", ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (id, token) = (created["id"].as_str().unwrap(), created["token"].as_str().unwrap());
        // The creator's API key, checked by auth, reaches the deployment.
        let status = http
            .get(format!("{}/store/{id}", server.url))
            .header("X-API-Key", ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200, "{engine:?}");
        let status = http
            .get(format!("{}/store/{id}", server.url))
            .header("X-API-Key", "not-a-key")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 401, "{engine:?}");
        // The deployment token is worth nothing to auth: no session, no renewal, no API key.
        for route in ["/auth/me", "/auth/token", "/auth/api", "/auth/user"] {
            let status = http
                .get(format!("{}{route}", server.url))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status.as_u16(), 401, "{engine:?}: {route}");
        }
        let status = http
            .get(format!("{}/store/{id}", server.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200, "{engine:?}");
    }
}
