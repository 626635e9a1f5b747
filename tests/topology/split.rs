//! The production topology through Traefik (see [`crate::harness`]): the demo run, and the
//! faults an operator meets — an agent host dying mid-apply, RabbitMQ and Redis outages, a
//! deploy replica killed under load.

use crate::harness::{Topology, eventually, exclusive, is_terminal, shared_text, tools};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A resource that sleeps the first time (its marker file does not exist yet) and returns at
/// once afterwards: an apply that can be caught in the middle, then finished by another agent.
const SLOW_TF: &str = r#"
terraform {
  required_providers {
    null = { source = "hashicorp/null" }
  }
}

resource "null_resource" "slow" {
  provisioner "local-exec" {
    interpreter = ["/bin/bash", "-c"]
    environment = { MARKER = var.marker }
    command     = "if [ -e \"$MARKER\" ]; then exit 0; fi; touch \"$MARKER\"; exec sleep 600"
  }
}
"#;

/// A resource that takes a moment: runs that stay queued behind each other.
const PAUSE_TF: &str = r#"
terraform {
  required_providers {
    null = { source = "hashicorp/null" }
  }
}

resource "null_resource" "pause" {
  triggers = { marker = var.marker }
  provisioner "local-exec" {
    command = "sleep 2"
  }
}
"#;

const VMS: [&str; 3] = ["master-0", "worker-0", "worker-1"];

