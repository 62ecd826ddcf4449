//! The drug catalog shipped with Pica (`data/drugs.csv`, embedded in the binary) and
//! name search over it.

use std::collections::HashSet;

use anyhow::{Context, bail, ensure};

/// The shipped catalog: 800 products derived from the WHO Model List of Essential
/// Medicines by `scripts/derive_drug_catalog.py`.
pub const SHIPPED_CSV: &str = include_str!("../../data/drugs.csv");

const HEADER: [&str; 7] = [
    "id",
    "name",
    "form",
    "strength",
    "short_composition1",
    "short_composition2",
    "category",
];

/// One product of the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drug {
    pub id: String,
    pub name: String,
    pub form: String,
    pub strength: String,
    pub short_composition1: String,
    pub short_composition2: String,
    pub category: String,
}

impl Drug {
    /// The active ingredients as one text: `short_composition1 + short_composition2`.
    pub fn combined_composition(&self) -> String {
        match (
            self.short_composition1.trim(),
            self.short_composition2.trim(),
        ) {
            (a, "") => a.to_string(),
            ("", b) => b.to_string(),
            (a, b) => format!("{a} + {b}"),
        }
    }
}

/// The products, in file order, with their lower-cased names for searching.
#[derive(Debug, Clone)]
pub struct Catalog {
    drugs: Vec<Drug>,
    lower_names: Vec<String>,
}

impl Catalog {
    /// Parses a catalog in the `data/drugs.csv` format (header line required; ids must
    /// be unique and non-empty).
    pub fn from_csv(text: &str) -> anyhow::Result<Self> {
        let mut rows = parse_csv(text)?.into_iter();
        let header = rows.next().context("the catalog is empty")?;
        ensure!(
            header.iter().map(String::as_str).eq(HEADER),
            "the catalog header must be {}",
            HEADER.join(",")
        );
        let mut seen = HashSet::new();
        let mut drugs = Vec::new();
        for (i, row) in rows.enumerate() {
            let line = i + 2;
            let Ok::<[String; 7], _>([id, name, form, strength, c1, c2, category]) = row.try_into()
            else {
                bail!("catalog line {line}: expected {} fields", HEADER.len());
            };
            ensure!(
                !id.trim().is_empty() && !name.trim().is_empty(),
                "catalog line {line}: id and name are required"
            );
            ensure!(
                seen.insert(id.clone()),
                "catalog line {line}: duplicate id {id}"
            );
            drugs.push(Drug {
                id,
                name,
                form,
                strength,
                short_composition1: c1,
                short_composition2: c2,
                category,
            });
        }
        let lower_names = drugs.iter().map(|d| d.name.to_lowercase()).collect();
        Ok(Self { drugs, lower_names })
    }

    pub fn drugs(&self) -> &[Drug] {
        &self.drugs
    }

    pub fn len(&self) -> usize {
        self.drugs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.drugs.is_empty()
    }

    /// The first product (in catalog order) whose name contains `needle`, ignoring case.
    /// The needle is plain text, not a pattern.
    pub fn first_name_match(&self, needle: &str) -> Option<usize> {
        let needle = needle.to_lowercase();
        self.lower_names.iter().position(|n| n.contains(&needle))
    }

    /// Products whose name contains `q` (ignoring case), for autocomplete: names that
    /// start with `q` first, then names with a word starting with `q`, then the rest;
    /// catalog order within each group. An empty `q` lists the whole catalog.
    pub fn search(&self, q: &str) -> Vec<&Drug> {
        let q = q.trim().to_lowercase();
        let mut hits: Vec<(u8, usize)> = self
            .lower_names
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let at = name.find(&q)?;
                let rank = if at == 0 {
                    0
                } else if !name[..at].ends_with(char::is_alphanumeric) {
                    1
                } else {
                    2
                };
                Some((rank, i))
            })
            .collect();
        hits.sort_unstable();
        hits.into_iter().map(|(_, i)| &self.drugs[i]).collect()
    }
}

