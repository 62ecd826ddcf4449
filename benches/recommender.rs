//! The built-in recommender must answer a query well under a millisecond.
//!
//! `cargo bench --bench recommender`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pica::medimatch::{BuiltIn, DrugQuery};

fn recommender(c: &mut Criterion) {
    let builtin = BuiltIn::shipped();
    let mut group = c.benchmark_group("builtin_recommender");
    for (label, name, top_n) in [
        // The seed's example: the first match is early in the catalog.
        ("aspirin_top5", "aspirin", 5),
        ("aspirin_top50", "aspirin", 50),
        // The last product of the catalog: the longest name scan that finds one.
        ("zyrtec_top10", "zyrtec", 10),
        // A three-ingredient combination.
        ("lamivudine_nevirapine_top10", "nevirapine + zidovudine", 10),
        // No product matches: the whole catalog is scanned.
        ("unknown", "unobtainium", 10),
    ] {
        let query = DrugQuery::new(name, top_n).expect("valid query");
        group.bench_function(label, |b| {
            b.iter(|| {
                let _ = black_box(builtin.recommend(black_box(&query)));
            })
        });
    }
    group.finish();

    let catalog = builtin.catalog();
    c.bench_function("drug_autocomplete_para", |b| {
        b.iter(|| black_box(catalog.search(black_box("para"))).len())
    });
}

criterion_group!(benches, recommender);
criterion_main!(benches);
