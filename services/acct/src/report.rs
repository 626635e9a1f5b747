//! Usage over a period, from resource intervals: every interval counts only within the period
//! (exact clipping), open intervals count up to now, and cost is quantity × seconds × the
//! interval's own price.

use crate::api::{KindUsage, PeriodUsage, ResourceUsage};
use crate::store::Interval;
use std::collections::BTreeMap;

/// A half-open period `[from, to)` in unix seconds, with "now" for open intervals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: i64,
    pub to: i64,
    pub now: i64,
}

impl Period {
    /// The part of `interval` inside the period: `(start, end)`, empty when `start >= end`.
    pub fn clip(&self, interval: &Interval) -> (i64, i64) {
        let end = interval.end_at.unwrap_or(self.now).min(self.to);
        (interval.start_at.max(self.from), end)
    }

    pub fn seconds(&self, interval: &Interval) -> i64 {
        let (start, end) = self.clip(interval);
        (end - start).max(0)
    }

    /// The steps of `step` seconds (aligned on the epoch, so days start at 00:00 UTC) covering
    /// the period, each clipped to it.
    pub fn steps(&self, step: i64) -> Vec<Period> {
        let mut steps = Vec::new();
        if step <= 0 || self.from >= self.to {
            return steps;
        }
        let mut start = self.from - self.from.rem_euclid(step);
        while start < self.to {
            steps.push(Period {
                from: start.max(self.from),
                to: (start + step).min(self.to),
                now: self.now,
            });
            start += step;
        }
        steps
    }
}

pub fn cost(interval: &Interval, seconds: i64) -> f64 {
    interval.quantity * seconds as f64 * interval.price
}

/// Totals per resource type and kind, sorted by type then kind; kinds with no time inside the
/// period are left out.
pub fn kinds(intervals: &[Interval], period: &Period) -> Vec<KindUsage> {
    let mut groups: BTreeMap<(&str, &str), Vec<&Interval>> = BTreeMap::new();
    for interval in intervals.iter().filter(|interval| period.seconds(interval) > 0) {
        groups
            .entry((&interval.resource_type, &interval.kind))
            .or_default()
            .push(interval);
    }
    groups
        .into_iter()
        .map(|((resource, kind), members)| {
            let mut usage = KindUsage {
                resource: resource.to_string(),
                kind: kind.to_string(),
                max_quantity: peak(&members, period),
                ..KindUsage::default()
            };
            for interval in members {
                let seconds = period.seconds(interval);
                usage.intervals += 1;
                usage.quantity += interval.quantity;
                usage.seconds += seconds;
                usage.unit_seconds += interval.quantity * seconds as f64;
                usage.cost += cost(interval, seconds);
            }
            usage
        })
        .collect()
}

/// Most units in use at once within the period.
fn peak(intervals: &[&Interval], period: &Period) -> f64 {
    let mut changes: Vec<(i64, f64)> = Vec::with_capacity(intervals.len() * 2);
    for interval in intervals {
        let (start, end) = period.clip(interval);
        if start < end {
            changes.push((start, interval.quantity));
            changes.push((end, -interval.quantity));
        }
    }
    // At the same second, ends come before starts: a replacement is not an overlap.
    changes.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let (mut current, mut most) = (0.0_f64, 0.0_f64);
    for (_, change) in changes {
        current += change;
        most = most.max(current);
    }
    most
}

pub fn total_cost(kinds: &[KindUsage]) -> f64 {
    kinds.iter().map(|kind| kind.cost).sum()
}

/// The period cut in steps, each with its totals.
pub fn series(intervals: &[Interval], period: &Period, step: i64) -> Vec<PeriodUsage> {
    period
        .steps(step)
        .into_iter()
        .map(|part| {
            let kinds = kinds(intervals, &part);
            PeriodUsage {
                from: part.from,
                to: part.to,
                cost: total_cost(&kinds),
                kinds,
            }
        })
        .collect()
}

/// Each interval with its time and cost within the period.
pub fn resources(intervals: &[Interval], period: &Period) -> Vec<ResourceUsage> {
    intervals
        .iter()
        .map(|interval| {
            let seconds = period.seconds(interval);
            ResourceUsage {
                address: interval.address.clone(),
                resource: interval.resource_type.clone(),
                kind: interval.kind.clone(),
                quantity: interval.quantity,
                price: interval.price,
                start: interval.start_at,
                end: interval.end_at,
                seconds,
                cost: cost(interval, seconds),
            }
        })
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for unix seconds (InfluxDB's time format).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(start_at: i64, end_at: Option<i64>, quantity: f64, price: f64) -> Interval {
        Interval {
            id: 0,
            run: "r".into(),
            namespace: "n".into(),
            endpoint: "e".into(),
            uid: "u".into(),
            address: format!("t.x{start_at}"),
            resource_type: "t".into(),
            kind: "k".into(),
            quantity,
            price,
            start_at,
            end_at,
        }
    }

    #[test]
    fn intervals_count_only_inside_the_period() {
        let period = Period {
            from: 1000,
            to: 2000,
            now: 5000,
        };
        // Across the start, inside, across the end, open across the end, before, after.
        let intervals = [
            interval(500, Some(1100), 1.0, 1.0),
            interval(1200, Some(1300), 2.0, 0.5),
            interval(1900, Some(2500), 1.0, 1.0),
            interval(1950, None, 1.0, 1.0),
            interval(100, Some(1000), 1.0, 1.0),
            interval(2000, Some(3000), 1.0, 1.0),
        ];
        let totals = kinds(&intervals, &period);
        assert_eq!(totals.len(), 1);
        assert_eq!(totals[0].seconds, 100 + 100 + 100 + 50);
        assert_eq!(totals[0].intervals, 4);
        assert_eq!(totals[0].unit_seconds, 100.0 + 200.0 + 100.0 + 50.0);
        assert_eq!(totals[0].cost, 100.0 + 100.0 + 100.0 + 50.0);
        assert_eq!(totals[0].max_quantity, 2.0);
        // An open interval counts up to now only.
        let before_now = Period {
            from: 0,
            to: 10_000,
            now: 1960,
        };
        assert_eq!(before_now.seconds(&intervals[3]), 10);
    }

    #[test]
    fn day_steps_start_at_midnight_utc_and_sum_to_the_whole() {
        let day = 86_400;
        let period = Period {
            from: day + 3600,
            to: 3 * day + 60,
            now: 10 * day,
        };
        let steps = period.steps(day);
        assert_eq!(
            steps.iter().map(|step| (step.from, step.to)).collect::<Vec<_>>(),
            [(day + 3600, 2 * day), (2 * day, 3 * day), (3 * day, 3 * day + 60)]
        );
        let intervals = [interval(0, None, 3.0, 0.25)];
        let parts: f64 = series(&intervals, &period, day).iter().map(|step| step.cost).sum();
        assert_eq!(parts, total_cost(&kinds(&intervals, &period)));
    }

    #[test]
    fn replacements_at_the_same_second_are_not_peaks() {
        let period = Period {
            from: 0,
            to: 100,
            now: 100,
        };
        let intervals = [interval(0, Some(50), 1.0, 0.0), interval(50, None, 1.0, 0.0)];
        assert_eq!(kinds(&intervals, &period)[0].max_quantity, 1.0);
    }

    #[test]
    fn influx_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
