//! The login throttle under concurrency: attempts reserve their place before the
//! password is checked, so racing requests get no more password checks than the
//! limits allow; and lock-out is per username *and* address, so a stranger guessing
//! from elsewhere does not lock the owner out.
//!
//! Distinct client addresses come from binding the test client to other loopback
//! addresses (127.0.0.2, ...), which Linux routes to the server on 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use crate::helpers::{Backend, TestApp, body};
use chrono::{Duration, Utc};
use pica_actors::ManualClock;
use reqwest::{Client, StatusCode};
use serde_json::json;

on_both_backends!(
    racing_wrong_passwords_for_one_user_get_exactly_the_limit_of_checks,
    racing_logins_from_one_address_get_at_most_the_address_limit,
    a_stranger_elsewhere_cannot_lock_the_owner_out,
    the_global_username_limit_stops_guessing_spread_over_addresses,
);

const RACERS: usize = 100;

fn from(last_octet: u8) -> Client {
    Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)))
        .build()
        .unwrap()
}

async fn login(app: &TestApp, client: &Client, username: &str, password: &str) -> StatusCode {
    client
        .post(app.url("/api/public/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

/// Fires `RACERS` logins at once; returns (401s, 429s). A 429 must carry `Retry-After`;
/// any other status fails the test.
async fn race(app: &TestApp, client: &Client, user: impl Fn(usize) -> String) -> (usize, usize) {
    let requests = (0..RACERS).map(|i| {
        client
            .post(app.url("/api/public/login"))
            .json(&json!({"username": user(i), "password": "wrong-guess-1"}))
            .send()
    });
    let (mut refused, mut throttled) = (0, 0);
    for r in futures::future::join_all(requests).await {
        let r = r.unwrap();
        match r.status() {
            StatusCode::UNAUTHORIZED => refused += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let wait: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(wait >= 1, "Retry-After {wait}");
                throttled += 1;
            }
            other => panic!("unexpected {other}: {}", body(r).await),
        }
    }
    (refused, throttled)
}

async fn racing_wrong_passwords_for_one_user_get_exactly_the_limit_of_checks(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.register("ana", "sunny-day-42").await;
    let checks = app.state.auth.passwords.runs();
    let (refused, throttled) = race(&app, &from(1), |_| "ana".into()).await;
    let checked = app.state.auth.passwords.runs() - checks;
    assert_eq!(
        checked, 5,
        "PICA_LOGIN_MAX_FAILURES password checks, not more"
    );
    assert_eq!((refused, throttled), (5, RACERS - 5));
    // The owner from the same address is locked too now: that pair had its 5.
    assert_eq!(
        login(&app, &from(1), "ana", "sunny-day-42").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(app.state.auth.passwords.runs() - checks, 5);
    app.stop().await;
}

async fn racing_logins_from_one_address_get_at_most_the_address_limit(backend: Backend) {
    let Some(app) =
        TestApp::spawn_with(backend, &[("PICA_LOGIN_MAX_FAILURES_PER_ADDRESS", "20")]).await
    else {
        return;
    };
    let checks = app.state.auth.passwords.runs();
    // A different (unknown) username each: only the address limit applies.
    let (refused, throttled) = race(&app, &from(1), |i| format!("nobody{i}")).await;
    let checked = app.state.auth.passwords.runs() - checks;
    assert_eq!(
        checked, 20,
        "the address limit of password checks, not more"
    );
    assert_eq!((refused, throttled), (20, RACERS - 20));
    // Another address is not affected.
    app.register("ben", "rainy-day-43").await;
    assert_eq!(
        login(&app, &from(2), "ben", "rainy-day-43").await,
        StatusCode::OK
    );
    assert_eq!(
        login(&app, &from(1), "ben", "rainy-day-43").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    app.stop().await;
}

async fn a_stranger_elsewhere_cannot_lock_the_owner_out(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.register("ana", "sunny-day-42").await;
    let stranger = from(2);
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(login(&app, &stranger, "ana", "guess-1234").await);
    }
    assert_eq!(statuses[..5], [StatusCode::UNAUTHORIZED; 5]);
    assert_eq!(statuses[5..], [StatusCode::TOO_MANY_REQUESTS; 3]);
    // The owner, from their own address, signs in as usual...
    let owner = from(1);
    assert_eq!(
        login(&app, &owner, "ana", "sunny-day-42").await,
        StatusCode::OK
    );
    // ...even after a few typos of their own.
    for _ in 0..4 {
        assert_eq!(
            login(&app, &owner, "ana", "sunny-day-24").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login(&app, &owner, "ana", "sunny-day-42").await,
        StatusCode::OK
    );
    // The stranger is still locked, even with the right password.
    assert_eq!(
        login(&app, &stranger, "ana", "sunny-day-42").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    app.stop().await;
}

async fn the_global_username_limit_stops_guessing_spread_over_addresses(backend: Backend) {
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let Some(app) = TestApp::spawn_with_clock(
        backend,
        &[("PICA_LOGIN_MAX_FAILURES_PER_USERNAME_GLOBAL", "12")],
        clock.clone(),
    )
    .await
    else {
        return;
    };
    app.register("ana", "sunny-day-42").await;
    // Three strangers, 5 guesses each allowed by their pair: the 12 the username may
    // take from everywhere run out during the third.
    let mut refused = 0;
    for octet in 2..=4 {
        let stranger = from(octet);
        for _ in 0..5 {
            if login(&app, &stranger, "ana", "guess-1234").await == StatusCode::UNAUTHORIZED {
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 12);
    let r = from(1)
        .post(app.url("/api/public/login"))
        .json(&json!({"username": "ana", "password": "sunny-day-42"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    clock.advance(Duration::seconds(wait + 1));
    assert_eq!(
        login(&app, &from(1), "ana", "sunny-day-42").await,
        StatusCode::OK
    );
    app.stop().await;
}
