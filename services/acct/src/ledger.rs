//! The accounting itself: turning a run's history (from deploy) into resource intervals.
//!
//! Handling a run is idempotent. acct stores how many of the run's history entries it has
//! applied; handling the run again (a redelivered or replayed event, a resync) applies only
//! the entries after those, and none when there are none. Each new entry is applied at its own
//! time: a destroy success closes every open interval; any other end (deploy success or
//! failure, destroy failure, cancel) makes the open intervals match the run's current billable
//! resources, resource by resource (closing the gone, opening the new, and splitting one whose
//! kind, quantity or price changed).

use crate::billable::{Billable, billables};
use crate::config::AcctConfig;
use crate::deploy::{RunSource, SourceError};
use crate::store::{AcctStore, Interval, NewInterval, Plan, RunLedger, RunOwner, StoreError};
use goterra_core::events::Event;
use goterra_core::runs::RunAction;
use goterra_core::service_api::RunUsage;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum AcctError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("run {0}: changed by another worker too many times in a row")]
    Contended(String),
}

/// What handling an event or a run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not a run event.
    Ignored,
    /// Deploy does not know the run.
    UnknownRun,
    /// Nothing new in the run's history.
    UpToDate,
    Applied {
        opened: usize,
        closed: usize,
    },
}

/// Unix seconds now.
pub fn now() -> i64 {
    i64::try_from(goterra_core::token::unix_now()).unwrap_or(i64::MAX)
}

/// How many times a run is planned again when another worker changed it meanwhile.
const ATTEMPTS: usize = 8;
/// The stored mark of the last resync: runs changed at or after it are looked at again.
const RESYNC_MARK: &str = "resync_since";

pub struct Accountant {
    store: AcctStore,
    source: Arc<dyn RunSource>,
    config: Arc<AcctConfig>,
    attributes: Vec<String>,
}

impl Accountant {
    pub fn new(store: AcctStore, source: Arc<dyn RunSource>, config: Arc<AcctConfig>) -> Self {
        let attributes = config.attributes();
        Self {
            store,
            source,
            config,
            attributes,
        }
    }

    pub fn store(&self) -> &AcctStore {
        &self.store
    }

    pub fn source(&self) -> &Arc<dyn RunSource> {
        &self.source
    }

    /// Run lifecycle events (`run_*`, the run id in `Data`) account their run; others are
    /// ignored.
    pub async fn handle_event(&self, event: &Event) -> Result<Outcome, AcctError> {
        if !event.action.starts_with("run_") || event.data.trim().is_empty() {
            return Ok(Outcome::Ignored);
        }
        self.account_run(event.data.trim()).await
    }

    /// Brings the run's intervals up to date with its history.
    pub async fn account_run(&self, run: &str) -> Result<Outcome, AcctError> {
        let Some(usage) = self.source.run_usage(run, &self.attributes).await? else {
            tracing::warn!(run = %run, "deploy does not know this run; nothing to account");
            return Ok(Outcome::UnknownRun);
        };
        let billed = billables(&self.config, run, &usage.resources);
        let owner = RunOwner {
            run: usage.run.clone(),
            namespace: usage.namespace.clone(),
            endpoint: usage.endpoint.clone(),
            uid: usage.uid.clone(),
        };
        for _ in 0..ATTEMPTS {
            let (ledger, version) = match self.store.ledger(&owner.run).await? {
                Some(ledger) => {
                    let version = ledger.version;
                    (ledger, Some(version))
                }
                None if usage.history.is_empty() => return Ok(Outcome::UpToDate),
                None => (
                    RunLedger {
                        owner: owner.clone(),
                        ..RunLedger::default()
                    },
                    None,
                ),
            };
            let plan = plan_history(&self.config, &ledger, &usage, &billed);
            if version.is_some() && plan.applied == ledger.applied && plan.is_empty() {
                return Ok(Outcome::UpToDate);
            }
            if self.store.commit(&ledger.owner, version, &plan, now()).await? {
                let closed = plan.close.len() + plan.open.iter().filter(|new| new.end_at.is_some()).count();
                tracing::debug!(run = %owner.run, opened = plan.open.len(), closed, "usage recorded");
                return Ok(Outcome::Applied {
                    opened: plan.open.len(),
                    closed,
                });
            }
        }
        Err(AcctError::Contended(owner.run))
    }

