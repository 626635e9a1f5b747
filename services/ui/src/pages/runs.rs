//! Runs: the wizard (application → endpoint → inputs → confirmation), the run page (status,
//! live log, outputs, recipe status from the store, history, resources, cancel, destroy) and
//! the run lists.

use super::catalogue::{Field, Fields};
use super::{Button, SignedIn};
use crate::Ui;
use crate::api::UserApi;
use crate::error::{PageError, form_refusal};
use crate::layout::{self, Section, csrf_field, is_terminal, status_badge, time, url};
use crate::model::{Application, Endpoint, InputsSummary, Run, RunRequest, Template};
use crate::session::{Posted, Session};
use axum::Router;
use axum::extract::{Path, Query};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use goterra_client::LogEvent;
use goterra_client::runs::RunStatus;
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Runs per page of a list.
const PAGE_SIZE: u64 = 25;
/// How long a confirmation page stays valid.
const CONFIRM_SECS: u64 = 3600;

pub fn routes() -> Router<Ui> {
    Router::new()
        .route(&url("/run"), get(my_runs))
        .route(&url("/ns/{ns}/run"), get(namespace_runs))
        .route(&url("/ns/{ns}/app/{app}/run"), get(wizard).post(review))
        .route(&url("/ns/{ns}/app/{app}/run/start"), post(start))
        .route(&url("/ns/{ns}/run/{run}"), get(run_page))
        .route(&url("/ns/{ns}/run/{run}/live"), get(live_fragment))
        .route(&url("/ns/{ns}/run/{run}/log/stream"), get(log_stream))
        .route(&url("/ns/{ns}/run/{run}/cancel"), post(cancel))
        .route(&url("/ns/{ns}/run/{run}/destroy"), post(destroy))
}

// --- the wizard -------------------------------------------------------------------------------

/// Inputs whose values are secrets: typed into password fields, sent as `secretinputs`.
fn is_sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "secret", "token", "credential"]
        .iter()
        .any(|word| name.contains(word))
}

/// What the wizard needs to know about an application.
struct WizardData {
    app: Application,
    template: Template,
    endpoints: Vec<Endpoint>,
    inputs: InputsSummary,
}

/// Endpoints a run of `app` can use, by deploy's rule: its template has Terraform for their
/// kind, and they map one of the application's base images (an endpoint without an image map,
/// like `local`, takes any).
fn usable(endpoint: &Endpoint, app: &Application, template: &Template) -> bool {
    template.data.contains_key(&endpoint.kind)
        && (app.image.is_empty()
            || endpoint.images.is_empty()
            || app.image.iter().any(|image| endpoint.images.contains_key(image)))
}

async fn wizard_data(api: &UserApi, ns: &str, app_id: &str) -> Result<WizardData, PageError> {
    let (app, inputs, own, public) = tokio::join!(
        api.catalogue_item::<Application>(ns, app_id),
        api.app_inputs(ns, app_id),
        api.catalogue::<Endpoint>(ns),
        api.public_catalogue::<Endpoint>(),
    );
    let app = app?;
    let template = api.catalogue_item::<Template>(ns, &app.template).await?;
    let mut endpoints = own?;
    for endpoint in public? {
        if !endpoints.iter().any(|known| known.id == endpoint.id) {
            endpoints.push(endpoint);
        }
    }
    endpoints.retain(|endpoint| usable(endpoint, &app, &template));
    Ok(WizardData {
        app,
        template,
        endpoints,
        inputs: inputs?,
    })
}

#[derive(Deserialize)]
struct WizardQuery {
    endpoint: Option<String>,
}

async fn wizard(
    me: SignedIn,
    Path((ns, app)): Path<(String, String)>,
    Query(query): Query<WizardQuery>,
) -> Result<Response, PageError> {
    let api = me.api();
    let data = wizard_data(&api, &ns, &app).await?;
    let chosen = match query.endpoint.as_deref() {
        Some(id) => Some(
            data.endpoints
                .iter()
                .find(|e| e.id == id)
                .ok_or_else(|| PageError::BadRequest("this endpoint cannot run this application".into()))?,
        ),
        None if data.endpoints.len() == 1 => data.endpoints.first(),
        None => None,
    };
    let body = match chosen {
        None => endpoint_step(&ns, &data),
        Some(endpoint) => input_step(&me, &ns, &data, endpoint, &Fields::new(), None).await?,
    };
    Ok(me.render(Section::Runs, &format!("Run {}", data.app.name), body))
}