#[tokio::test]
async fn the_demo_deploys_and_is_destroyed_through_traefik() {
    let Some(tools) = tools() else { return };
    let _one = exclusive().await;
    let topology = Topology::start(tools).await;
    let demo = topology.load_demo().await;
    let (status, created) = topology
        .start_run(&demo.namespace, &demo.application, demo.run_request(2))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["run"].as_str().unwrap().to_string();
    let run = topology
        .wait_status(&demo.namespace, &id, "deploy_success", Duration::from_secs(120))
        .await;

    // The workers' long-polls went through Traefik to a store replica and got the master's
    // token, which the master wrote through Traefik (possibly to the other replica).
    let deployment = run["deployment"].as_str().unwrap().to_string();
    let token = shared_text(&topology.vms.join(&id), &VMS, "master_token").await;
    let (status, stored) = topology
        .call(Method::GET, &format!("/store/{deployment}/master_token"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["value"], token.as_str());
    for vm in VMS {
        let recipe = vm.split('-').next().unwrap();
        let key = format!("/store/{deployment}/status_app_cluster-{recipe}_{vm}");
        eventually(&format!("{key} is over"), Duration::from_secs(30), async || {
            topology.call(Method::GET, &key, None).await.1["value"] == "over"
        })
        .await;
    }

    let (status, answer) = topology
        .call(Method::DELETE, &format!("/deploy/ns/{}/run/{id}", demo.namespace), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    topology
        .wait_status(&demo.namespace, &id, "destroy_success", Duration::from_secs(120))
        .await;
    assert!(
        !topology.vms.join(&id).join("master-0").exists(),
        "destroy removes the VMs"
    );
    let (status, _) = topology
        .call(Method::GET, &format!("/store/{deployment}/master_token"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the store deployment is deleted");
    topology.stop().await;
}

/// Follows a run's log as server-sent events through Traefik; sends each `data:` line.
fn follow_log(topology: &Topology, namespace: &str, id: &str) -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (lines, received) = tokio::sync::mpsc::unbounded_channel();
    let request = topology
        .http
        .get(format!("{}/deploy/ns/{namespace}/run/{id}/log?follow=1", topology.url))
        .header("X-API-Key", &topology.user_key)
        .header("Accept", "text/event-stream");
    tokio::spawn(async move {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut stream = response.bytes_stream();
        let mut pending = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            pending.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = pending.find('\n') {
                let line: String = pending.drain(..=end).collect();
                if let Some(data) = line.trim_end().strip_prefix("data:")
                    && lines.send(data.trim_start().to_string()).is_err()
                {
                    return;
                }
            }
        }
    });
    received
}

/// The agent running an apply dies with its host (kill -9 of the agent and its Terraform):
/// deploy notices the silence, the other agent takes the run over and finishes it, and destroy
/// works. The run's log streamed live through Traefik while the apply ran.
#[tokio::test]
async fn a_dead_agents_run_is_taken_over_by_the_other_and_its_log_streams_live() {
    let Some(tools) = tools() else { return };
    let _one = exclusive().await;
    let mut topology = Topology::start(tools).await;
    let demo = topology.load_demo().await;
    let app = topology.app_of(&demo.namespace, "slow", SLOW_TF).await;
    std::fs::create_dir_all(&topology.vms).unwrap();
    let marker = topology.vms.join("slow-marker");
    let (status, created) = topology
        .start_run(
            &demo.namespace,
            &app,
            json!({"name": "slow", "endpoint": demo.endpoint, "inputs": {"marker": marker}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["run"].as_str().unwrap().to_string();

    // The apply sleeps: its log lines can only have come while it runs.
    let mut log = follow_log(&topology, &demo.namespace, &id);
    let creating = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(line) = log.recv().await {
            if line.contains("null_resource.slow: Creating...") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        creating,
        Ok(true),
        "the log streams through Traefik while the apply runs"
    );
    assert_eq!(topology.run(&demo.namespace, &id).await["status"], "deploy_in_progress");

    let busy = topology.busy_agent().expect("an agent runs Terraform");
    topology.kill("run-agent", busy);
    let run = topology
        .wait_status(&demo.namespace, &id, "deploy_success", Duration::from_secs(90))
        .await;
    assert_eq!(run["error"], "", "{run}");
    let (status, answer) = topology
        .call(Method::DELETE, &format!("/deploy/ns/{}/run/{id}", demo.namespace), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    topology
        .wait_status(&demo.namespace, &id, "destroy_success", Duration::from_secs(60))
        .await;
    topology.stop().await;
}

/// RabbitMQ unreachable for a few seconds while runs wait in the queue: none is lost, every
/// run reaches a terminal status; a run asked for during the outage is refused with 503 (the
/// client knows; deploy marks it failed when the request reached it), and runs work again once
/// the broker is back.
#[tokio::test]
async fn runs_queued_across_a_rabbitmq_outage_all_end() {
    let Some(tools) = tools() else { return };
    let _one = exclusive().await;
    let topology = Topology::start(tools).await;
    let demo = topology.load_demo().await;
    let app = topology.app_of(&demo.namespace, "pause", PAUSE_TF).await;
    let start = async |name: &str| {
        topology
            .start_run(
                &demo.namespace,
                &app,
                json!({"name": name, "endpoint": demo.endpoint, "inputs": {"marker": name}}),
            )
            .await
    };
    // Two agents taking one run at a time: most of these wait in the queue.
    let mut queued = Vec::new();
    for n in 0..5 {
        let (status, created) = start(&format!("before-{n}")).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        queued.push(created["run"].as_str().unwrap().to_string());
    }

    topology.amqp.cut();
    // Refused either by deploy (the run is then marked failed, with the reason) or, once
    // Traefik's readiness check saw the broker gone, by Traefik itself (nothing is created).
    let (status, refused) = start("during").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{refused}");
    let refused_by_deploy = refused["message"].as_str().is_some();
    if refused_by_deploy {
        let message = refused["message"].as_str().unwrap_or_default();
        assert!(message.contains("run queue is unavailable"), "{refused}");
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    topology.amqp.restore();
    // The replicas are ready again, and routed, without a restart.
    topology.wait_routed().await;

    let (status, created) = start("after").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    queued.push(created["run"].as_str().unwrap().to_string());
    for id in &queued {
        topology
            .wait_status(&demo.namespace, id, "deploy_success", Duration::from_secs(120))
            .await;
    }
    let (_, runs) = topology
        .call(Method::GET, &format!("/deploy/ns/{}/run", demo.namespace), None)
        .await;
    let statuses: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap_or_else(|| panic!("a run list: {runs}"))
        .iter()
        .map(|run| run["status"].as_str().unwrap())
        .collect();
    assert!(statuses.iter().all(|status| is_terminal(status)), "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|status| **status == "deploy_failure").count(),
        usize::from(refused_by_deploy),
        "only the run refused during the outage failed: {statuses:?}"
    );
    topology.stop().await;
}

/// A VM's `goterra-cli get` long-polls through Traefik while Redis is unreachable for a few
/// seconds: its wait resumes, and it gets the value another VM puts once Redis is back.
#[tokio::test]
async fn a_vm_waiting_across_a_redis_outage_gets_its_value() {
    let Some(tools) = tools() else { return };
    let _one = exclusive().await;
    let topology = Topology::start(tools).await;
    let (status, created) = topology.call(Method::POST, "/store", None).await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let deployment = created["id"].as_str().unwrap().to_string();
    let token = created["token"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let cli = dir.path().join("goterra-cli");
    std::fs::write(&cli, goterra_boot::SHELL_CLI).unwrap();
    let vm_client = |args: &[&str]| {
        let mut command = tokio::process::Command::new("bash");
        command
            .arg(&cli)
            .args(["--timeout", "2"])
            .args(args)
            .env("GOT_URL", &topology.url)
            .env("GOT_DEPLOYMENT", &deployment)
            .env("GOT_TOKEN", &token)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        command
    };
    let waiter = vm_client(&["get", "cluster_token"]).spawn().unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;

    topology.redis.cut();
    tokio::time::sleep(Duration::from_secs(4)).await;
    topology.redis.restore();

    let put = vm_client(&["put", "cluster_token", "join-me-7"])
        .output()
        .await
        .unwrap();
    assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
    let got = tokio::time::timeout(Duration::from_secs(60), waiter.wait_with_output())
        .await
        .expect("the waiting VM is answered")
        .unwrap();
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "join-me-7");
    topology.stop().await;
}

/// One deploy replica is killed (kill -9) while clients read and start runs through Traefik:
/// the idempotent calls never see a 5xx (Traefik retries them on the other replica), and no
/// run is created twice.
#[tokio::test]
async fn a_deploy_replica_killed_under_load_costs_no_idempotent_call() {
    let Some(tools) = tools() else { return };
    let _one = exclusive().await;
    let mut topology = Topology::start(tools).await;
    let demo = topology.load_demo().await;
    let app = topology.app_of(&demo.namespace, "pause", PAUSE_TF).await;
    let load_for = Duration::from_secs(6);
    let readers: Vec<_> = (0..3)
        .map(|reader| {
            let http = topology.http.clone();
            let url = format!("{}/deploy/ns/{}", topology.url, demo.namespace);
            let runs = format!("{url}/run");
            let key = topology.user_key.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let mut statuses = BTreeMap::<u16, u32>::new();
                while started.elapsed() < load_for {
                    let target = if reader % 2 == 0 { &url } else { &runs };
                    let status = match http.get(target).header("X-API-Key", &key).send().await {
                        Ok(response) => response.status().as_u16(),
                        Err(_) => 0,
                    };
                    *statuses.entry(status).or_default() += 1;
                }
                statuses
            })
        })
        .collect();
    let writer = {
        let http = topology.http.clone();
        let url = format!("{}/deploy/ns/{}/run/{app}", topology.url, demo.namespace);
        let key = topology.user_key.clone();
        let endpoint = demo.endpoint.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut answers = Vec::new();
            let mut n = 0;
            while started.elapsed() < load_for {
                let name = format!("load-{n}");
                n += 1;
                let body = json!({"name": name, "endpoint": endpoint, "inputs": {"marker": name}});
                let status = match http.post(&url).header("X-API-Key", &key).json(&body).send().await {
                    Ok(response) => response.status().as_u16(),
                    Err(_) => 0,
                };
                answers.push((name, status));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            answers
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    topology.kill("deploy", 0);

    for reader in readers {
        let statuses = reader.await.unwrap();
        assert!(
            statuses.keys().all(|status| *status == 200),
            "idempotent calls answered {statuses:?}"
        );
    }
    let answers = writer.await.unwrap();
    let (status, runs) = topology
        .call(
            Method::GET,
            &format!("/deploy/ns/{}/run?limit=500", demo.namespace),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{runs}");
    let mut created = BTreeMap::<String, u32>::new();
    for run in runs["runs"].as_array().unwrap() {
        *created.entry(run["name"].as_str().unwrap().to_string()).or_default() += 1;
    }
    for (name, status) in &answers {
        let count = created.get(name).copied().unwrap_or_default();
        assert!(count <= 1, "{name} was created {count} times");
        if *status == 201 {
            assert_eq!(count, 1, "{name} was answered 201 but is not listed");
        }
    }
    assert!(
        answers.iter().filter(|(_, status)| *status == 201).count() > answers.len() / 2,
        "most runs were created: {answers:?}"
    );
    topology.stop().await;
}