    /// Splits open intervals whose configured price changed, at `at`: usage before keeps the
    /// old price. Returns the intervals repriced.
    pub async fn reprice(&self, at: i64) -> Result<usize, AcctError> {
        let mut repriced = 0;
        for run in self.store.runs_with_open_intervals().await? {
            for attempt in 0..ATTEMPTS {
                let Some(ledger) = self.store.ledger(&run).await? else {
                    break;
                };
                let plan = reprice_plan(&self.config, &ledger, at);
                if plan.is_empty() {
                    break;
                }
                if self
                    .store
                    .commit(&ledger.owner, Some(ledger.version), &plan, now())
                    .await?
                {
                    repriced += plan.close.len();
                    break;
                }
                if attempt + 1 == ATTEMPTS {
                    return Err(AcctError::Contended(run));
                }
            }
        }
        if repriced > 0 {
            tracing::info!(repriced, "prices changed: open intervals continue at the new prices");
        }
        Ok(repriced)
    }

    /// Accounts every run deploy changed since the last resync (and the second before it,
    /// for changes within the same second). Returns the runs looked at.
    pub async fn resync(&self) -> Result<usize, AcctError> {
        let mut since = (self.store.mark(RESYNC_MARK).await? - 1).max(0);
        let mut seen = 0;
        loop {
            let page = self.source.changed_runs(since).await?.runs;
            let full = page.len() as i64 >= goterra_core::service_api::CHANGED_RUNS_PAGE;
            let mut last = since;
            for changed in &page {
                if let Err(err) = self.account_run(&changed.id).await {
                    // Keep the mark before this run, so the next resync tries it again.
                    self.store.set_mark(RESYNC_MARK, last).await?;
                    return Err(err);
                }
                last = last.max(changed.status_at);
                seen += 1;
            }
            self.store.set_mark(RESYNC_MARK, last).await?;
            if !full {
                return Ok(seen);
            }
            // A full page of one second would repeat forever: move past it.
            since = if last == since { last + 1 } else { last };
        }
    }
}

/// The changes that apply the history entries after `ledger.applied`.
pub fn plan_history(config: &AcctConfig, ledger: &RunLedger, usage: &RunUsage, billed: &[Billable]) -> Plan {
    let applied = usize::try_from(ledger.applied).unwrap_or(usize::MAX);
    let mut plan = Plan {
        applied: ledger.applied,
        ..Plan::default()
    };
    let Some(new_entries) = usage.history.get(applied..).filter(|entries| !entries.is_empty()) else {
        return plan;
    };
    let mut open: Vec<Slot> = ledger.open.iter().map(Slot::Stored).collect();
    for entry in new_entries {
        let target: &[Billable] = if entry.action == RunAction::Destroy && entry.success {
            &[]
        } else {
            if entry.action == RunAction::Deploy && entry.success && !usage.has_state {
                tracing::warn!(run = %usage.run, "the run was deployed but its state is gone (destroyed before acct saw it): its usage cannot be read");
            }
            billed
        };
        reconcile(config, &ledger.owner.endpoint, &mut open, target, entry.ts, &mut plan);
    }
    plan.applied = usage.history.len() as i64;
    plan
}

/// An open interval during planning: stored, or opened by this plan (index into `plan.open`).
enum Slot<'a> {
    Stored(&'a Interval),
    Planned(usize),
}

