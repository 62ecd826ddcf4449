//! The unit of work in `/metrics`: after some reservations, the transaction counter,
//! the intents-per-transaction and commit-time histograms agree with each other and
//! with the writes made; a commit the database refuses shows as a failed transaction
//! and a failed intent; the queue depth and every zone's mailbox depth are there.

use crate::api_docs::{Sample, find, parse_prometheus};
use crate::helpers::{Backend, TestApp, execute, slot};
use reqwest::StatusCode;

on_both_backends!(unit_of_work_transactions_are_counted_timed_and_sized);

async fn scrape(app: &TestApp) -> (String, Vec<Sample>) {
    let r = app.get("/metrics").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    let samples = parse_prometheus(&text);
    (text, samples)
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    find(samples, name, labels)
        .unwrap_or_else(|| panic!("{name} {labels:?} missing from /metrics"))
        .2
}

/// The unit of work's families in one scrape.
struct Uow {
    committed: f64,
    failed: f64,
    failed_intents: f64,
    intents_count: f64,
    intents_sum: f64,
}

fn uow(text: &str, samples: &[Sample]) -> Uow {
    let uow = Uow {
        committed: value(
            samples,
            "pica_uow_batches_total",
            &[("outcome", "committed")],
        ),
        failed: value(samples, "pica_uow_batches_total", &[("outcome", "failed")]),
        failed_intents: value(samples, "pica_uow_commit_failures_total", &[]),
        intents_count: value(samples, "pica_uow_intents_per_batch_count", &[]),
        intents_sum: value(samples, "pica_uow_intents_per_batch_sum", &[]),
    };
    // One observation per transaction in each histogram, each cumulative up to +Inf.
    let transactions = uow.committed + uow.failed;
    assert_eq!(uow.intents_count, transactions, "{text}");
    assert_eq!(
        value(samples, "pica_uow_commit_seconds_count", &[]),
        transactions,
        "{text}"
    );
    for (family, first, last) in [
        ("pica_uow_intents_per_batch", "1", "1024"),
        ("pica_uow_commit_seconds", "0.0001", "1"),
    ] {
        let bucket = format!("{family}_bucket");
        let buckets: Vec<&Sample> = samples.iter().filter(|(n, _, _)| *n == bucket).collect();
        assert_eq!(buckets.first().unwrap().1["le"], first, "{text}");
        assert_eq!(buckets[buckets.len() - 2].1["le"], last, "{text}");
        assert_eq!(buckets.last().unwrap().1["le"], "+Inf", "{text}");
        assert_eq!(buckets.last().unwrap().2, transactions, "{text}");
        assert!(buckets.windows(2).all(|w| w[0].2 <= w[1].2), "{text}");
    }
    assert!(
        text.contains("# TYPE pica_uow_batches_total counter"),
        "{text}"
    );
    assert!(text.contains("# HELP pica_uow_commit_seconds "), "{text}");
    uow
}

async fn unit_of_work_transactions_are_counted_timed_and_sized(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (text, samples) = scrape(&app).await;
    let before = uow(&text, &samples);

    // Three reservations one after another, four at once (they may share transactions).
    let mut tokens = Vec::new();
    for i in 0..7 {
        tokens.push(app.user(&format!("user{i}")).await);
    }
    for (i, seat) in ["Q1", "Q2", "Q3"].into_iter().enumerate() {
        let r = app.reserve(&tokens[i], slot(seat, 1, 9, 10)).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let concurrent = ["A1", "A2", "A3", "A4"]
        .into_iter()
        .enumerate()
        .map(|(i, seat)| app.reserve(&tokens[3 + i], slot(seat, 1, 9, 10)));
    for r in futures::future::join_all(concurrent).await {
        assert_eq!(r.status(), StatusCode::CREATED);
    }

    let (text, samples) = scrape(&app).await;
    let after = uow(&text, &samples);
    assert!(after.committed >= before.committed + 1.0, "{text}");
    assert_eq!(after.failed, before.failed, "{text}");
    // Every reservation is an intent of a committed transaction (sweeps may add more).
    assert!(after.intents_sum - before.intents_sum >= 7.0, "{text}");
    assert_eq!(
        value(&samples, "pica_uow_queue_depth", &[]),
        0.0,
        "every write was answered after its commit: {text}"
    );
    assert_eq!(
        value(&samples, "pica_uow_transactions_in_flight", &[]),
        0.0,
        "{text}"
    );
    for zone in ["coworking", "cafe", "quiet"] {
        assert_eq!(
            value(&samples, "pica_zone_mailbox_depth", &[("zone", zone)]),
            0.0,
            "{text}"
        );
    }
    assert!(
        text.contains("# TYPE pica_zone_mailbox_depth gauge"),
        "{text}"
    );

    // A commit the database refuses: one failed transaction, one failed intent.
    let db = app.db.connect().await;
    match backend {
        Backend::Sqlite => {
            execute(&db, "CREATE TRIGGER refuse_q7 BEFORE INSERT ON reservations WHEN NEW.seat_number = 'Q7' \
                          BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;").await;
        }
        Backend::Postgres => {
            execute(&db, "CREATE FUNCTION refuse_q7() RETURNS trigger LANGUAGE plpgsql AS $$ \
                          BEGIN IF NEW.seat_number = 'Q7' THEN RAISE EXCEPTION 'refused by the test'; END IF; \
                          RETURN NEW; END $$; \
                          CREATE TRIGGER refuse_q7 BEFORE INSERT ON reservations \
                          FOR EACH ROW EXECUTE FUNCTION refuse_q7();").await;
        }
    }
    let r = app.reserve(&tokens[0], slot("Q7", 2, 9, 10)).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let (text, samples) = scrape(&app).await;
    let refused = uow(&text, &samples);
    eprintln!("{text}");
    // Alone it is final; sharing a batch with a sweep's write, the batch fails too and
    // the reservation fails again alone.
    assert!(refused.failed >= after.failed + 1.0, "{text}");
    assert_eq!(refused.failed_intents, after.failed_intents + 1.0, "{text}");
    app.stop().await;
}