/// The inputs step for `endpoint`, with what the user typed and the error to show, if any.
async fn input_step(
    me: &SignedIn,
    ns: &str,
    data: &WizardData,
    endpoint: &Endpoint,
    values: &Fields,
    error: Option<&str>,
) -> Result<Markup, PageError> {
    let api = me.api();
    let (has_secret, user_defaults) = tokio::join!(
        api.has_secret(ns, &endpoint.id),
        api.endpoint_defaults(ns, &endpoint.id)
    );
    let step = InputStep {
        ns,
        data,
        endpoint,
        has_secret: has_secret?,
        user_defaults: user_defaults.unwrap_or_default(),
        values,
        error,
    };
    Ok(step.render(&me.session))
}

fn wizard_heading(ns: &str, data: &WizardData, step: u8) -> Markup {
    html! {
        nav class="crumbs" aria-label="Breadcrumb" {
            a href=(url(&format!("/ns/{ns}"))) { "namespace" } " / "
            a href=(url(&format!("/ns/{ns}/app/{}", data.app.id))) { (data.app.name) }
        }
        h1 { "Run " (data.app.name) }
        ol class="steps" aria-label="Steps" {
            @for (number, label) in [(1u8, "Endpoint"), (2, "Inputs"), (3, "Confirm")] {
                li aria-current=[(number == step).then_some("step")] class=[(number < step).then_some("done")] { (label) }
            }
        }
    }
}

fn endpoint_step(ns: &str, data: &WizardData) -> Markup {
    html! {
        (wizard_heading(ns, data, 1))
        @if data.endpoints.is_empty() {
            p class="empty" { "No endpoint can run this application: none has a kind the template supports ("
                (data.template.data.keys().cloned().collect::<Vec<_>>().join(", ")) ") and the application's images." }
        } @else {
            form method="get" action=(url(&format!("/ns/{ns}/app/{}/run", data.app.id))) class="stack wide" {
                fieldset {
                    legend { "Where should it run?" }
                    @for (index, endpoint) in data.endpoints.iter().enumerate() {
                        div class="check" {
                            input type="radio" name="endpoint" id=(format!("ep-{index}")) value=(endpoint.id) required checked[index == 0];
                            label for=(format!("ep-{index}")) {
                                (endpoint.name) " " span class="tag" { (endpoint.kind) } " " (layout::visibility(endpoint.public))
                            }
                        }
                    }
                }
                button type="submit" class="primary" { "Next: inputs" }
            }
        }
    }
}

struct InputStep<'a> {
    ns: &'a str,
    data: &'a WizardData,
    endpoint: &'a Endpoint,
    has_secret: bool,
    user_defaults: BTreeMap<String, Vec<String>>,
    /// What the user typed (after a refused request).
    values: &'a Fields,
    error: Option<&'a str>,
}