/// Parses RFC 4180 CSV: fields separated by commas, optionally quoted with `"` (a
/// doubled `""` inside quotes is a quote), records ending in LF or CRLF. Blank lines are
/// skipped.
pub fn parse_csv(text: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let mut rows = Vec::new();
    let mut row: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut in_quotes = false;
    let mut quoted_field = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push(c);
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !quoted_field => {
                in_quotes = true;
                quoted_field = true;
            }
            '"' => bail!("CSV line {line}: stray quote"),
            ',' => {
                row.push(std::mem::take(&mut field));
                quoted_field = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                line += 1;
                if !row.is_empty() || !field.is_empty() || quoted_field {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                quoted_field = false;
            }
            _ if quoted_field => bail!("CSV line {line}: text after a closing quote"),
            _ => field.push(c),
        }
    }
    ensure!(!in_quotes, "CSV line {line}: unterminated quoted field");
    if !row.is_empty() || !field.is_empty() || quoted_field {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_handles_quotes_commas_and_line_endings() {
        let rows = parse_csv("a,b,c\r\n1,\"x, \"\"y\"\"\",\n\n2,\"multi\nline\",z").unwrap();
        assert_eq!(
            rows,
            vec![
                vec!["a", "b", "c"],
                vec!["1", "x, \"y\"", ""],
                vec!["2", "multi\nline", "z"],
            ]
        );
        assert!(parse_csv("a,\"open").is_err());
        assert!(parse_csv("a,b\"c").is_err());
        assert!(parse_csv("\"a\"b").is_err());
    }

    #[test]
    fn the_shipped_catalog_loads() {
        let catalog = Catalog::from_csv(SHIPPED_CSV).unwrap();
        assert_eq!(catalog.len(), 800);
        let aspirin = &catalog.drugs()[catalog.first_name_match("ASPIRIN").unwrap()];
        assert_eq!(aspirin.id, "57");
        assert_eq!(aspirin.combined_composition(), "Aspirin (100mg)");
        let combo = catalog
            .drugs()
            .iter()
            .find(|d| d.id == "35")
            .expect("product 35");
        assert_eq!(
            combo.combined_composition(),
            "Amoxicillin (500mg) + Clavulanic Acid (125mg)"
        );
    }

    #[test]
    fn malformed_catalogs_are_refused() {
        let header = HEADER.join(",");
        assert!(Catalog::from_csv("").is_err());
        assert!(Catalog::from_csv("id,name\n1,x").is_err());
        assert!(Catalog::from_csv(&format!("{header}\n1,x,,,,")).is_err());
        assert!(Catalog::from_csv(&format!("{header}\n1,x,,,a,,\n1,y,,,b,,")).is_err());
        assert!(Catalog::from_csv(&format!("{header}\n,x,,,a,,")).is_err());
        assert_eq!(
            Catalog::from_csv(&format!("{header}\n1,x,,,a,,\n2,y,,,b,,"))
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn search_puts_prefix_then_word_then_inner_matches_first() {
        let header = HEADER.join(",");
        let catalog = Catalog::from_csv(&format!(
            "{header}\n1,Co-Paracetamol,,,a,,\n2,Bayer Aspirin,,,a,,\n3,Paracetamol,,,a,,\n4,Aspirin,,,a,,\n5,Zinc,,,a,,"
        ))
        .unwrap();
        let ids = |q: &str| {
            catalog
                .search(q)
                .iter()
                .map(|d| d.id.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids("aspirin"), ["4", "2"]);
        assert_eq!(ids("PARA"), ["3", "1"]);
        assert_eq!(ids("piri"), ["2", "4"]);
        assert_eq!(ids(""), ["1", "2", "3", "4", "5"]);
        assert!(ids("nothing").is_empty());
        assert_eq!(catalog.first_name_match("aspirin"), Some(1));
        assert_eq!(catalog.first_name_match("(."), None);
    }
}
