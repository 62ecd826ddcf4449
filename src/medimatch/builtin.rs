//! The built-in recommender: MediMatch's algorithm over the catalog shipped with Pica,
//! so recommendations work with no network.

use std::sync::{Arc, LazyLock};

use serde_json::Value;

use super::catalog::{Catalog, SHIPPED_CSV};
use super::tfidf::TfIdf;
use super::{DrugQuery, MedimatchError, Ranked, Recommendations};

/// A catalog with its TF-IDF model over the combined compositions.
#[derive(Debug)]
pub struct BuiltIn {
    catalog: Catalog,
    model: TfIdf,
}

static SHIPPED: LazyLock<Arc<BuiltIn>> = LazyLock::new(|| {
    let catalog = Catalog::from_csv(SHIPPED_CSV).expect("the shipped data/drugs.csv is valid");
    Arc::new(BuiltIn::new(catalog))
});

impl BuiltIn {
    pub fn new(catalog: Catalog) -> Self {
        let compositions: Vec<String> = catalog
            .drugs()
            .iter()
            .map(|d| d.combined_composition())
            .collect();
        let model = TfIdf::fit(&compositions);
        Self { catalog, model }
    }

    /// The recommender over the shipped catalog, parsed and fitted once per process.
    pub fn shipped() -> Arc<BuiltIn> {
        SHIPPED.clone()
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Ranks the products by the cosine similarity of their composition to that of the
    /// first product whose name contains `drug_name` (ignoring case), best first,
    /// leaving that product out (and products sharing no ingredient term with it).
    pub fn recommend(&self, query: &DrugQuery) -> Result<Recommendations, MedimatchError> {
        let Some(target) = self.catalog.first_name_match(query.drug_name()) else {
            return Err(MedimatchError::not_found(query.drug_name()));
        };
        let drugs = self.catalog.drugs();
        let ranked = self.model.most_similar(target, query.top_n() as usize);
        let mut name = Vec::with_capacity(ranked.len());
        let mut combined_composition = Vec::with_capacity(ranked.len());
        for (doc, _score) in ranked {
            let drug = &drugs[doc];
            name.push((drug.id.clone(), Value::String(drug.name.clone())));
            combined_composition
                .push((drug.id.clone(), Value::String(drug.combined_composition())));
        }
        Ok(Recommendations {
            name: Ranked(name),
            combined_composition: Ranked(combined_composition),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = "\
id,name,form,strength,short_composition1,short_composition2,category
10,Aspirin 100 mg Tablet,Tablet,100 mg,Aspirin (100mg),,Analgesics
11,Ibuprofen 200 mg Tablet,Tablet,200 mg,Ibuprofen (200mg),,Analgesics
12,Aspirin 300 mg Tablet,Tablet,300 mg,Aspirin (300mg),,Analgesics
13,Paracetamol 100 mg Syrup,Syrup,100 mg,Paracetamol (100mg),,Analgesics
14,Disprin 100 mg Tablet,Tablet,100 mg,Aspirin (100mg),,Analgesics
15,Aspirin + Clopidogrel 75 mg + 75 mg Tablet,Tablet,75 mg + 75 mg,Aspirin (75mg),Clopidogrel (75mg),Cardiovascular
16,Zinc Sulfate 100 mg Tablet,Tablet,100 mg,Zinc Sulfate (100mg),,Minerals
17,Calcium + Vitamin 100 mg + 100 mg Tablet,Tablet,100 mg + 100 mg,Calcium (100mg),Vitamin (100mg),Minerals
";

    fn small() -> BuiltIn {
        BuiltIn::new(Catalog::from_csv(SMALL).unwrap())
    }

    fn ids(r: &Ranked) -> Vec<&str> {
        r.0.iter().map(|(id, _)| id.as_str()).collect()
    }

    #[test]
    fn exact_ranking_on_a_small_catalog() {
        let recs = small()
            .recommend(&DrugQuery::new("aspirin", 10).unwrap())
            .unwrap();
        // Query: product 10 "Aspirin (100mg)" (the first name match). n = 8; df:
        // aspirin 4, 100mg 5, every other term 1. Cosine similarities, worked out
        // independently from idf = ln(9 / (1 + df)) + 1: 14 is identical (1.0); 17 has
        // "100mg" twice (0.412); 12 shares the ingredient (0.401); 13 shares only the
        // strength (0.324); 16 too, with one more term (0.244); 15 shares the
        // ingredient among heavier terms (0.204); 11 shares nothing and is left out.
        assert_eq!(ids(&recs.name), ["14", "17", "12", "13", "16", "15"]);
        assert_eq!(ids(&recs.name), ids(&recs.combined_composition));
        assert_eq!(recs.name.0[0].1, "Disprin 100 mg Tablet");
        assert_eq!(
            recs.combined_composition.0[5].1,
            "Aspirin (75mg) + Clopidogrel (75mg)"
        );
    }

    #[test]
    fn query_drug_is_left_out_and_top_n_respected() {
        let model = small();
        let recs = model
            .recommend(&DrugQuery::new("DISPRIN", 2).unwrap())
            .unwrap();
        // The query is 14 now; 10 has the same composition and comes first.
        assert_eq!(ids(&recs.name), ["10", "17"]);
        let recs = model
            .recommend(&DrugQuery::new("ibuprofen", 5).unwrap())
            .unwrap();
        assert!(
            recs.name.0.is_empty(),
            "nothing shares a term with ibuprofen"
        );
    }

    #[test]
    fn unknown_drug_is_not_found_in_medimatch_words() {
        let err = small()
            .recommend(&DrugQuery::new("unobtainium", 3).unwrap())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Drug with name containing 'unobtainium' not found in the dataset."
        );
        assert_eq!(err.status(), axum::http::StatusCode::NOT_FOUND);
    }

    #[test]
    fn shipped_catalog_recommends_aspirin_for_aspirin() {
        let recs = BuiltIn::shipped()
            .recommend(&DrugQuery::new("aspirin", 7).unwrap())
            .unwrap();
        assert!(
            !recs.name.0.iter().any(|(id, _)| id == "57"),
            "query left out"
        );
        assert_eq!(recs.name.0.len(), 7);
        for (_, composition) in &recs.combined_composition.0 {
            assert!(
                composition.as_str().unwrap().contains("Aspirin"),
                "{recs:?}"
            );
        }
    }
}
