//! acct end to end over real deploy on SQLite and PostgreSQL: runs driven through deploy's
//! agent routes (as the run agent drives them), lifecycle events on the in-process bus, the
//! state read through deploy's service route, and acct's HTTP API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Env, state};
use goterra_acct::ledger::Outcome;
use goterra_core::Event;
use goterra_testing::db::ENGINES;
use serde_json::Value;
use std::time::Duration;

fn resources(report: &Value) -> &Vec<Value> {
    report["resources"].as_array().unwrap()
}

fn open_count(report: &Value) -> usize {
    resources(report).iter().filter(|r| r["end"].is_null()).count()
}

#[tokio::test]
async fn every_instance_is_billed_from_deploy_to_destroy_with_endpoint_prices() {
    for engine in ENGINES {
        let env = Env::start(engine).await;
        let acct = env.start_acct(&env.acct_yaml()).await;
        let run = env.new_run("bob").await;
        // Three workers (count), a master in a child module, a 20 GB disk, an unbilled file.
        env.deploy(&run, state(3, "big", 20)).await;
        let report = env.run_report_when(&acct, &run, |r| open_count(r) == 5).await;
        assert_eq!(report["uid"], "bob");
        let addresses: Vec<&str> = resources(&report)
            .iter()
            .map(|r| r["address"].as_str().unwrap())
            .collect();
        for address in [
            "module.head.null_resource.master",
            "null_resource.worker[0]",
            "null_resource.worker[1]",
            "null_resource.worker[2]",
            "test_disk.data",
        ] {
            assert!(addresses.contains(&address), "{address} in {addresses:?}");
        }
        tokio::time::sleep(Duration::from_millis(2100)).await;
        env.destroy(&run, None, "destroy_success").await;
        let report = env.run_report_when(&acct, &run, |r| open_count(r) == 0).await;
        let history = env.history(&run).await;
        let up = history[1] - history[0];
        assert!(up >= 2, "deployed at {}, destroyed at {}", history[0], history[1]);
        for resource in resources(&report) {
            assert_eq!(resource["start"], history[0]);
            assert_eq!(resource["end"], history[1]);
            assert_eq!(resource["seconds"], up);
        }
        // The endpoint's price (2 for `big`) overrides the default (1); the disk is per GB.
        let expected = 4.0 * 2.0 * up as f64 + 20.0 * 0.01 * up as f64;
        let cost = report["cost"].as_f64().unwrap();
        assert!((cost - expected).abs() < 1e-9, "{cost} != {expected}");
        let disk = report["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["resource"] == "test_disk")
            .unwrap();
        assert_eq!(disk["unit_seconds"].as_f64().unwrap(), 20.0 * up as f64);
        acct.stop().await;
        env.server.stop().await;
    }
}

#[tokio::test]
async fn redelivered_events_restarts_and_events_missed_while_stopped_never_count_twice() {
    for engine in ENGINES {
        let env = Env::start(engine).await;
        let acct = env.start_acct(&env.acct_yaml()).await;
        let run = env.new_run("alice").await;
        env.deploy(&run, state(2, "small", 0)).await;
        env.run_report_when(&acct, &run, |r| open_count(r) == 3).await;
        let rows = env.interval_rows().await;
        // The same event again (a redelivery) and a resync change nothing.
        let event = Event::new("run_deploy_success", "alice", run.clone());
        for _ in 0..3 {
            assert_eq!(acct.accountant.handle_event(&event).await.unwrap(), Outcome::UpToDate);
        }
        acct.accountant.resync().await.unwrap();
        assert_eq!(env.interval_rows().await, rows);

        // acct stops; the run is destroyed meanwhile; a restarted acct catches up from deploy's
        // history, at the destroy's own time.
        acct.stop().await;
        env.destroy(&run, None, "destroy_success").await;
        let acct = env.start_acct(&env.acct_yaml()).await;
        let report = env.run_report_when(&acct, &run, |r| open_count(r) == 0).await;
        let history = env.history(&run).await;
        for resource in resources(&report) {
            assert_eq!(resource["end"], history[1]);
        }
        assert_eq!(env.interval_rows().await, rows);
        // And once more after another restart.
        acct.stop().await;
        let acct = env.start_acct(&env.acct_yaml()).await;
        acct.accountant.resync().await.unwrap();
        assert_eq!(env.interval_rows().await, rows);
        acct.stop().await;
        env.server.stop().await;
    }
}

#[tokio::test]
async fn concurrent_runs_partial_destroys_and_failed_deploys_are_billed_resource_by_resource() {
    for engine in ENGINES {
        let env = Env::start(engine).await;
        let acct = env.start_acct(&env.acct_yaml()).await;
        // Two runs of one namespace deployed at the same time are both billed in full.
        let (first, second) = (env.new_run("alice").await, env.new_run("bob").await);
        tokio::join!(
            env.deploy(&first, state(2, "small", 0)),
            env.deploy(&second, state(2, "small", 0))
        );
        env.run_report_when(&acct, &first, |r| open_count(r) == 3).await;
        env.run_report_when(&acct, &second, |r| open_count(r) == 3).await;
        let reply = env
            .acct(&acct, &format!("/acct/resources/ns/{}", env.ns), Some("bob"))
            .await;
        let listed = reply.body["resources"].as_array().unwrap();
        assert_eq!(listed.len(), 2, "{}", reply.body);
        for entry in listed {
            assert_eq!(entry["Resources"][0]["Quantity"], 3.0);
            assert_eq!(entry["Resources"][0]["Kind"], "small");
            assert_eq!(entry["Namespace"], env.ns.as_str());
        }

        // A destroy that fails after removing two of three resources closes those two only.
        env.destroy(&first, Some(state(0, "small", 0)), "destroy_failure").await;
        let report = env.run_report_when(&acct, &first, |r| open_count(r) == 1).await;
        let open: Vec<_> = resources(&report).iter().filter(|r| r["end"].is_null()).collect();
        assert_eq!(open[0]["address"], "module.head.null_resource.master");

        // A deploy that fails after creating resources is billed until they are destroyed.
        let failed = env.new_run("alice").await;
        env.agent_finishes(&failed, Some(state(1, "small", 0)), "deploy_failure")
            .await;
        env.run_report_when(&acct, &failed, |r| open_count(r) == 2).await;
        env.destroy(&failed, None, "destroy_success").await;
        env.run_report_when(&acct, &failed, |r| open_count(r) == 0).await;

        // Per-user usage: alice started two of the three runs.
        let reply = env.acct(&acct, "/acct/v2/user/alice", Some("alice")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["runs"].as_array().unwrap().len(), 2);
        acct.stop().await;
        env.server.stop().await;
    }
}

#[tokio::test]
async fn outsiders_get_403_and_bad_input_gets_a_clear_4xx() {
    for engine in ENGINES {
        let env = Env::start(engine).await;
        let acct = env.start_acct(&env.acct_yaml()).await;
        let run = env.new_run("alice").await;
        env.deploy(&run, state(1, "small", 0)).await;
        env.run_report_when(&acct, &run, |r| open_count(r) == 2).await;
        let ns = env.ns.clone();
        let routes = [
            format!("/acct/resources/ns/{ns}"),
            format!("/acct/ns/{ns}"),
            format!("/acct/ns/{ns}/from/0"),
            format!("/acct/ns/{ns}/from/1700000000/to/1800000000?days=1"),
            format!("/acct/v2/ns/{ns}?step=day"),
            format!("/acct/v2/ns/{ns}/run/{run}"),
            "/acct/v2/user/alice".to_string(),
            "/acct/resources".to_string(),
        ];
        for route in &routes {
            assert_eq!(env.acct(&acct, route, Some("eve")).await.status, 403, "eve: {route}");
            assert_eq!(env.acct(&acct, route, None).await.status, 401, "anonymous: {route}");
            assert_eq!(
                env.acct(&acct, route, Some("admin")).await.status,
                200,
                "admin: {route}"
            );
        }
        // Members see their namespace but not everyone's nor another user's.
        assert_eq!(env.acct(&acct, &routes[0], Some("bob")).await.status, 200);
        assert_eq!(env.acct(&acct, "/acct/resources", Some("alice")).await.status, 403);
        assert_eq!(env.acct(&acct, "/acct/v2/user/alice", Some("bob")).await.status, 403);

        for (route, status) in [
            (format!("/acct/ns/{ns}/from/yesterday"), 400),
            (format!("/acct/ns/{ns}/from/-5"), 400),
            (format!("/acct/ns/{ns}/from/100/to/50"), 400),
            (format!("/acct/ns/{ns}/from/0?days=2"), 400),
            (format!("/acct/ns/{ns}/from/1'%20or%201=1"), 400),
            (format!("/acct/v2/ns/{ns}?from=abc"), 400),
            (format!("/acct/v2/ns/{ns}?from=10&to=10"), 400),
            (format!("/acct/v2/ns/{ns}?step=week"), 400),
            (format!("/acct/v2/ns/{ns}?from=0&to=40000000000&step=hour"), 400),
            ("/acct/ns/nope".to_string(), 404),
            ("/acct/v2/ns/nope".to_string(), 404),
            (format!("/acct/v2/ns/{ns}/run/nope"), 404),
        ] {
            let reply = env.acct(&acct, &route, Some("admin")).await;
            assert_eq!(reply.status, status, "{route}: {}", reply.body);
            assert!(reply.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{route}");
        }
        // Users and agents cannot use deploy's service routes; acct's credential is refused
        // everywhere else.
        let reply = env
            .call(
                reqwest::Method::GET,
                &format!("/deploy/service/run/{run}/usage"),
                "admin",
                None,
            )
            .await;
        assert_eq!(reply.status, 403);
        let service = env.server.platform.tokens.issue(&goterra_core::Claims::for_service(
            "acct",
            goterra_core::token::unix_now() + 60,
        ));
        let response = env
            .client
            .get(format!("{}/deploy/ns/{ns}", env.server.url))
            .bearer_auth(&service)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let response = env
            .client
            .get(format!(
                "{}/deploy/service/run/{run}/usage?attributes=admin_pass",
                env.server.url
            ))
            .bearer_auth(&service)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status().as_u16(),
            400,
            "credential-like attributes are refused"
        );
        acct.stop().await;
        env.server.stop().await;
    }
}

#[tokio::test]
async fn the_original_routes_answer_in_the_original_shapes() {
    for engine in ENGINES {
        let env = Env::start(engine).await;
        let acct = env.start_acct(&env.acct_yaml()).await;
        let run = env.new_run("alice").await;
        env.deploy(&run, state(1, "small", 0)).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        env.destroy(&run, None, "destroy_success").await;
        env.run_report_when(&acct, &run, |r| open_count(r) == 0).await;
        let history = env.history(&run).await;
        let up = (history[1] - history[0]) as f64;
        let ns = env.ns.clone();

        let total = env.acct(&acct, &format!("/acct/ns/{ns}"), Some("alice")).await.body;
        let result = &total["acct"][0];
        assert_eq!(result["statement_id"], 0);
        assert_eq!(result["Messages"], Value::Null);
        let series = &result["Series"][0];
        assert_eq!(series["name"], "goterra.acct");
        assert_eq!(series["tags"]["resource"], "null_resource");
        assert_eq!(series["tags"]["kind"], "small");
        assert_eq!(
            series["columns"],
            serde_json::json!(["time", "quantity", "duration", "cost"])
        );
        assert_eq!(series["values"][0][0], "1970-01-01T00:00:00Z");
        assert_eq!(series["values"][0][1], 2.0);
        assert_eq!(series["values"][0][2].as_f64().unwrap(), 2.0 * up);
        assert_eq!(
            series["values"][0][3].as_f64().unwrap(),
            2.0 * up * 0.5,
            "the UI reads the cost at [3]"
        );

        let from = history[0] - history[0] % 86_400;
        let month = env
            .acct(&acct, &format!("/acct/ns/{ns}/from/{from}"), Some("alice"))
            .await
            .body;
        let series = &month["acct"][0]["Series"][0];
        assert_eq!(
            series["columns"],
            serde_json::json!(["time", "quantity", "duration", "max", "cost"])
        );
        assert_eq!(series["values"][0][3], 2.0, "max: two at once");
        assert_eq!(
            series["values"][0][4].as_f64().unwrap(),
            2.0 * up * 0.5,
            "the UI reads the cost at [4]"
        );
        let days = env
            .acct(
                &acct,
                &format!("/acct/ns/{ns}/from/{from}/to/{}?days=1", from + 2 * 86_400),
                Some("alice"),
            )
            .await
            .body;
        let values = days["acct"][0]["Series"][0]["values"].as_array().unwrap();
        assert_eq!(values.len(), 2, "one row per day");
        // Before the run: nothing.
        let before = env
            .acct(&acct, &format!("/acct/ns/{ns}/from/0/to/{}", history[0]), Some("alice"))
            .await
            .body;
        assert_eq!(before["acct"][0]["Series"], serde_json::json!([]));
        acct.stop().await;
        env.server.stop().await;
    }
}

#[tokio::test]
async fn a_price_change_applies_from_when_it_is_loaded() {
    for engine in ENGINES {
        let env = Env::start(engine).await;
        let acct = env.start_acct(&env.acct_yaml()).await;
        let run = env.new_run("alice").await;
        env.deploy(&run, state(0, "small", 0)).await;
        env.run_report_when(&acct, &run, |r| open_count(r) == 1).await;
        acct.stop().await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let cheaper = env.acct_yaml().replace("small: 0.5", "small: 0.125");
        let acct = env.start_acct(&cheaper).await;
        let report = env.run_report_when(&acct, &run, |r| resources(r).len() == 2).await;
        let intervals = resources(&report);
        assert_eq!(intervals[0]["price"], 0.5);
        assert!(intervals[0]["end"].is_i64());
        assert_eq!(intervals[1]["price"], 0.125);
        assert_eq!(intervals[1]["start"], intervals[0]["end"]);
        acct.stop().await;
        env.server.stop().await;
    }
}