impl InputStep<'_> {
    /// Suggested values of an input: the application's, the endpoint's, the user's own first.
    fn defaults(&self, name: &str) -> Vec<String> {
        let mut values = self.user_defaults.get(name).cloned().unwrap_or_default();
        let endpoint = self
            .data
            .inputs
            .endpointdefaults
            .get(&self.endpoint.id)
            .and_then(|defaults| defaults.get(name));
        for value in endpoint
            .into_iter()
            .chain(self.data.inputs.defaults.get(name))
            .flatten()
        {
            if !values.contains(value) {
                values.push(value.clone());
            }
        }
        values
    }

    fn field(&self, name: &str, label: &str) -> Markup {
        let id = format!("in-{name}");
        let field_name = format!("in.{name}");
        let typed = self.values.get(&field_name).map(|f| match f {
            Field::One(value) => value.clone(),
            Field::Many(values) => values.first().cloned().unwrap_or_default(),
        });
        let defaults = self.defaults(name);
        let flagged = self.error.is_some_and(|message| mentions(message, name));
        let label = if label.is_empty() { name } else { label };
        html! {
            div class=(if flagged { "field invalid" } else { "field" }) {
                label for=(id) { (label) " " code class="muted" { (name) } }
                @if is_sensitive(name) {
                    input id=(id) name=(field_name) type="password" required autocomplete="off" aria-invalid=[flagged.then_some("true")];
                } @else if defaults.len() > 1 {
                    select id=(id) name=(field_name) required aria-invalid=[flagged.then_some("true")] {
                        @for value in &defaults {
                            option value=(value) selected[typed.as_deref() == Some(value.as_str())] { (value) }
                        }
                    }
                } @else {
                    input id=(id) name=(field_name) required value=(typed.or_else(|| defaults.first().cloned()).unwrap_or_default()) aria-invalid=[flagged.then_some("true")];
                }
                @if flagged { p class="error" { (self.error.unwrap_or_default()) } }
            }
        }
    }

    fn group(&self, title: &str, inputs: Option<&BTreeMap<String, String>>) -> Markup {
        html! {
            @if let Some(inputs) = inputs.filter(|inputs| !inputs.is_empty()) {
                fieldset {
                    legend { (title) }
                    @for (name, label) in inputs { (self.field(name, label)) }
                }
            }
        }
    }

    fn render(&self, session: &Session) -> Markup {
        let data = self.data;
        let text = |name: &str| self.values.get(name).map(|f| f.clone_text()).unwrap_or_default();
        html! {
            (wizard_heading(self.ns, data, 2))
            p { "On " strong { (self.endpoint.name) } " (" (self.endpoint.kind) "). "
                a href=(url(&format!("/ns/{}/app/{}/run", self.ns, data.app.id))) { "Change" } }
            @if let Some(error) = self.error { p class="error" role="alert" { (error) } }
            form method="post" action=(url(&format!("/ns/{}/app/{}/run", self.ns, data.app.id))) class="stack wide" {
                (csrf_field(session))
                input type="hidden" name="endpoint" value=(self.endpoint.id);
                fieldset {
                    legend { "Run" }
                    label for="run-name" { "Name" }
                    input id="run-name" name="name" required value=(text("name")) placeholder=(data.app.name);
                    label for="run-description" { "Description" }
                    input id="run-description" name="description" value=(text("description"));
                }
                (self.group("Application inputs", Some(&data.inputs.template)))
                (self.group("Recipe inputs", Some(&data.inputs.recipes)))
                (self.group("Endpoint inputs", data.inputs.endpoints.get(&self.endpoint.id)))
                fieldset {
                    legend { "Cloud credentials" }
                    @if self.has_secret {
                        p { "Using the credentials you stored for this endpoint. Give others here to override them for this run." }
                    } @else {
                        p { "You stored no credentials for this endpoint. Give them here if it needs them (they are encrypted and never shown again)." }
                    }
                    label for="cred-user" { "Cloud user name" }
                    input id="cred-user" name="secret.user_name" autocomplete="off";
                    label for="cred-password" { "Cloud password" }
                    input id="cred-password" name="secret.password" type="password" autocomplete="new-password";
                }
                button type="submit" class="primary" { "Next: confirm" }
            }
        }
    }
}

impl Field {
    fn clone_text(&self) -> String {
        match self {
            Self::One(value) => value.clone(),
            Self::Many(values) => values.first().cloned().unwrap_or_default(),
        }
    }
}

/// Whether an API message names an input (`missing inputs: a, b`, `inputs.a: ...`).
fn mentions(message: &str, name: &str) -> bool {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| word == name)
}

/// The run request from the inputs form.
fn request_from(fields: &Fields, app_name: &str) -> RunRequest {
    let mut inputs = BTreeMap::new();
    let mut secretinputs = BTreeMap::new();
    for (name, value) in fields {
        let value = value.clone_text();
        if let Some(input) = name.strip_prefix("in.") {
            if is_sensitive(input) {
                secretinputs.insert(input.to_string(), value);
            } else {
                inputs.insert(input.to_string(), value.trim().to_string());
            }
        } else if let Some(secret) = name.strip_prefix("secret.")
            && !value.is_empty()
        {
            secretinputs.insert(secret.to_string(), value);
        }
    }
    let text = |name: &str| fields.get(name).map(Field::clone_text).unwrap_or_default();
    let name = text("name").trim().to_string();
    RunRequest {
        name: if name.is_empty() { app_name.to_string() } else { name },
        description: text("description").trim().to_string(),
        endpoint: text("endpoint"),
        inputs: Some(inputs),
        secretinputs: Some(
            secretinputs
                .into_iter()
                .map(|(name, value)| (name, value.into()))
                .collect(),
        ),
    }
}

