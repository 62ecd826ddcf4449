//! The API's self-description and metrics: the OpenAPI document derived from the
//! handlers matches the router (both ways), `/docs` is served, and `/metrics` is valid
//! Prometheus text with bounded labels.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::helpers::{Backend, TestApp, body};
use reqwest::StatusCode;
use serde_json::Value;

const METHODS: [&str; 8] = [
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The document the server serves, derived from the same route table as the router.
fn openapi() -> Value {
    serde_json::to_value(pica::http::openapi()).expect("the document serializes")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/http") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The handlers registered with `routes!(a, b, ...)` in `src/http`, and every place
/// that registers a route some other way (`.route(`, `.nest(`, `.route_service(`),
/// which would bypass the document.
fn registrations_in_source() -> (Vec<String>, Vec<String>) {
    let mut files = Vec::new();
    rust_files(&manifest_dir().join("src/http"), &mut files);
    let (mut handlers, mut bypasses) = (Vec::new(), Vec::new());
    for file in files {
        let source = std::fs::read_to_string(&file).expect("read source");
        // A unit test's own router (the route guard's) is never served.
        let source = source.split("\n#[cfg(test)]").next().unwrap_or_default();
        for bypass in [".route(", ".nest(", ".route_service(", ".nest_service("] {
            if source.contains(bypass) {
                bypasses.push(format!("{}: {bypass}", file.display()));
            }
        }
        let mut rest = source;
        while let Some(at) = rest.find("routes!(") {
            rest = &rest[at + "routes!(".len()..];
            let end = rest.find(')').expect("`)` closing routes!(");
            handlers.extend(rest[..end].split(',').map(|h| h.trim().to_string()));
            rest = &rest[end..];
        }
    }
    (handlers, bypasses)
}

fn operations(doc: &Value) -> Vec<(String, String)> {
    let paths = doc["paths"].as_object().expect("`paths` is an object");
    let mut ops = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().expect("path item is an object").keys() {
            if METHODS.contains(&method.as_str()) {
                ops.push((method.clone(), path.clone()));
            }
        }
    }
    ops
}

#[test]
fn openapi_document_is_3_1_and_well_formed() {
    let doc = openapi();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["apiKeyHeader"]["name"], "api-key");
    assert_eq!(schemes["xApiKeyHeader"]["name"], "X-API-Key");
    let error = &doc["components"]["schemas"]["Error"];
    assert!(error["properties"]["detail"].is_object());
    assert_eq!(error["required"], serde_json::json!(["detail"]));

    // Every local $ref points at something.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let pointer = r.strip_prefix('#').expect("only local $refs");
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }

    // Every operation is documented enough to render and is guarded as the code is.
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let mut ids = HashMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let what = format!("{} {path}", method.to_uppercase());
            let tag = op["tags"][0]
                .as_str()
                .unwrap_or_else(|| panic!("{what}: no tag"));
            assert!(tags.contains(tag), "{what}: tag {tag} is not declared");
            assert!(op["summary"].is_string(), "{what}: no summary");
            let responses = op["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{what}: no responses"));
            assert!(
                responses.keys().any(|c| c.starts_with('2')),
                "{what}: no success response"
            );
            // Every error answer is documented as a `{"detail": ...}` body (a success or
            // a redirect has none).
            for (code, response) in responses {
                if code.starts_with('2') || code.starts_with('3') {
                    continue;
                }
                let response = match response["$ref"].as_str() {
                    Some(r) => doc.pointer(r.strip_prefix('#').unwrap()).unwrap(),
                    None => response,
                };
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                let name = schema.as_str().and_then(|r| r.rsplit('/').next());
                let detailed = name.is_some_and(|n| {
                    doc["components"]["schemas"][n]["required"]
                        .as_array()
                        .is_some_and(|r| r.contains(&Value::from("detail")))
                });
                assert!(
                    detailed || (path == "/readyz" && code == "503"),
                    "{what} {code}: not documented as a `detail` body"
                );
            }
            // Whatever takes input can be answered 400 (malformed JSON, query or path).
            let takes_input = op.get("requestBody").is_some()
                || op["parameters"].as_array().is_some_and(|p| !p.is_empty());
            assert!(
                !takes_input || responses.contains_key("400"),
                "{what}: takes input but documents no 400"
            );
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{what}: no operationId"));
            assert!(
                ids.insert(id.to_string(), what.clone()).is_none(),
                "{what}: duplicate operationId {id}"
            );
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let guarded = path.starts_with("/api/secure/") || path.starts_with("/api/admin/");
            assert_eq!(
                secured, guarded,
                "{what}: `security` must be set exactly on secure/admin paths"
            );
            for param in op["parameters"].as_array().into_iter().flatten() {
                if param["in"] == "path" {
                    let name = param["name"].as_str().unwrap();
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{what}: path parameter {name} not in the path"
                    );
                }
            }
        }
    }
}