fn reconcile(
    config: &AcctConfig,
    endpoint: &str,
    open: &mut Vec<Slot<'_>>,
    target: &[Billable],
    at: i64,
    plan: &mut Plan,
) {
    let price_of = |billable: &Billable| config.price(endpoint, &billable.resource_type, &billable.kind);
    let same = |slot: &Slot<'_>, plan: &Plan, billable: &Billable| {
        let (address, resource_type, kind, quantity, price) = match slot {
            Slot::Stored(interval) => (
                &interval.address,
                &interval.resource_type,
                &interval.kind,
                interval.quantity,
                interval.price,
            ),
            Slot::Planned(index) => {
                let new = &plan.open[*index];
                (&new.address, &new.resource_type, &new.kind, new.quantity, new.price)
            }
        };
        *address == billable.address
            && *resource_type == billable.resource_type
            && *kind == billable.kind
            && quantity == billable.quantity
            && price == price_of(billable)
    };
    let mut kept = Vec::new();
    let mut matched = vec![false; target.len()];
    for slot in open.drain(..) {
        let found = target
            .iter()
            .enumerate()
            .find(|(index, billable)| !matched[*index] && same(&slot, plan, billable));
        match found {
            Some((index, _)) => {
                matched[index] = true;
                kept.push(slot);
            }
            None => close(slot, at, plan),
        }
    }
    for (billable, _) in target.iter().zip(&matched).filter(|(_, matched)| !**matched) {
        plan.open.push(NewInterval {
            address: billable.address.clone(),
            resource_type: billable.resource_type.clone(),
            kind: billable.kind.clone(),
            quantity: billable.quantity,
            price: price_of(billable),
            start_at: at,
            end_at: None,
        });
        kept.push(Slot::Planned(plan.open.len() - 1));
    }
    *open = kept;
    // Intervals opened and closed at the same second by this plan never existed.
    let mut index = 0;
    while index < plan.open.len() {
        if plan.open[index]
            .end_at
            .is_some_and(|end| end <= plan.open[index].start_at)
        {
            plan.open.remove(index);
            for slot in open.iter_mut() {
                if let Slot::Planned(planned) = slot
                    && *planned > index
                {
                    *planned -= 1;
                }
            }
        } else {
            index += 1;
        }
    }
}

fn close(slot: Slot<'_>, at: i64, plan: &mut Plan) {
    match slot {
        Slot::Stored(interval) => plan.close.push((interval.id, at.max(interval.start_at))),
        Slot::Planned(index) => {
            let new = &mut plan.open[index];
            new.end_at = Some(at.max(new.start_at));
        }
    }
}

