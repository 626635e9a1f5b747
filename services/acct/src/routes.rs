//! acct's HTTP API. Every route needs a user (token or API key): namespace owners and members
//! see their namespace, admins see everything, others get 403. Periods are unix seconds,
//! checked before use; nothing from a request is ever put into a query's text.

use crate::api::{
    InfluxAnswer, InfluxResult, InfluxSeries, NamespaceUsage, RunCost, RunResource, RunResourceList, RunUsageReport,
    UsedResource, UserUsage,
};
use crate::ledger::{Accountant, AcctError, now};
use crate::report::{self, Period};
use crate::store::{Interval, Scope};
use axum::Json;
use axum::extract::{FromRef, Path, State};
use goterra_core::service_api::NamespaceMembers;
use goterra_core::{ApiError, ApiQuery, AuthUser, Authenticator, ErrorBody, Identity};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::IntoParams;

#[derive(Clone)]
pub struct AcctState {
    pub accountant: Arc<Accountant>,
    pub authenticator: Arc<Authenticator>,
}

impl FromRef<AcctState> for Arc<Authenticator> {
    fn from_ref(state: &AcctState) -> Self {
        state.authenticator.clone()
    }
}

impl From<AcctError> for ApiError {
    fn from(err: AcctError) -> Self {
        match err {
            AcctError::Source(err) => {
                tracing::warn!(error = %err, "deploy unavailable");
                ApiError::Unavailable("deploy is unavailable, try again".into())
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(err: crate::store::StoreError) -> Self {
        ApiError::internal(err)
    }
}

/// The namespace, when the user may see its usage: 404 when it does not exist, 403 when the
/// user is neither an owner, a member nor an admin.
async fn readable_namespace(state: &AcctState, user: &Identity, id: &str) -> Result<NamespaceMembers, ApiError> {
    let namespace = state
        .accountant
        .source()
        .namespace(id)
        .await
        .map_err(AcctError::from)?
        .ok_or_else(|| ApiError::not_found("namespace not found"))?;
    if user.is_admin() || namespace.includes(&user.uid) {
        Ok(namespace)
    } else {
        Err(ApiError::forbidden(
            "only the namespace's owners and members, or an admin, may see its usage",
        ))
    }
}

fn admin_only(user: &Identity) -> Result<(), ApiError> {
    if user.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("only admins may see the usage of every namespace"))
    }
}

/// Unix seconds from a path segment.
fn seconds(name: &str, text: &str) -> Result<i64, ApiError> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|value| *value >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("{name}: expected unix seconds, 0 or more")))
}

/// `[from, to)`, `to` defaulting to now; 400 when reversed.
fn period(from: Option<i64>, to: Option<i64>) -> Result<Period, ApiError> {
    let now = now();
    let from = from.unwrap_or(0);
    let to = to.unwrap_or(now.max(from.saturating_add(1)));
    if from < 0 || to < 0 {
        return Err(ApiError::bad_request("from, to: expected unix seconds, 0 or more"));
    }
    if to <= from {
        return Err(ApiError::bad_request("to: must be after from"));
    }
    Ok(Period { from, to, now })
}

/// Quantities in use per (type, kind).
type KindQuantities = BTreeMap<(String, String), f64>;

/// Open intervals grouped per run, then per type and kind (quantities added).
fn in_use(intervals: Vec<Interval>) -> RunResourceList {
    let mut runs: BTreeMap<String, (RunResource, KindQuantities)> = BTreeMap::new();
    for interval in intervals {
        let (_, kinds) = runs.entry(interval.run.clone()).or_insert_with(|| {
            (
                RunResource {
                    run: interval.run.clone(),
                    endpoint: interval.endpoint.clone(),
                    resources: Vec::new(),
                    namespace: interval.namespace.clone(),
                },
                BTreeMap::new(),
            )
        });
        *kinds.entry((interval.resource_type, interval.kind)).or_default() += interval.quantity;
    }
    RunResourceList {
        resources: runs
            .into_values()
            .map(|(mut run, kinds)| {
                run.resources = kinds
                    .into_iter()
                    .map(|((resource, kind), quantity)| UsedResource {
                        kind,
                        resource,
                        quantity,
                    })
                    .collect();
                run
            })
            .collect(),
    }
}