/// Step 3: deploy checks the request (nothing is started), then the user confirms.
async fn review(Path((ns, app)): Path<(String, String)>, posted: Posted<Fields>) -> Result<Response, PageError> {
    let Posted { me, form } = posted;
    let api = me.api();
    let data = wizard_data(&api, &ns, &app).await?;
    let request = request_from(&form, &data.app.name);
    let endpoint = data
        .endpoints
        .iter()
        .find(|e| e.id == request.endpoint)
        .ok_or_else(|| PageError::BadRequest("this endpoint cannot run this application".into()))?;
    let app_tf = match api.preview_run(&ns, &app, &request).await {
        Ok(app_tf) => app_tf,
        Err(failure) => {
            let (status, message) = form_refusal(failure)?;
            let step = input_step(&me, &ns, &data, endpoint, &form, Some(&message)).await?;
            return Ok(me.render_status(Section::Runs, status, "Run", step));
        }
    };
    let sealed = me.ui.sessions.seal_json(&request);
    let body = html! {
        (wizard_heading(&ns, &data, 3))
        section class="card" {
            h2 { "Deploy " (data.app.name) " on " (endpoint.name) "?" }
            dl class="facts" {
                dt { "Run name" } dd { (request.name) }
                @if !request.description.is_empty() { dt { "Description" } dd { (request.description) } }
                dt { "Endpoint" } dd { (endpoint.name) " (" (endpoint.kind) ")" }
                @for (name, value) in request.inputs.iter().flatten() { dt { (name) } dd { code { (value) } } }
                @for name in request.secretinputs.iter().flat_map(|secrets| secrets.keys()) { dt { (name) } dd { span class="muted" { "given, hidden" } } }
            }
            form method="post" action=(url(&format!("/ns/{ns}/app/{app}/run/start"))) class="inline" {
                (csrf_field(&me.session))
                input type="hidden" name="sealed" value=(sealed);
                button type="submit" class="primary" { "Deploy" }
                a class="button" href=(url(&format!("/ns/{ns}/app/{app}/run?endpoint={}", endpoint.id))) { "Back" }
            }
        }
        details {
            summary { "The Terraform this run applies" }
            pre class="code" { (app_tf) }
        }
    };
    Ok(me.render(Section::Runs, "Confirm the run", body))
}

#[derive(Deserialize)]
struct StartForm {
    sealed: String,
}

async fn start(Path((ns, app)): Path<(String, String)>, posted: Posted<StartForm>) -> Result<Response, PageError> {
    let Posted { me, form } = posted;
    let request: RunRequest = me
        .ui
        .sessions
        .open_json(&form.sealed, CONFIRM_SECS)
        .ok_or_else(|| PageError::BadRequest("this confirmation has expired: fill the form again".into()))?;
    let id = me.api().start_run(&ns, &app, &request).await?;
    Ok(me.done(&format!("/ns/{ns}/run/{id}"), "Run started."))
}

// --- the run page -----------------------------------------------------------------------------

/// Store keys the run page shows: recipe status per VM and their log tails.
struct StoreView {
    statuses: BTreeMap<String, String>,
    logs: BTreeMap<String, String>,
}

async fn store_view(api: &UserApi, run: &Run) -> Option<StoreView> {
    if run.deployment.is_empty() {
        return None;
    }
    // The store deployment is gone once the run is destroyed.
    let values = api.store_values(&run.deployment).await.ok()?;
    let mut view = StoreView {
        statuses: BTreeMap::new(),
        logs: BTreeMap::new(),
    };
    for (key, value) in values {
        if let Some(vm) = key.strip_prefix("status_app_") {
            view.statuses.insert(vm.to_string(), value);
        } else if let Some(vm) = key.strip_prefix("_log_app_") {
            view.logs.insert(vm.to_string(), value);
        }
    }
    Some(view)
}