/// The router and the document come from one table: every route is registered with
/// `routes!` (which adds the handler's `#[utoipa::path]` operation), nothing routes
/// around it, and each registered handler is exactly one documented operation.
#[test]
fn every_route_is_registered_with_its_operation() {
    let (handlers, bypasses) = registrations_in_source();
    assert!(
        bypasses.is_empty(),
        "routes registered outside `routes!` are missing from the document: {bypasses:?}"
    );
    let ops = operations(&openapi());
    assert_eq!(ops.len(), 60, "operations: {ops:?}");
    assert_eq!(
        handlers.len(),
        ops.len(),
        "each handler in routes!() is one operation: {handlers:?}"
    );
}

/// The other way round, against the running server: every documented operation is
/// answered by its handler, not by the router's fallbacks (404 `Not Found` for an
/// unknown path, 405 for a known path with another method).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let doc = openapi();
    for (method, path) in operations(&doc) {
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "1" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = app
            .client
            .request(method.clone(), format!("{}{concrete}", app.base))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if status == StatusCode::NOT_FOUND {
            let detail = body(r).await["detail"].clone();
            assert_ne!(detail, "Not Found", "{method} {path} hit the fallback");
        }
        // The fallback itself is not documented.
    }
    let r = app.get("/no/such/route").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(r).await["detail"], "Not Found");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_and_docs_are_served() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let r = app.get("/openapi.json").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(body(r).await, openapi());

    let r = app.get("/docs").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = r.text().await.unwrap();
    assert!(page.contains("fetch(\"/openapi.json\")"));
    // Works with no network: nothing is loaded from elsewhere.
    assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("src=\"//"));
    app.stop().await;
}

/// One parsed sample line: metric name, labels, value.
pub(crate) type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the Prometheus text format strictly enough to catch malformed output: every
/// line is a `# HELP`/`# TYPE` comment or a sample of a family whose TYPE came first,
/// label values are quoted and escaped, values are numbers, series are not repeated.
pub(crate) fn parse_prometheus(text: &str) -> Vec<Sample> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut types: HashMap<String, String> = HashMap::new();
    let mut seen = BTreeSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (kind, name, rest) = (
                parts.next().unwrap(),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            assert!(name_ok(name), "bad metric name in {line:?}");
            if kind == "TYPE" {
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&rest),
                    "bad type in {line:?}"
                );
                assert!(
                    types.insert(name.to_string(), rest.to_string()).is_none(),
                    "TYPE twice: {line:?}"
                );
            } else {
                assert_eq!(kind, "HELP", "unknown comment {line:?}");
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line:?}"));
                let mut labels = BTreeMap::new();
                let mut s = inner;
                while !s.is_empty() {
                    let (key, after) = s
                        .split_once("=\"")
                        .unwrap_or_else(|| panic!("bad label in {line:?}"));
                    assert!(name_ok(key), "bad label name in {line:?}");
                    let mut val = String::new();
                    let mut chars = after.char_indices();
                    let mut end = None;
                    while let Some((i, c)) = chars.next() {
                        match c {
                            '\\' => match chars.next() {
                                Some((_, 'n')) => val.push('\n'),
                                Some((_, e @ ('\\' | '"'))) => val.push(e),
                                other => panic!("bad escape {other:?} in {line:?}"),
                            },
                            '"' => {
                                end = Some(i);
                                break;
                            }
                            c => val.push(c),
                        }
                    }
                    let end = end.unwrap_or_else(|| panic!("unterminated label value in {line:?}"));
                    labels.insert(key.to_string(), val);
                    s = &after[end + 1..];
                    s = s.strip_prefix(',').unwrap_or(s);
                }
                (name, labels)
            }
        };
        assert!(name_ok(name), "bad metric name in {line:?}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.get(*base).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "sample before its # TYPE: {line:?}"
        );
        assert!(seen.insert(series.to_string()), "series repeated: {line:?}");
        samples.push((name.to_string(), labels, value));
    }
    samples
}