/// Resources in use in every namespace (admins).
#[utoipa::path(get, path = "/acct/resources", tag = "original", security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = RunResourceList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn resources_all(
    State(state): State<AcctState>,
    AuthUser(user): AuthUser,
) -> Result<Json<RunResourceList>, ApiError> {
    admin_only(&user)?;
    let open = state.accountant.store().open_intervals(&Scope::All).await?;
    Ok(Json(in_use(open)))
}

/// Resources in use in a namespace.
#[utoipa::path(get, path = "/acct/resources/ns/{id}", tag = "original", params(("id" = String, Path, description = "Namespace id")),
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = RunResourceList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn resources_namespace(
    State(state): State<AcctState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<RunResourceList>, ApiError> {
    let namespace = readable_namespace(&state, &user, &id).await?;
    let open = state
        .accountant
        .store()
        .open_intervals(&Scope::Namespace(namespace.id))
        .await?;
    Ok(Json(in_use(open)))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DaysQuery {
    /// `1`: one row per day (UTC) instead of one per period (`0` or empty: one row).
    #[param(pattern = r"^[^\S\x00-\x1f\x7f-\x9f]*[01]?[^\S\x00-\x1f\x7f-\x9f]*$")]
    pub days: Option<String>,
}

impl DaysQuery {
    fn per_day(&self) -> Result<bool, ApiError> {
        match self.days.as_deref().map(str::trim) {
            None | Some("" | "0") => Ok(false),
            Some("1") => Ok(true),
            Some(_) => Err(ApiError::bad_request("days: expected 1 or 0")),
        }
    }
}

/// The original's InfluxDB answer: one series per resource type and kind with columns
/// `time, quantity, duration, [max,] cost` (duration in unit·seconds), one row for the period
/// or one per day.
fn influx(intervals: &[Interval], period: &Period, with_max: bool, per_day: bool) -> InfluxAnswer {
    let mut columns = vec!["time", "quantity", "duration"];
    if with_max {
        columns.push("max");
    }
    columns.push("cost");
    let parts = if per_day { period.steps(86_400) } else { vec![*period] };
    let series = report::kinds(intervals, period)
        .into_iter()
        .map(|total| {
            let members: Vec<Interval> = intervals
                .iter()
                .filter(|interval| interval.resource_type == total.resource && interval.kind == total.kind)
                .cloned()
                .collect();
            let values = parts
                .iter()
                .map(|part| {
                    let usage = report::kinds(&members, part).pop().unwrap_or_default();
                    let mut row = vec![
                        Value::from(report::rfc3339(part.from)),
                        Value::from(usage.quantity),
                        Value::from(usage.unit_seconds),
                    ];
                    if with_max {
                        row.push(Value::from(usage.max_quantity));
                    }
                    row.push(Value::from(usage.cost));
                    row
                })
                .collect();
            InfluxSeries {
                name: "goterra.acct".into(),
                tags: BTreeMap::from([
                    ("resource".to_string(), total.resource),
                    ("kind".to_string(), total.kind),
                ]),
                columns: columns.iter().map(|column| column.to_string()).collect(),
                values,
            }
        })
        .collect();
    InfluxAnswer {
        acct: vec![InfluxResult {
            statement_id: 0,
            series,
            messages: None,
        }],
    }
}

async fn influx_answer(
    state: &AcctState,
    user: &Identity,
    id: &str,
    period: Period,
    with_max: bool,
    per_day: bool,
) -> Result<Json<InfluxAnswer>, ApiError> {
    let namespace = readable_namespace(state, user, id).await?;
    if per_day && (period.to - period.from) / 86_400 > MAX_STEPS {
        return Err(ApiError::bad_request(format!(
            "days: at most {MAX_STEPS} days per request, narrow the period"
        )));
    }
    let intervals = state
        .accountant
        .store()
        .intervals(&Scope::Namespace(namespace.id), period.from, period.to)
        .await?;
    Ok(Json(influx(&intervals, &period, with_max, per_day)))
}

/// All-time usage of a namespace (original shape; columns `time, quantity, duration, cost`).
#[utoipa::path(get, path = "/acct/ns/{id}", tag = "original", params(("id" = String, Path, description = "Namespace id")),
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = InfluxAnswer), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn namespace_total(
    State(state): State<AcctState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> Result<Json<InfluxAnswer>, ApiError> {
    influx_answer(&state, &user, &id, period(None, None)?, false, false).await
}

/// Usage of a namespace since `from` (original shape; columns `time, quantity, duration, max, cost`).
#[utoipa::path(get, path = "/acct/ns/{id}/from/{from}", tag = "original",
    params(("id" = String, Path, description = "Namespace id"), ("from" = i64, Path, description = "Unix seconds", minimum = 0), DaysQuery),
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = InfluxAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn namespace_from(
    State(state): State<AcctState>,
    AuthUser(user): AuthUser,
    Path((id, from)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<DaysQuery>,
) -> Result<Json<InfluxAnswer>, ApiError> {
    let period = period(Some(seconds("from", &from)?), None)?;
    influx_answer(&state, &user, &id, period, true, query.per_day()?).await
}

/// Usage of a namespace between `from` and `to` (original shape, as `/from/{from}`).
#[utoipa::path(get, path = "/acct/ns/{id}/from/{from}/to/{to}", tag = "original",
    params(("id" = String, Path, description = "Namespace id"), ("from" = i64, Path, description = "Unix seconds", minimum = 0),
        ("to" = i64, Path, description = "Unix seconds, after `from`", minimum = 0), DaysQuery),
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = InfluxAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn namespace_from_to(
    State(state): State<AcctState>,
    AuthUser(user): AuthUser,
    Path((id, from, to)): Path<(String, String, String)>,
    ApiQuery(query): ApiQuery<DaysQuery>,
) -> Result<Json<InfluxAnswer>, ApiError> {
    let period = period(Some(seconds("from", &from)?), Some(seconds("to", &to)?))?;
    influx_answer(&state, &user, &id, period, true, query.per_day()?).await
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// Unix seconds, inclusive (default 0).
    #[param(minimum = 0)]
    pub from: Option<i64>,
    /// Unix seconds, exclusive (default now); after `from`.
    #[param(minimum = 0)]
    pub to: Option<i64>,
    /// `day` or `hour`: add a series with one entry per step.
    #[param(pattern = r"^[^\S\x00-\x1f\x7f-\x9f]*(day|hour)?[^\S\x00-\x1f\x7f-\x9f]*$")]
    pub step: Option<String>,
}

impl PeriodQuery {
    fn step_seconds(&self) -> Result<Option<i64>, ApiError> {
        match self.step.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some("day") => Ok(Some(86_400)),
            Some("hour") => Ok(Some(3600)),
            Some(_) => Err(ApiError::bad_request("step: expected day or hour")),
        }
    }
}

/// Most steps one series may have.
const MAX_STEPS: i64 = 40_000;

/// Usage of a namespace per resource type and kind, with a series per step.
#[utoipa::path(get, path = "/acct/v2/ns/{id}", tag = "usage", params(("id" = String, Path, description = "Namespace id"), PeriodQuery),
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = NamespaceUsage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn namespace_usage(
    State(state): State<AcctState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PeriodQuery>,
) -> Result<Json<NamespaceUsage>, ApiError> {
    let step = query.step_seconds()?;
    let period = period(query.from, query.to)?;
    let namespace = readable_namespace(&state, &user, &id).await?;
    let intervals = state
        .accountant
        .store()
        .intervals(&Scope::Namespace(namespace.id.clone()), period.from, period.to)
        .await?;
    // The series starts with the first usage, so that `from=0` with `step=day` is cheap.
    let first_use = intervals.iter().map(|interval| interval.start_at).min();
    let series_period = Period {
        from: first_use.map_or(period.to, |start| start.max(period.from)),
        ..period
    };
    if let Some(step) = step
        && (series_period.to - series_period.from) / step > MAX_STEPS
    {
        return Err(ApiError::bad_request(format!(
            "step: at most {MAX_STEPS} steps per request, narrow the period"
        )));
    }
    let kinds = report::kinds(&intervals, &period);
    Ok(Json(NamespaceUsage {
        namespace: namespace.id,
        from: period.from,
        to: period.to,
        cost: report::total_cost(&kinds),
        kinds,
        series: step
            .map(|step| report::series(&intervals, &series_period, step))
            .unwrap_or_default(),
    }))
}

/// Usage of one run of a namespace, resource interval by resource interval.
#[utoipa::path(get, path = "/acct/v2/ns/{id}/run/{run}", tag = "usage",
    params(("id" = String, Path, description = "Namespace id"), ("run" = String, Path, description = "Run id"), PeriodQuery),
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = RunUsageReport), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn run_usage(
    State(state): State<AcctState>,
    AuthUser(user): AuthUser,
    Path((id, run)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<PeriodQuery>,
) -> Result<Json<RunUsageReport>, ApiError> {
    let period = period(query.from, query.to)?;
    let namespace = readable_namespace(&state, &user, &id).await?;
    let owner = state
        .accountant
        .store()
        .owner(&run)
        .await?
        .filter(|owner| owner.namespace == namespace.id)
        .ok_or_else(|| ApiError::not_found("run not found in this namespace (or it never had billed resources)"))?;
    let intervals = state
        .accountant
        .store()
        .intervals(&Scope::Run(owner.run.clone()), period.from, period.to)
        .await?;
    let kinds = report::kinds(&intervals, &period);
    Ok(Json(RunUsageReport {
        run: owner.run,
        namespace: owner.namespace,
        endpoint: owner.endpoint,
        uid: owner.uid,
        from: period.from,
        to: period.to,
        cost: report::total_cost(&kinds),
        kinds,
        resources: report::resources(&intervals, &period),
    }))
}

/// Usage of the runs a user started (the user themself, or an admin).
#[utoipa::path(get, path = "/acct/v2/user/{uid}", tag = "usage", params(("uid" = String, Path, description = "User id"), PeriodQuery),
    security(("token" = []), ("apikey" = [])),
    responses((status = 200, body = UserUsage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn user_usage(
    State(state): State<AcctState>,
    AuthUser(user): AuthUser,
    Path(uid): Path<String>,
    ApiQuery(query): ApiQuery<PeriodQuery>,
) -> Result<Json<UserUsage>, ApiError> {
    if user.uid != uid && !user.is_admin() {
        return Err(ApiError::forbidden(
            "only the user themself or an admin may see a user's usage",
        ));
    }
    let period = period(query.from, query.to)?;
    let intervals = state
        .accountant
        .store()
        .intervals(&Scope::User(uid.clone()), period.from, period.to)
        .await?;
    let kinds = report::kinds(&intervals, &period);
    let mut runs: BTreeMap<String, RunCost> = BTreeMap::new();
    for interval in &intervals {
        let entry = runs.entry(interval.run.clone()).or_insert_with(|| RunCost {
            run: interval.run.clone(),
            namespace: interval.namespace.clone(),
            cost: 0.0,
        });
        entry.cost += report::cost(interval, period.seconds(interval));
    }
    Ok(Json(UserUsage {
        uid,
        from: period.from,
        to: period.to,
        cost: report::total_cost(&kinds),
        kinds,
        runs: runs.into_values().collect(),
    }))
}