/// Whether the page should keep refreshing: an action is in flight, or VMs still run recipes.
fn still_moving(run: &Run, store: Option<&StoreView>) -> bool {
    if !is_terminal(&run.status) || run.action.is_some() {
        return true;
    }
    run.status == "deploy_success"
        && store.is_some_and(|store| store.statuses.is_empty() || store.statuses.values().any(|s| s == "start"))
}

/// The phase the stepper highlights: 0 queued, 1 applying, 2 booting, 3 ready or failed.
fn phase(run: &Run, store: Option<&StoreView>) -> (usize, bool) {
    let failed = run.status.ends_with("_failure") || run.status == "canceled";
    let step = match run.status.as_str() {
        "deploy_pending" | "destroy_pending" => 0,
        s if s.ends_with("_in_progress") => 1,
        "deploy_success" if still_moving(run, store) => 2,
        _ => 3,
    };
    (
        step,
        failed || store.is_some_and(|s| s.statuses.values().any(|v| v == "failed")),
    )
}

fn stepper(run: &Run, store: Option<&StoreView>) -> Markup {
    let (current, failed) = phase(run, store);
    let destroying = run.status.starts_with("destroy");
    let labels = if destroying {
        ["Queued", "Destroying", "Cleaning up", "Destroyed"]
    } else {
        [
            "Queued",
            "Applying",
            "VMs booting recipes",
            if failed { "Failed" } else { "Ready" },
        ]
    };
    html! {
        ol class="stepper" aria-label="Progress" {
            @for (index, label) in labels.iter().enumerate() {
                @let class = if index < current { "done" } else if index == current { if failed { "current failed" } else { "current" } } else { "" };
                li class=(class) aria-current=[(index == current).then_some("step")] { (label) }
            }
        }
    }
}

/// The parts of the run page that change while it runs (also served alone for refreshes).
fn live(ns: &str, run: &Run, store: Option<&StoreView>, session: &Session, has_secret: bool) -> Markup {
    let refresh = still_moving(run, store).then(|| url(&format!("/ns/{ns}/run/{}/live", run.id)));
    let outputs: BTreeMap<String, serde_json::Value> = serde_json::from_str(&run.outputs).unwrap_or_default();
    html! {
        div id="live" data-refresh=[refresh] data-status=(run.status) aria-live="polite" {
            p { "Status: " (status_badge(&run.status)) @if let Some(action) = &run.action { " · " (action) " in flight" } }
            (stepper(run, store))
            (cancel_action(ns, run, session))
            @if !run.error.is_empty() {
                h2 { "Error" }
                pre class="log error-log" { (run.error) }
            }
            @if !outputs.is_empty() {
                h2 { "Outputs" }
                table class="kv" {
                    tbody {
                        @for (name, output) in &outputs {
                            @let sensitive = output.get("sensitive").and_then(|v| v.as_bool()).unwrap_or(false);
                            @let value = output.get("value").map(display_value).unwrap_or_default();
                            tr { th scope="row" { (name) } td { @if sensitive { span class="muted" { "(sensitive)" } } @else { code { (value) } } } }
                        }
                    }
                }
            }
            h2 { "Recipes on the VMs" }
            @match store {
                None => p class="muted" { "No store data (the run has not started VMs, or it was destroyed)." },
                Some(store) if store.statuses.is_empty() => p class="muted" { "Waiting for the VMs to start their recipes." },
                Some(store) => {
                    table {
                        thead { tr { th { "Recipe on VM" } th { "Status" } } }
                        tbody {
                            @for (vm, status) in &store.statuses {
                                tr {
                                    td { code { (vm) } }
                                    td { span class=(format!("status recipe-{}", recipe_class(status))) data-recipe=(vm) { (status) } }
                                }
                            }
                        }
                    }
                    @for (vm, log) in &store.logs {
                        details {
                            summary { "Log of " code { (vm) } }
                            pre class="log" { (log) }
                        }
                    }
                }
            }
            h2 { "History" }
            @if run.events.is_empty() { p class="muted" { "No action has ended yet." } }
            ul class="plain" {
                @for event in &run.events {
                    li { (time(event.ts)) " " (event.action) " — " @if event.success { span class="status ok" { "success" } } @else { span class="status failed" { "failure" } } }
                }
            }
            (destroy_action(ns, run, session, has_secret))
        }
    }
}

