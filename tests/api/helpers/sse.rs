//! A minimal client for the server-sent event streams (`/api/public/events`,
//! `/api/secure/events`).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::TestApp;

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct Ev {
    pub kind: String,
    pub id: Option<u64>,
    pub data: Value,
}

/// A minimal SSE client over a streaming reqwest response.
pub struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    pub async fn open(
        app: &TestApp,
        path: &str,
        token: Option<&str>,
        last: Option<&str>,
    ) -> Stream {
        let mut request = app.get(path);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(last) = last {
            request = request.header("last-event-id", last);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "opening {path}");
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Stream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event; panics if none comes for a long while (a hang, not a timing).
    pub async fn next(&mut self) -> Ev {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut ev = Ev {
                    kind: "message".into(),
                    id: None,
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        ev.kind = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        ev.id = Some(v.trim().parse().expect("numeric id"));
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a heartbeat comment
                }
                ev.data = serde_json::from_str(&data).expect("JSON data");
                return ev;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.response.chunk())
                .await
                .expect("an event within 30 s")
                .unwrap()
                .expect("the stream is still open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Skips events until one of `kind` arrives.
    pub async fn next_of(&mut self, kind: &str) -> Ev {
        loop {
            let ev = self.next().await;
            if ev.kind == kind {
                return ev;
            }
        }
    }
}

/// The `id` of a JSON object (a reservation, an entry) as a string.
pub fn id_of(r: &Value) -> String {
    r["id"].as_str().unwrap().to_string()
}
