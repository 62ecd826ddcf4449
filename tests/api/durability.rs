//! Invariant 4 (docs/architecture.md): every acknowledged write survives `kill -9` of
//! the server process and a restart; the restarted engine rebuilds its memory from the
//! database.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};

use crate::helpers::{Backend, JWT_SECRET, TestDb, body, slot};
use reqwest::{Client, StatusCode};
use serde_json::json;

on_both_backends!(acknowledged_reservations_survive_kill_9);

/// Starts the real `pica` binary on a free port; returns it and its base URL.
fn start_server(database_url: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pica"))
        .env("DATABASE_URL", database_url)
        .env("PICA_BIND", "127.0.0.1:0")
        .env("PICA_JWT_SECRET", JWT_SECRET)
        .env("PICA_MAX_ACTIVE_RESERVATIONS", "1000")
        .env("PICA_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start pica");
    let url = crate::helpers::listening_url(&mut child);
    (child, url)
}

async fn acknowledged_reservations_survive_kill_9(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let client = Client::new();
    let (mut server, base) = start_server(&db.url);

    let mut tokens = Vec::new();
    for i in 0..4 {
        let (name, password) = (format!("durable{i}"), "kill-9-proof");
        let r = client
            .post(format!("{base}/api/public/register"))
            .json(&json!({"username": name, "email": format!("{name}@example.com"), "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let r = client
            .post(format!("{base}/api/public/login"))
            .json(&json!({"username": name, "password": password}))
            .send()
            .await
            .unwrap();
        tokens.push(body(r).await["access_token"].as_str().unwrap().to_string());
    }
    // 200 concurrent requests over 10 seats, some conflicting; remember every 2xx.
    let seats = ["A1", "A2", "A3", "A4", "A5", "C1", "C2", "C3", "Q1", "Q2"];
    let requests = (0..200).map(|i: usize| {
        let token = &tokens[i % 4];
        let (from, n) = (8 + (i % 13) as u32, 1 + (i / 130) as i64);
        let body = slot(seats[(i / 4) % seats.len()], n, from, from + 1);
        client
            .post(format!("{base}/api/secure/reservations"))
            .bearer_auth(token)
            .json(&body)
            .send()
    });
    let mut acknowledged = HashSet::new();
    for r in futures::future::join_all(requests).await {
        let r = r.unwrap();
        match r.status() {
            StatusCode::CREATED => {
                acknowledged.insert(body(r).await["id"].as_str().unwrap().to_string());
            }
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(acknowledged.len() > 50);
    // SIGKILL: no graceful shutdown, no chance to flush anything.
    server.kill().unwrap();
    server.wait().unwrap();

    let (mut server, base) = start_server(&db.url);
    let mut found = HashSet::new();
    for token in &tokens {
        let mut cursor = String::new();
        loop {
            let url = format!("{base}/api/secure/my-reservations?limit=100{cursor}");
            let page = body(client.get(url).bearer_auth(token).send().await.unwrap()).await;
            for item in page["items"].as_array().unwrap() {
                assert_eq!(item["status"], "confirmed");
                found.insert(item["id"].as_str().unwrap().to_string());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
    }
    assert_eq!(
        found, acknowledged,
        "exactly the acknowledged reservations survived"
    );
    // The restarted engine rebuilt its memory: an acknowledged slot is still taken.
    let r = client
        .post(format!("{base}/api/secure/reservations"))
        .bearer_auth(&tokens[0])
        .json(&slot("A1", 1, 8, 9))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    server.kill().unwrap();
    server.wait().unwrap();
}