/// Cancel, while an action is in flight.
fn cancel_action(ns: &str, run: &Run, session: &Session) -> Markup {
    html! {
        @if run.action.is_some() {
            form method="post" action=(url(&format!("/ns/{ns}/run/{}/cancel", run.id))) class="inline" data-confirm="Cancel the action in flight?" {
                (csrf_field(session))
                button type="submit" { "Cancel" }
            }
        }
    }
}

/// Destroy (asking for credentials when none are stored), once the run may be destroyed.
fn destroy_action(ns: &str, run: &Run, session: &Session, has_secret: bool) -> Markup {
    let id = &run.id;
    let can_destroy = matches!(
        run.status.as_str(),
        "deploy_success" | "deploy_failure" | "destroy_failure" | "canceled"
    );
    html! {
        @if can_destroy {
            section class="card danger-zone" {
                h2 { "Destroy" }
                form method="post" action=(url(&format!("/ns/{ns}/run/{id}/destroy"))) class="stack" data-confirm=(format!("Destroy run {} and its VMs?", run.name)) {
                    (csrf_field(session))
                    @if !has_secret {
                        p { "You stored no credentials for this endpoint; give them if it needs them." }
                        label for="d-user" { "Cloud user name" }
                        input id="d-user" name="user_name" autocomplete="off";
                        label for="d-password" { "Cloud password" }
                        input id="d-password" name="password" type="password" autocomplete="new-password";
                    }
                    button type="submit" class="danger" { "Destroy the VMs" }
                }
            }
        }
    }
}

fn recipe_class(status: &str) -> &'static str {
    match status {
        "over" => "ok",
        "failed" => "failed",
        _ => "busy",
    }
}

fn display_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

async fn run_page(me: SignedIn, Path((ns, id)): Path<(String, String)>) -> Result<Response, PageError> {
    let api = me.api();
    let run = api.run(&ns, &id).await?;
    let (log, store, resources, has_secret) = tokio::join!(
        api.run_log(&ns, &id, 0),
        store_view(&api, &run),
        api.run_resources(&ns, &id),
        api.has_secret(&ns, &run.endpoint),
    );
    // The log is a convenience here: a run whose log cannot be read still shows.
    let (lines, next) = log.map_or((Vec::new(), 0), |log| (log.lines, log.next));
    let stream = url(&format!("/ns/{ns}/run/{id}/log/stream"));
    let body = html! {
        nav class="crumbs" aria-label="Breadcrumb" {
            a href=(url("/run")) { "Runs" } " / " a href=(url(&format!("/ns/{ns}"))) { "namespace" }
        }
        div class="heading" {
            h1 { "Run " (run.name) }
        }
        dl class="facts" {
            dt { "Id" } dd { code { (run.id) } }
            @if !run.description.is_empty() { dt { "Description" } dd { (run.description) } }
            dt { "Application" } dd { a href=(url(&format!("/ns/{ns}/app/{}", run.app_id))) { code { (run.app_id) } } }
            dt { "Endpoint" } dd { code { (run.endpoint) } }
            dt { "Owner" } dd { (run.uid) }
            dt { "Started" } dd { (time(run.start)) }
            dt { "Ended" } dd { (time(run.end)) }
            dt { "Last action took" } dd { (layout::duration(run.duration)) }
            @for (name, value) in &run.inputs { dt { "input " (name) } dd { code { (value) } } }
        }
        (live(&ns, &run, store.as_ref(), &me.session, matches!(has_secret, Ok(true))))
        h2 { "Terraform log" }
        pre class="log" id="log" tabindex="0" data-stream=[run.action.is_some().then_some(stream)] data-next=(next) {
            @for line in &lines { (line) "\n" }
        }
        @if let Ok(resources) = &resources {
            @if !resources.resources.is_empty() {
                h2 { "Terraform resources" }
                table {
                    thead { tr { th { "Address" } th { "Type" } th { "Provider id" } } }
                    tbody {
                        @for resource in &resources.resources {
                            tr { td { code { (resource.address) } } td { (resource.kind) } td { (resource.id.clone().unwrap_or_default()) } }
                        }
                    }
                }
            }
        }
    };
    Ok(me.render(Section::Runs, &format!("Run {}", run.name), body))
}

