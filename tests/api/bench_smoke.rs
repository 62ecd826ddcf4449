//! The load generator end to end, kept small for CI: a few hundred requests of every
//! scenario against a real server, the echo ceiling, and the audit of the database.

use crate::helpers::{Backend, TestApp};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_generator_runs_every_scenario_and_its_audit_passes() {
    let app = TestApp::spawn(Backend::Sqlite).await.expect("sqlite app");
    let out = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_pica-bench"))
        .args(["run", "--url", &app.base, "--database-url", &app.db.url])
        .args([
            "--scenario",
            "hot:day,hot:slot,spread,mixed",
            "--connections",
            "8",
        ])
        .args(["--requests", "150", "--users", "4", "--ceiling", "--quiet"])
        .args(["--label", "smoke", "--out"])
        .arg(out.path())
        .output()
        .await
        .expect("run pica-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "pica-bench failed:\n{stderr}");

    let report: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("smoke.json")).unwrap()).unwrap();
    assert_eq!(report["audit_ok"], true);
    let points = report["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    for point in points {
        let name = format!("{} {}", point["scenario"], point["shape"]);
        assert_eq!(point["audit"]["ok"], true, "{name}: {}", point["audit"]);
        assert_eq!(point["requests"], 150, "{name}");
        assert_eq!(point["errors"], 0, "{name}: {}", point["status"]);
        assert!(point["latency"]["p99_ms"].as_f64().unwrap() > 0.0);
        assert!(point["ratio_to_ceiling"].as_f64().unwrap() > 0.0);
    }
    // The hot seats were won (201) and fought over (409); winners cancelled (200).
    let hot = &points[0]["status"];
    for code in ["200", "201", "409"] {
        assert!(hot[code].as_u64().unwrap_or(0) > 0, "hot: {hot}");
    }
    // Every acknowledged create is in the database, and nothing else of the run.
    let audit = &points[3]["audit"];
    assert!(audit["acknowledged_creates"].as_u64().unwrap() > 0);
    assert_eq!(audit["unacknowledged_rows"], 0);
    assert_eq!(report["ceiling"].as_array().unwrap().len(), 1);
    app.stop().await;
}