pub(crate) fn find<'a>(
    samples: &'a [Sample],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a Sample> {
    samples.iter().find(|(n, l, _)| {
        n == name
            && labels
                .iter()
                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
    })
}

async fn metrics_count_requests_by_route_template(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for _ in 0..2 {
        let r = app.get("/api/public/zones").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = app
        .get("/api/public/zones/quiet/availability?date=nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.get("/no/such/page-1234").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app.get("/api/secure/").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = app.get("/metrics").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    let samples = parse_prometheus(&text);

    let count = |route: &str, status: &str| {
        find(
            &samples,
            "pica_http_requests_total",
            &[("method", "GET"), ("route", route), ("status", status)],
        )
        .map(|s| s.2)
    };
    assert_eq!(count("/api/public/zones", "200"), Some(2.0), "{text}");
    assert_eq!(
        count("/api/public/zones/{zone}/availability", "422"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(count("unmatched", "404"), Some(1.0), "{text}");
    assert_eq!(count("/api/secure/", "403"), Some(1.0), "{text}");
    // Raw paths never become labels.
    assert!(
        !text.contains("page-1234") && !text.contains("quiet/availability"),
        "{text}"
    );

    // The histogram is cumulative and agrees with its count.
    let route = [("route", "/api/public/zones")];
    let buckets: Vec<&Sample> = samples
        .iter()
        .filter(|(n, l, _)| {
            n == "pica_http_request_duration_seconds_bucket" && l["route"] == "/api/public/zones"
        })
        .collect();
    assert!(
        buckets.len() > 2 && buckets.windows(2).all(|w| w[0].2 <= w[1].2),
        "{text}"
    );
    let last = buckets.last().unwrap();
    assert_eq!(last.1["le"], "+Inf");
    assert_eq!(last.2, 2.0);
    assert_eq!(
        find(&samples, "pica_http_request_duration_seconds_count", &route)
            .unwrap()
            .2,
        2.0
    );
    assert!(
        find(&samples, "pica_http_request_duration_seconds_sum", &route)
            .unwrap()
            .2
            > 0.0
    );

    // Gauges from the app state.
    assert_eq!(
        find(&samples, "pica_zones_ready", &[]).unwrap().2,
        1.0,
        "{text}"
    );
    for zone in ["coworking", "cafe", "quiet"] {
        assert_eq!(
            find(&samples, "pica_zone_actor_up", &[("zone", zone)]).map(|s| s.2),
            Some(1.0),
            "{text}"
        );
    }
    let name = if backend == Backend::Sqlite {
        "sqlite"
    } else {
        "postgres"
    };
    assert_eq!(
        find(&samples, "pica_database_info", &[("backend", name)]).map(|s| s.2),
        Some(1.0),
        "{text}"
    );
    // The scrape itself is in flight while it renders.
    assert_eq!(
        find(&samples, "pica_http_requests_in_flight", &[]).map(|s| s.2),
        Some(1.0),
        "{text}"
    );

    // The scrape is counted by the next one.
    let text = app
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = parse_prometheus(&text);
    assert!(
        find(
            &samples,
            "pica_http_requests_total",
            &[("route", "/metrics"), ("status", "200")]
        )
        .is_some()
    );
    app.stop().await;
}

on_both_backends!(metrics_count_requests_by_route_template);