/// Closes at `at` the open intervals whose configured price differs, and reopens them at the
/// new price.
pub fn reprice_plan(config: &AcctConfig, ledger: &RunLedger, at: i64) -> Plan {
    let mut plan = Plan {
        applied: ledger.applied,
        ..Plan::default()
    };
    for interval in &ledger.open {
        let price = config.price(&interval.endpoint, &interval.resource_type, &interval.kind);
        if price == interval.price {
            continue;
        }
        let at = at.max(interval.start_at);
        plan.close.push((interval.id, at));
        plan.open.push(NewInterval {
            address: interval.address.clone(),
            resource_type: interval.resource_type.clone(),
            kind: interval.kind.clone(),
            quantity: interval.quantity,
            price,
            start_at: at,
            end_at: None,
        });
    }
    plan
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use goterra_core::service_api::RunHistoryEntry;

    fn config() -> AcctConfig {
        AcctConfig::from_value(
            serde_yaml::from_str(
                "billing: {default: {vm: {small: 1, large: 3}}, endpoints: [{id: e2, billing: {vm: {small: 2}}}]}",
            )
            .unwrap(),
        )
        .unwrap()
    }

    fn vm(address: &str, kind: &str) -> Billable {
        Billable {
            address: address.into(),
            resource_type: "vm".into(),
            kind: kind.into(),
            quantity: 1.0,
        }
    }

    fn entry(ts: i64, action: RunAction, success: bool) -> RunHistoryEntry {
        RunHistoryEntry { ts, action, success }
    }

    fn usage(history: Vec<RunHistoryEntry>, has_state: bool) -> RunUsage {
        RunUsage {
            run: "r".into(),
            has_state,
            history,
            ..RunUsage::default()
        }
    }

    fn ledger(applied: i64, open: Vec<Interval>) -> RunLedger {
        RunLedger {
            owner: RunOwner {
                run: "r".into(),
                endpoint: "e1".into(),
                ..RunOwner::default()
            },
            applied,
            version: 3,
            open,
        }
    }

    fn stored(id: i64, address: &str, kind: &str, price: f64, start_at: i64) -> Interval {
        Interval {
            id,
            run: "r".into(),
            namespace: String::new(),
            endpoint: "e1".into(),
            uid: String::new(),
            address: address.into(),
            resource_type: "vm".into(),
            kind: kind.into(),
            quantity: 1.0,
            price,
            start_at,
            end_at: None,
        }
    }

    #[test]
    fn a_deploy_opens_every_instance_at_its_time_and_a_replay_plans_nothing() {
        let run = usage(vec![entry(100, RunAction::Deploy, true)], true);
        let billed = [vm("vm[0]", "small"), vm("vm[1]", "small")];
        let plan = plan_history(&config(), &ledger(0, Vec::new()), &run, &billed);
        assert_eq!(plan.applied, 1);
        assert_eq!(plan.open.len(), 2);
        assert!(plan.open.iter().all(|new| new.start_at == 100 && new.price == 1.0));
        let replay = plan_history(&config(), &ledger(1, Vec::new()), &run, &billed);
        assert_eq!(
            replay,
            Plan {
                applied: 1,
                ..Plan::default()
            }
        );
    }

    #[test]
    fn a_redeploy_keeps_unchanged_resources_and_splits_changed_ones() {
        let open = vec![
            stored(1, "vm[0]", "small", 1.0, 100),
            stored(2, "vm[1]", "small", 1.0, 100),
        ];
        let run = usage(
            vec![entry(100, RunAction::Deploy, true), entry(200, RunAction::Deploy, true)],
            true,
        );
        let billed = [vm("vm[0]", "small"), vm("vm[1]", "large"), vm("vm[2]", "small")];
        let plan = plan_history(&config(), &ledger(1, open), &run, &billed);
        assert_eq!(plan.close, [(2, 200)]);
        let opened: Vec<_> = plan
            .open
            .iter()
            .map(|new| (new.address.as_str(), new.kind.as_str(), new.price))
            .collect();
        assert_eq!(opened, [("vm[1]", "large", 3.0), ("vm[2]", "small", 1.0)]);
    }

    #[test]
    fn entries_applied_together_each_apply_at_their_time() {
        // Deployed (with a failed destroy left over), then destroyed, both seen at once.
        let run = usage(
            vec![
                entry(100, RunAction::Deploy, true),
                entry(150, RunAction::Destroy, false),
                entry(300, RunAction::Destroy, true),
            ],
            true,
        );
        let billed = [vm("vm[0]", "small")];
        let plan = plan_history(&config(), &ledger(0, Vec::new()), &run, &billed);
        assert_eq!(plan.applied, 3);
        assert_eq!(plan.open.len(), 1);
        assert_eq!((plan.open[0].start_at, plan.open[0].end_at), (100, Some(300)));
        // Opened and closed in the same second: never existed.
        let instant = usage(
            vec![
                entry(100, RunAction::Deploy, true),
                entry(100, RunAction::Destroy, true),
            ],
            true,
        );
        assert!(
            plan_history(&config(), &ledger(0, Vec::new()), &instant, &billed)
                .open
                .is_empty()
        );
    }

    #[test]
    fn a_destroy_closes_everything_and_endpoint_prices_apply() {
        let open = vec![stored(7, "vm[0]", "small", 1.0, 100)];
        let run = usage(
            vec![
                entry(100, RunAction::Deploy, true),
                entry(400, RunAction::Destroy, true),
            ],
            false,
        );
        let plan = plan_history(&config(), &ledger(1, open.clone()), &run, &[]);
        assert_eq!(plan.close, [(7, 400)]);
        let mut on_e2 = ledger(1, open);
        on_e2.owner.endpoint = "e2".into();
        let redeploy = usage(
            vec![entry(100, RunAction::Deploy, true), entry(400, RunAction::Deploy, true)],
            true,
        );
        let plan = plan_history(&config(), &on_e2, &redeploy, &[vm("vm[0]", "small")]);
        assert_eq!(plan.open[0].price, 2.0, "the endpoint's price");
    }

    #[test]
    fn repricing_splits_only_intervals_whose_price_changed() {
        let open = vec![
            stored(1, "vm[0]", "small", 1.0, 100),
            stored(2, "vm[1]", "large", 0.5, 100),
        ];
        let plan = reprice_plan(&config(), &ledger(4, open), 1000);
        assert_eq!(plan.applied, 4);
        assert_eq!(plan.close, [(2, 1000)]);
        assert_eq!((plan.open[0].price, plan.open[0].start_at), (3.0, 1000));
    }
}
