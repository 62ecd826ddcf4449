//! The demo space a fresh database starts with: three zones and a
//! small catalog of real, well-known books.

use super::dialect::{Dialect, on_pool};
use super::{Db, DbError};

impl Db {
    /// Seeds the demo layout and book catalog if the database has no zones yet.
    /// Returns whether it seeded.
    pub async fn seed_if_empty(&self) -> Result<bool, DbError> {
        let script = sqlx::AssertSqlSafe(demo_sql());
        Ok(on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            tx.lock_for_seeding().await?;
            let zones: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM zones")
                .fetch_one(&mut *tx)
                .await?;
            if zones > 0 {
                return Ok(false);
            }
            sqlx::raw_sql(script).execute(&mut *tx).await?;
            tx.commit().await?;
            true
        }))
    }
}

pub struct DemoZone {
    pub id: &'static str,
    pub name: &'static str,
    pub kind: &'static str,
    pub prefix: char,
    pub seats: u32,
}

pub const ZONES: [DemoZone; 3] = [
    DemoZone {
        id: "coworking",
        name: "Coworking Floor",
        kind: "coworking",
        prefix: 'A',
        seats: 20,
    },
    DemoZone {
        id: "cafe",
        name: "Café",
        kind: "cafe",
        prefix: 'C',
        seats: 12,
    },
    DemoZone {
        id: "quiet",
        name: "Quiet Room",
        kind: "quiet",
        prefix: 'Q',
        seats: 8,
    },
];

pub struct DemoBook {
    pub title: &'static str,
    pub author: &'static str,
    pub isbn: &'static str,
    pub condition: &'static str,
    pub copies: i32,
    pub price_cents: i32,
}

const fn book(
    title: &'static str,
    author: &'static str,
    isbn: &'static str,
    condition: &'static str,
    copies: i32,
    price_cents: i32,
) -> DemoBook {
    DemoBook {
        title,
        author,
        isbn,
        condition,
        copies,
        price_cents,
    }
}

pub const BOOKS: [DemoBook; 12] = [
    book(
        "Designing Data-Intensive Applications",
        "Martin Kleppmann",
        "9781449373320",
        "new",
        3,
        45_00,
    ),
    book(
        "The Pragmatic Programmer",
        "Andrew Hunt, David Thomas",
        "9780135957059",
        "new",
        2,
        40_00,
    ),
    book(
        "Clean Code",
        "Robert C. Martin",
        "9780132350884",
        "pre_loved",
        2,
        15_00,
    ),
    book(
        "The Rust Programming Language",
        "Steve Klabnik, Carol Nichols",
        "9781718503106",
        "new",
        4,
        39_00,
    ),
    book(
        "Sapiens: A Brief History of Humankind",
        "Yuval Noah Harari",
        "9780062316097",
        "pre_loved",
        3,
        9_00,
    ),
    book(
        "Thinking, Fast and Slow",
        "Daniel Kahneman",
        "9780374533557",
        "pre_loved",
        2,
        8_00,
    ),
    book(
        "Atomic Habits",
        "James Clear",
        "9780735211292",
        "new",
        5,
        22_00,
    ),
    book(
        "Laskar Pelangi",
        "Andrea Hirata",
        "9789793062792",
        "pre_loved",
        2,
        6_00,
    ),
    book(
        "This Earth of Mankind",
        "Pramoedya Ananta Toer",
        "9780140256352",
        "pre_loved",
        1,
        7_00,
    ),
    book(
        "The Design of Everyday Things",
        "Don Norman",
        "9780465050659",
        "new",
        2,
        25_00,
    ),
    book("Deep Work", "Cal Newport", "9781455586691", "new", 3, 20_00),
    book(
        "One Hundred Years of Solitude",
        "Gabriel García Márquez",
        "9780060883287",
        "pre_loved",
        1,
        8_00,
    ),
];

/// Seat numbers of a demo zone, in display order: `A1`..`A20`.
pub fn seat_numbers(zone: &DemoZone) -> impl Iterator<Item = (String, i32)> + '_ {
    (1..=zone.seats).map(move |n| (format!("{}{n}", zone.prefix), n as i32))
}

/// Quotes a text value for SQL. Only ever applied to the constants above.
fn text(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The demo space as one SQL script that both SQLite and PostgreSQL accept.
pub fn demo_sql() -> String {
    let mut zones = Vec::new();
    let mut seats = Vec::new();
    for (position, zone) in ZONES.iter().enumerate() {
        zones.push(format!(
            "({}, {}, {}, {position})",
            text(zone.id),
            text(zone.name),
            text(zone.kind)
        ));
        for (number, position) in seat_numbers(zone) {
            seats.push(format!(
                "({}, {}, {position})",
                text(&number),
                text(zone.id)
            ));
        }
    }
    let books: Vec<String> = BOOKS
        .iter()
        .map(|b| {
            format!(
                "({}, {}, {}, {}, {}, {})",
                text(b.title),
                text(b.author),
                text(b.isbn),
                text(b.condition),
                b.copies,
                b.price_cents
            )
        })
        .collect();
    format!(
        "INSERT INTO zones (id, name, kind, position) VALUES {};\n\
         INSERT INTO seats (number, zone_id, position) VALUES {};\n\
         INSERT INTO books (title, author, isbn, condition, total_copies, price_cents) VALUES {};\n",
        zones.join(", "),
        seats.join(", "),
        books.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_sql_has_every_seat_and_book_and_quotes_text() {
        let sql = demo_sql();
        for seat in ["'A1'", "'A20'", "'C12'", "'Q8'"] {
            assert!(sql.contains(seat), "{seat}");
        }
        assert!(!sql.contains("'A21'"));
        assert_eq!(sql.matches("978").count(), BOOKS.len());
        assert_eq!(text("O'Brien"), "'O''Brien'");
    }
}
