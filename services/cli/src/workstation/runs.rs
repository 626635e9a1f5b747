//! `run start|list|show|logs|cancel|destroy|wait`.

use super::commands::RunCommand;
use super::error::{CliError, CliResult, failed, usage};
use super::output::{self, Format};
use super::prompt;
use super::resolve;
use super::session::Session;
use goterra_client::deploy::{Application, Endpoint, InputsSummary};
use goterra_client::runs::{Run, RunRequest};
use goterra_client::{Client, DeploymentId, LogEvent, NamespaceId, RunId, Sensitive};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Pause between two looks at a run being waited for.
const POLL: Duration = Duration::from_secs(1);

fn runs_table(runs: &[Run]) -> comfy_table::Table {
    let mut table = output::table(&["ID", "Name", "Status", "Namespace", "Started", "Ended"]);
    for run in runs {
        table.add_row(vec![
            run.id.clone(),
            run.name.clone(),
            run.status.clone(),
            run.namespace.clone(),
            output::time(run.start),
            output::time(run.end),
        ]);
    }
    table
}

/// `name = value` lines of a run's `outputs` (the text of `terraform output -json`).
fn outputs_of(run: &Run) -> BTreeMap<String, String> {
    let parsed: Value = serde_json::from_str(&run.outputs).unwrap_or(Value::Null);
    let mut shown = BTreeMap::new();
    if let Value::Object(outputs) = parsed {
        for (name, output) in outputs {
            let text = if output["sensitive"] == Value::Bool(true) {
                "(sensitive)".to_string()
            } else {
                match &output["value"] {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                }
            };
            shown.insert(name, text);
        }
    }
    shown
}

fn print_outputs(run: &Run) {
    for (name, value) in outputs_of(run) {
        println!("{name} = {value}");
    }
}

/// A failed, or canceled, action is a failure of the command.
fn outcome(run: &Run) -> CliResult<()> {
    if run.status.ends_with("_success") {
        return Ok(());
    }
    let reason = if run.error.is_empty() {
        String::new()
    } else {
        format!(": {}", run.error)
    };
    Err(failed(format!("run {} ended {}{reason}", run.id, run.status)))
}

