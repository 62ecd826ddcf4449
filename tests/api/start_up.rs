//! What a zone reads when it rebuilds at start-up: on SQLite, one ordered walk of a
//! covering index (`reservations_zone_active_covering`, migration 0011), never a lookup
//! of each row in the table, which took twice as long on a million active reservations.

use crate::helpers::{Backend, TestApp};

#[tokio::test]
async fn on_sqlite_a_zone_rebuilds_from_one_covering_index() {
    let app = TestApp::spawn(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    let pica::storage::Db::Sqlite(pool) = app.db.connect().await else {
        unreachable!("a SQLite test database")
    };
    let explain = format!("EXPLAIN QUERY PLAN {}", pica::storage::ACTIVE_RESERVATIONS);
    let rows = sqlx::query(sqlx::AssertSqlSafe(explain))
        .bind("quiet")
        .bind(0_i64)
        .fetch_all(&pool)
        .await
        .unwrap();
    let plan: Vec<String> = rows
        .iter()
        .map(|row| sqlx::Row::get::<String, _>(row, "detail"))
        .collect();
    let plan = plan.join("\n");
    assert!(
        plan.contains("USING COVERING INDEX reservations_zone_active_covering"),
        "the rebuild does not read the covering index:\n{plan}"
    );
}