async fn live_fragment(me: SignedIn, Path((ns, id)): Path<(String, String)>) -> Result<Response, PageError> {
    let api = me.api();
    let run = api.run(&ns, &id).await?;
    let (store, has_secret) = tokio::join!(store_view(&api, &run), api.has_secret(&ns, &run.endpoint));
    let mut response = live(&ns, &run, store.as_ref(), &me.session, matches!(has_secret, Ok(true))).into_response();
    super::no_store(&mut response);
    Ok(response)
}

#[derive(Deserialize)]
struct StreamQuery {
    from: Option<i64>,
}

/// The run's log as server-sent events, relayed from deploy (which redacts secrets): `data` is
/// lines, `id` where to resume, `event: end` the final status.
async fn log_stream(
    me: SignedIn,
    Path((ns, id)): Path<(String, String)>,
    Query(query): Query<StreamQuery>,
) -> Result<Response, PageError> {
    // A reconnecting EventSource says where it stopped.
    let from = me
        .headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .or(query.from)
        .unwrap_or(0)
        .max(0);
    let upstream = me.api().follow_run_log(&ns, &id, from).await?;
    let events = futures_util::stream::unfold(Some(upstream), |upstream| async move {
        let mut upstream = upstream?;
        let event = match upstream.next().await? {
            LogEvent::Lines { lines, next } => {
                let event = SseEvent::default().data(lines.join("\n"));
                match next {
                    Some(next) => event.id(next.to_string()),
                    None => event,
                }
            }
            LogEvent::End { status } => return Some((Ok(SseEvent::default().event("end").data(status)), None)),
            LogEvent::Error { message } => SseEvent::default().event("error").data(message),
        };
        Some((Ok::<_, std::convert::Infallible>(event), Some(upstream)))
    });
    let mut response = Sse::new(events).keep_alive(KeepAlive::default()).into_response();
    super::no_store(&mut response);
    Ok(response)
}

async fn cancel(Path((ns, id)): Path<(String, String)>, button: Button) -> Result<Response, PageError> {
    button.me.api().cancel_run(&ns, &id).await?;
    Ok(button.me.done(&format!("/ns/{ns}/run/{id}"), "Cancel requested."))
}

#[derive(Deserialize)]
struct DestroyForm {
    #[serde(default)]
    user_name: String,
    #[serde(default)]
    password: String,
}

async fn destroy(Path((ns, id)): Path<(String, String)>, posted: Posted<DestroyForm>) -> Result<Response, PageError> {
    let Posted { me, form } = posted;
    let mut secrets = BTreeMap::new();
    if !form.user_name.trim().is_empty() {
        secrets.insert(
            "user_name".to_string(),
            goterra_core::Sensitive::new(form.user_name.trim().to_string()),
        );
    }
    if !form.password.is_empty() {
        secrets.insert("password".to_string(), goterra_core::Sensitive::new(form.password));
    }
    me.api().destroy_run(&ns, &id, secrets).await?;
    Ok(me.done(&format!("/ns/{ns}/run/{id}"), "Destroy queued."))
}

// --- lists ------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ListQuery {
    all: Option<u8>,
    status: Option<String>,
    page: Option<u64>,
    /// `1`: only the table (auto-refresh).
    fragment: Option<u8>,
}

/// The status filters the list offers: value, label, the run statuses it asks the API for.
const FILTERS: [(&str, &str, &[RunStatus]); 5] = [
    ("", "Any status", &[]),
    (
        "active",
        "In flight",
        &[
            RunStatus::DeployPending,
            RunStatus::DeployInProgress,
            RunStatus::DestroyPending,
            RunStatus::DestroyInProgress,
        ],
    ),
    (
        "failed",
        "Failed",
        &[RunStatus::DeployFailure, RunStatus::DestroyFailure],
    ),
    (
        "ok",
        "Succeeded",
        &[RunStatus::DeploySuccess, RunStatus::DestroySuccess],
    ),
    ("canceled", "Canceled", &[RunStatus::Canceled]),
];