/// Polls until the run has no action in flight, with a spinner on a terminal.
async fn wait_for(client: &Client, ns: &NamespaceId, run: &RunId) -> CliResult<Run> {
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    spinner.enable_steady_tick(Duration::from_millis(120));
    let started = Instant::now();
    loop {
        let current = client.run(ns, run).await?;
        spinner.set_message(format!("run {run}: {}", current.status));
        if current.action.is_none() {
            spinner.finish_and_clear();
            eprintln!("run {run}: {} after {}s", current.status, started.elapsed().as_secs());
            return Ok(current);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Prints the log as it is written, from line `from`, until the action ends.
async fn follow(client: &Client, ns: &NamespaceId, run: &RunId, from: i64) -> CliResult<()> {
    let mut follower = client.follow_run_log(ns, run, from).await?;
    let mut stdout = std::io::stdout();
    while let Some(event) = follower.next().await? {
        match event {
            LogEvent::Lines { lines, .. } => {
                for line in lines {
                    let _ = writeln!(stdout, "{line}");
                }
                let _ = stdout.flush();
            }
            LogEvent::End { status } => eprintln!("run {run}: {status}"),
            LogEvent::Error { message } => return Err(failed(format!("cannot follow the log: {message}"))),
        }
    }
    Ok(())
}

/// `NAME=VALUE` into a pair.
fn pair(text: &str, flag: &str) -> CliResult<(String, String)> {
    text.split_once('=')
        .filter(|(name, _)| !name.trim().is_empty())
        .map(|(name, value)| (name.trim().to_string(), value.to_string()))
        .ok_or_else(|| usage(format!("{flag} {text:?}: expected NAME=VALUE")))
}

/// A YAML or JSON map of inputs; the original CLI's `params:` wrapper is accepted.
fn inputs_file(path: &Path) -> CliResult<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).map_err(|err| usage(format!("cannot read {}: {err}", path.display())))?;
    let mut value: Value = serde_yaml::from_str(&text)
        .map_err(|err| usage(format!("{} is not valid YAML or JSON: {err}", path.display())))?;
    if let Some(params) = value.get("params").filter(|p| p.is_object()) {
        value = params.clone();
    }
    let Value::Object(fields) = value else {
        return Err(usage(format!(
            "{}: expected a map of input names to values",
            path.display()
        )));
    };
    Ok(fields
        .into_iter()
        .map(|(name, value)| {
            let text = match value {
                Value::String(text) => text,
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (name, text)
        })
        .collect())
}

/// Fills the inputs the application asks for and were not given: one suggested value is taken
/// as it is; otherwise a terminal user is asked (with the choices), and a script is told.
fn complete_inputs(summary: &InputsSummary, endpoint: &str, inputs: &mut BTreeMap<String, String>) -> CliResult<()> {
    let mut asked: BTreeMap<String, String> = BTreeMap::new();
    for labels in [&summary.template, &summary.recipes] {
        asked.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if let Some(labels) = summary.endpoints.get(endpoint) {
        asked.extend(labels.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let mut suggested = summary.defaults.clone();
    if let Some(own) = summary.endpointdefaults.get(endpoint) {
        suggested.extend(own.clone());
    }
    let mut missing = Vec::new();
    for (name, label) in asked {
        if inputs.contains_key(&name) {
            continue;
        }
        let choices = suggested.get(&name).cloned().unwrap_or_default();
        if choices.len() == 1 {
            inputs.insert(name, choices[0].clone());
            continue;
        }
        if prompt::interactive() {
            let hint = if choices.is_empty() {
                String::new()
            } else {
                format!(" [{}] (default {})", choices.join(", "), choices[0])
            };
            let answer = prompt::line(&format!("{label} ({name}){hint}"))?;
            let value = if answer.is_empty() {
                choices.first().cloned().unwrap_or_default()
            } else {
                answer
            };
            inputs.insert(name, value);
        } else if let Some(first) = choices.first() {
            inputs.insert(name, first.clone());
        } else {
            missing.push(format!("{name} ({label})"));
        }
    }
    if !missing.is_empty() {
        return Err(usage(format!(
            "missing inputs: {}; give them with -i NAME=VALUE or --inputs-file",
            missing.join(", ")
        )));
    }
    Ok(())
}

#[derive(Serialize)]
struct Started {
    run: String,
    namespace: String,
}

#[derive(Serialize)]
struct RunDetails<'a> {
    run: &'a Run,
    /// `status_*` keys of the run's store deployment: each VM's recipe status.
    recipes: BTreeMap<String, String>,
}

pub async fn run(session: &Session, command: RunCommand) -> CliResult<()> {
    match command {
        RunCommand::Start {
            app,
            ns,
            endpoint,
            name,
            inputs,
            inputs_file: file,
            secrets,
            wait,
            follow: follow_log,
            out,
        } => {
            let mut given = match &file {
                Some(path) => inputs_file(path)?,
                None => BTreeMap::new(),
            };
            for text in &inputs {
                let (name, value) = pair(text, "--input")?;
                given.insert(name, value);
            }
            let mut secret_values = BTreeMap::new();
            for text in &secrets {
                let (name, value) = match text.split_once('=') {
                    Some(_) => pair(text, "--secret")?,
                    None => (text.trim().to_string(), prompt::hidden(&format!("Value of {text}"))?),
                };
                secret_values.insert(name, Sensitive::new(value));
            }
            let client = session.client().await?;
            let ns_id = resolve::namespace_id(&client, &ns).await?;
            let app_id = resolve::item_id::<Application>(&client, &ns_id, &app, "application").await?;
            let endpoint_id = resolve::item_id::<Endpoint>(&client, &ns_id, &endpoint, "endpoint").await?;
            let summary = client.app_inputs(&ns_id, &app_id).await?;
            complete_inputs(&summary, endpoint_id.as_str(), &mut given)?;
            let request = RunRequest {
                name: name.unwrap_or_else(|| app.clone()),
                description: String::new(),
                endpoint: endpoint_id.to_string(),
                inputs: Some(given),
                secretinputs: (!secret_values.is_empty()).then_some(secret_values),
            };
            let run_id = client.create_run(&ns_id, &app_id, &request).await?;
            let started = Started {
                run: run_id.to_string(),
                namespace: ns_id.to_string(),
            };
            match out.output {
                Format::Table => eprintln!("run {run_id} started in namespace {ns_id}"),
                format => output::print(format, &started, || output::table(&[]))?,
            }
            if follow_log {
                follow(&client, &ns_id, &run_id, 0).await?;
            }
            if wait || follow_log {
                let ended = wait_for(&client, &ns_id, &run_id).await?;
                if out.output == Format::Table {
                    print_outputs(&ended);
                }
                return outcome(&ended);
            }
            if out.output == Format::Table {
                println!("{run_id}");
            }
            Ok(())
        }
        RunCommand::List { ns, all, out } => {
            let runs = session
                .run(|client| {
                    let ns = ns.clone();
                    async move {
                        let ns = match ns {
                            Some(ns) => Some(resolve::namespace_id(&client, &ns).await?),
                            None => None,
                        };
                        Ok(client.runs(ns.as_ref(), all, None, Some(500)).await?)
                    }
                })
                .await?;
            output::print(out.output, &runs, || runs_table(&runs))
        }
        RunCommand::Show { run, ns, out } => {
            let client = session.client().await?;
            let (_, found) = resolve::run(&client, ns.as_deref(), &run).await?;
            let recipes = recipe_status(&client, &found).await;
            let details = RunDetails { run: &found, recipes };
            output::print(out.output, &details, || {
                let mut rows = vec![
                    ("id", found.id.clone()),
                    ("name", found.name.clone()),
                    ("status", found.status.clone()),
                    ("namespace", found.namespace.clone()),
                    ("application", found.app_id.clone()),
                    ("endpoint", found.endpoint.clone()),
                    ("owner", found.uid.clone()),
                    ("started", output::time(found.start)),
                    ("ended", output::time(found.end)),
                    ("deployment", found.deployment.clone()),
                    ("error", found.error.clone()),
                ];
                let inputs: Vec<String> = found.inputs.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                rows.push(("inputs", inputs.join("\n")));
                let outputs: Vec<String> = outputs_of(&found).iter().map(|(k, v)| format!("{k} = {v}")).collect();
                rows.push(("outputs", outputs.join("\n")));
                let vms: Vec<String> = details.recipes.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                rows.push(("recipes", vms.join("\n")));
                output::details(rows)
            })
        }
        RunCommand::Logs { run, ns, follow: live } => {
            let client = session.client().await?;
            let (ns, found) = resolve::run(&client, ns.as_deref(), &run).await?;
            let run_id = RunId::from_trusted(found.id);
            let mut from = 0;
            loop {
                let page = client.run_log(&ns, &run_id, from).await?;
                if page.lines.is_empty() {
                    break;
                }
                for line in &page.lines {
                    println!("{line}");
                }
                from = page.next;
            }
            if live && found.action.is_some() {
                follow(&client, &ns, &run_id, from).await?;
            }
            Ok(())
        }
        RunCommand::Cancel { run, ns } => {
            let client = session.client().await?;
            let (ns, found) = resolve::run(&client, ns.as_deref(), &run).await?;
            let canceled = client.cancel_run(&ns, &RunId::from_trusted(found.id)).await?;
            println!("run {}: {}", canceled.id, canceled.status);
            Ok(())
        }
        RunCommand::Destroy { run, ns, wait } => {
            let client = session.client().await?;
            let (ns, found) = resolve::run(&client, ns.as_deref(), &run).await?;
            let run_id = RunId::from_trusted(found.id);
            let destroying = client.destroy_run(&ns, &run_id).await?;
            eprintln!("run {}: {}", destroying.id, destroying.status);
            if wait {
                let ended = wait_for(&client, &ns, &run_id).await?;
                return outcome(&ended);
            }
            Ok(())
        }
        RunCommand::Wait { run, ns } => {
            let client = session.client().await?;
            let (ns, found) = resolve::run(&client, ns.as_deref(), &run).await?;
            let ended = wait_for(&client, &ns, &RunId::from_trusted(found.id)).await?;
            print_outputs(&ended);
            outcome(&ended)
        }
    }
}

/// Each VM's `status_*` keys from the run's store deployment; empty when the run has none or
/// the store refuses (the run is shown anyway).
async fn recipe_status(client: &Client, run: &Run) -> BTreeMap<String, String> {
    let Ok(deployment) = run.deployment.parse::<DeploymentId>() else {
        return BTreeMap::new();
    };
    match client.store_keys(&deployment, Some("status_")).await {
        Ok(data) => data.deployment,
        Err(err) => {
            eprintln!("note: cannot read the run's store data: {}", CliError::from(err));
            BTreeMap::new()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn outputs_are_shown_and_sensitive_ones_hidden() {
        let run: Run = serde_json::from_value(serde_json::json!({
            "id": "r", "name": "", "description": "", "appID": "", "inputs": {}, "secretinputs": null,
            "status": "deploy_success", "endpoint": "", "namespace": "", "UID": "", "start": 0, "end": 0,
            "duration": 0.0, "error": "", "deployment": "", "events": [], "action": null,
            "outputs": "{\"ip\":{\"value\":\"10.0.0.1\",\"type\":\"string\"},\"pw\":{\"value\":\"x\",\"sensitive\":true}}"
        }))
        .unwrap();
        let shown = outputs_of(&run);
        assert_eq!(shown["ip"], "10.0.0.1");
        assert_eq!(shown["pw"], "(sensitive)");
        assert!(outcome(&run).is_ok());
    }

    #[test]
    fn the_original_params_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inputs.yaml");
        std::fs::write(&path, "params:\n  workers: 3\n  flavor: m1.small\n").unwrap();
        let inputs = inputs_file(&path).unwrap();
        assert_eq!(inputs["workers"], "3");
        assert_eq!(inputs["flavor"], "m1.small");
    }
}
