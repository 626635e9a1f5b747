//! The interval store on SQLite and PostgreSQL: optimistic locking, and exact clipping of
//! intervals to a period.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use goterra_acct::report::{self, Period};
use goterra_acct::store::{AcctStore, NewInterval, Plan, RunOwner, Scope};
use goterra_testing::db::{ENGINES, TestDb};

fn owner(run: &str, namespace: &str) -> RunOwner {
    RunOwner {
        run: run.into(),
        namespace: namespace.into(),
        endpoint: "e".into(),
        uid: "alice".into(),
    }
}

fn interval(address: &str, start_at: i64, end_at: Option<i64>, quantity: f64, price: f64) -> NewInterval {
    NewInterval {
        address: address.into(),
        resource_type: "null_resource".into(),
        kind: "small".into(),
        quantity,
        price,
        start_at,
        end_at,
    }
}

#[tokio::test]
async fn a_stale_plan_is_refused_and_writes_nothing() {
    for engine in ENGINES {
        let test = TestDb::new(engine).await.unwrap();
        test.db.migrate(goterra_acct::MIGRATIONS).await.unwrap();
        let store = AcctStore::new(test.db.clone());
        let run = owner("r1", "ns");
        store.ensure_run(&run, 1).await.unwrap();
        store.ensure_run(&run, 2).await.unwrap();
        let ledger = store.ledger("r1").await.unwrap().unwrap();
        assert_eq!((ledger.applied, ledger.version), (0, 0));
        let plan = Plan {
            close: Vec::new(),
            open: vec![interval("a", 100, None, 1.0, 1.0)],
            applied: 1,
        };
        assert!(store.commit(&run, Some(0), &plan, 100).await.unwrap());
        // A second worker that planned from version 0 too loses.
        let other = Plan {
            close: Vec::new(),
            open: vec![interval("b", 100, None, 1.0, 1.0)],
            applied: 1,
        };
        assert!(!store.commit(&run, Some(0), &other, 100).await.unwrap());
        let ledger = store.ledger("r1").await.unwrap().unwrap();
        assert_eq!((ledger.applied, ledger.version, ledger.open.len()), (1, 1, 1));
        // Closing and marks.
        let close = Plan {
            close: vec![(ledger.open[0].id, 150)],
            open: Vec::new(),
            applied: 2,
        };
        assert!(store.commit(&run, Some(1), &close, 150).await.unwrap());
        assert!(store.open_intervals(&Scope::All).await.unwrap().is_empty());
        // A run acct did not know is recorded with its first plan, once.
        let fresh = owner("r9", "ns");
        let first = Plan {
            applied: 1,
            ..Plan::default()
        };
        assert!(store.commit(&fresh, None, &first, 5).await.unwrap());
        assert!(!store.commit(&fresh, None, &first, 5).await.unwrap());
        assert_eq!(store.ledger("r9").await.unwrap().unwrap().applied, 1);
        assert_eq!(store.mark("m").await.unwrap(), 0);
        store.set_mark("m", 42).await.unwrap();
        store.set_mark("m", 43).await.unwrap();
        assert_eq!(store.mark("m").await.unwrap(), 43);
        test.db.close().await;
    }
}

#[tokio::test]
async fn periods_clip_intervals_exactly() {
    for engine in ENGINES {
        let test = TestDb::new(engine).await.unwrap();
        test.db.migrate(goterra_acct::MIGRATIONS).await.unwrap();
        let store = AcctStore::new(test.db.clone());
        let run = owner("r1", "ns");
        store.ensure_run(&run, 0).await.unwrap();
        let plan = Plan {
            close: Vec::new(),
            open: vec![
                interval("across-start", 500, Some(1100), 1.0, 0.5),
                interval("inside", 1200, Some(1300), 4.0, 0.25),
                interval("across-end", 1900, Some(2500), 1.0, 0.5),
                interval("open", 1950, None, 2.0, 0.5),
                interval("before", 100, Some(1000), 1.0, 0.5),
                interval("after", 2000, Some(3000), 1.0, 0.5),
            ],
            applied: 1,
        };
        assert!(store.commit(&run, Some(0), &plan, 0).await.unwrap());
        let other = owner("r2", "other-ns");
        store.ensure_run(&other, 0).await.unwrap();
        let elsewhere = Plan {
            open: vec![interval("x", 1000, None, 1.0, 1.0)],
            applied: 1,
            ..Plan::default()
        };
        assert!(store.commit(&other, Some(0), &elsewhere, 0).await.unwrap());

        let period = Period {
            from: 1000,
            to: 2000,
            now: 10_000,
        };
        let intervals = store
            .intervals(&Scope::Namespace("ns".into()), period.from, period.to)
            .await
            .unwrap();
        let mut addresses: Vec<_> = intervals.iter().map(|i| i.address.as_str()).collect();
        addresses.sort_unstable();
        assert_eq!(addresses, ["across-end", "across-start", "inside", "open"]);
        let kinds = report::kinds(&intervals, &period);
        assert_eq!(kinds[0].seconds, 100 + 100 + 100 + 50);
        assert_eq!(kinds[0].unit_seconds, 100.0 + 400.0 + 100.0 + 100.0);
        assert_eq!(kinds[0].cost, 50.0 + 100.0 + 50.0 + 50.0);
        assert_eq!(kinds[0].max_quantity, 4.0);
        let by_user = store.intervals(&Scope::User("alice".into()), 0, 100_000).await.unwrap();
        assert_eq!(by_user.len(), 7);
        let by_run = store.intervals(&Scope::Run("r2".into()), 0, 100_000).await.unwrap();
        assert_eq!(by_run.len(), 1);
        test.db.close().await;
    }
}