/// The statuses of the list's filter (filtered by the API, so paging stays right).
fn filter_statuses(query: &ListQuery) -> Result<&'static [RunStatus], PageError> {
    let filter = query.status.as_deref().unwrap_or_default();
    FILTERS
        .iter()
        .find(|(value, _, _)| *value == filter)
        .map(|(_, _, statuses)| *statuses)
        .ok_or_else(|| PageError::BadRequest(format!("unknown status filter {filter:?}")))
}

async fn my_runs(me: SignedIn, Query(query): Query<ListQuery>) -> Result<Response, PageError> {
    let all = query.all == Some(1);
    let page = query.page.unwrap_or(0);
    let runs = me
        .api()
        .my_runs(all, filter_statuses(&query)?, page * PAGE_SIZE, PAGE_SIZE)
        .await?;
    list_page(&me, "/run", "Runs", runs, &query)
}

async fn namespace_runs(
    me: SignedIn,
    Path(ns): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let all = query.all == Some(1);
    let page = query.page.unwrap_or(0);
    let runs = me
        .api()
        .namespace_runs(&ns, all, filter_statuses(&query)?, page * PAGE_SIZE, PAGE_SIZE)
        .await?;
    list_page(&me, &format!("/ns/{ns}/run"), "Runs of the namespace", runs, &query)
}

fn list_page(me: &SignedIn, path: &str, title: &str, runs: Vec<Run>, query: &ListQuery) -> Result<Response, PageError> {
    let all = query.all == Some(1);
    let filter = query.status.clone().unwrap_or_default();
    let page = query.page.unwrap_or(0);
    let full_page = u64::try_from(runs.len()).unwrap_or(0) == PAGE_SIZE;
    let link = |all: bool, page: u64| {
        let mut link = format!("{path}?page={page}");
        if all {
            link.push_str("&all=1");
        }
        if !filter.is_empty() {
            link.push_str(&format!("&status={filter}"));
        }
        url(&link)
    };
    let moving = runs.iter().any(|run| !is_terminal(&run.status) || run.action.is_some());
    let refresh = moving.then(|| format!("{}&fragment=1", link(all, page)));
    let table = html! {
        div id="runs" data-refresh=[refresh] { (run_table(&runs, true)) }
    };
    if query.fragment == Some(1) {
        let mut response = table.into_response();
        super::no_store(&mut response);
        return Ok(response);
    }
    let body = html! {
        div class="heading" {
            h1 { (title) }
            nav class="tabs" aria-label="Whose runs" {
                a href=(link(false, 0)) aria-current=[(!all).then_some("page")] { "Mine" }
                a href=(link(true, 0)) aria-current=[all.then_some("page")] { @if me.session.admin { "All" } @else { "Mine and my namespaces'" } }
            }
        }
        form method="get" action=(url(path)) class="inline" {
            @if all { input type="hidden" name="all" value="1"; }
            label for="status" { "Status" }
            select id="status" name="status" {
                @for (value, label, _) in FILTERS { option value=(value) selected[value == filter] { (label) } }
            }
            button type="submit" { "Filter" }
        }
        (table)
        nav class="pager" aria-label="Pages" {
            @if page > 0 { a href=(link(all, page - 1)) rel="prev" { "← Newer" } }
            span { "Page " (page + 1) }
            @if full_page { a href=(link(all, page + 1)) rel="next" { "Older →" } }
        }
    };
    Ok(me.render(Section::Runs, title, body))
}

/// A table of runs, newest first as the API gives them.
pub fn run_table(runs: &[Run], show_owner: bool) -> Markup {
    html! {
        @if runs.is_empty() {
            p class="empty" { "No run." }
        } @else {
            table class="runs" {
                thead { tr { th { "Run" } th { "Status" } th { "Started" } th { "Duration" } @if show_owner { th { "Owner" } } } }
                tbody {
                    @for run in runs {
                        tr data-status=(run.status) {
                            td { a href=(url(&format!("/ns/{}/run/{}", run.namespace, run.id))) { (run.name) } " " span class="muted" { "#" (run.id.chars().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect::<String>()) } }
                            td { (status_badge(&run.status)) }
                            td { (time(run.start)) }
                            td { (layout::duration(run.duration)) }
                            @if show_owner { td { (run.uid) } }
                        }
                    }
                }
            }
        }
    }
}
