//! TF-IDF vectors and cosine similarity, computed the way scikit-learn's
//! `TfidfVectorizer` does with its defaults (which MediMatch uses):
//!
//! - text is lower-cased, tokens are runs of two or more word characters
//!   (`(?u)\b\w\w+\b`), so `Aspirin (100mg/5ml)` gives `aspirin`, `100mg`, `5ml`;
//! - term frequency is the raw count;
//! - `idf(t) = ln((1 + n) / (1 + df(t))) + 1` (smoothed);
//! - each document vector is L2-normalised, so cosine similarity is a dot product.
//!
//! Pure and allocation-light at query time: an inverted index turns one query into a
//! walk over the postings of the query's few terms.

use std::collections::HashMap;

/// The terms of `text`, lower-cased, in order (repeats kept).
pub fn tokenize(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    lower
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|t| t.chars().nth(1).is_some())
        .map(str::to_string)
        .collect()
}

/// A TF-IDF model of a fixed set of documents.
#[derive(Debug, Clone)]
pub struct TfIdf {
    /// Per document: `(term, weight)`, L2-normalised.
    docs: Vec<Vec<(usize, f64)>>,
    /// Per term: `(document, weight)`.
    postings: Vec<Vec<(usize, f64)>>,
}

impl TfIdf {
    /// Fits the model on `documents` (the document's index is its identity).
    pub fn fit<S: AsRef<str>>(documents: &[S]) -> Self {
        let mut vocabulary: HashMap<String, usize> = HashMap::new();
        let mut counts: Vec<Vec<(usize, f64)>> = Vec::with_capacity(documents.len());
        for doc in documents {
            let mut tf: HashMap<usize, f64> = HashMap::new();
            for token in tokenize(doc.as_ref()) {
                let next = vocabulary.len();
                let term = *vocabulary.entry(token).or_insert(next);
                *tf.entry(term).or_default() += 1.0;
            }
            let mut tf: Vec<(usize, f64)> = tf.into_iter().collect();
            tf.sort_unstable_by_key(|&(term, _)| term);
            counts.push(tf);
        }
        let n = documents.len() as f64;
        let mut df = vec![0usize; vocabulary.len()];
        for doc in &counts {
            for &(term, _) in doc {
                df[term] += 1;
            }
        }
        let idf: Vec<f64> = df
            .iter()
            .map(|&d| ((1.0 + n) / (1.0 + d as f64)).ln() + 1.0)
            .collect();
        let mut postings: Vec<Vec<(usize, f64)>> = vec![Vec::new(); vocabulary.len()];
        let docs: Vec<Vec<(usize, f64)>> = counts
            .into_iter()
            .enumerate()
            .map(|(d, tf)| {
                let mut weights: Vec<(usize, f64)> = tf
                    .into_iter()
                    .map(|(t, count)| (t, count * idf[t]))
                    .collect();
                let norm = weights.iter().map(|&(_, w)| w * w).sum::<f64>().sqrt();
                if norm > 0.0 {
                    for (_, w) in &mut weights {
                        *w /= norm;
                    }
                }
                for &(t, w) in &weights {
                    postings[t].push((d, w));
                }
                weights
            })
            .collect();
        Self { docs, postings }
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Cosine similarity of document `query` to every document (itself included).
    pub fn similarities(&self, query: usize) -> Vec<f64> {
        let mut scores = vec![0.0; self.docs.len()];
        for &(term, wq) in &self.docs[query] {
            for &(doc, wd) in &self.postings[term] {
                scores[doc] += wq * wd;
            }
        }
        scores
    }

    /// The `top_n` documents most similar to document `query`, best first, leaving the
    /// query document out, as well as documents sharing no term with it. Equal scores
    /// keep document order.
    pub fn most_similar(&self, query: usize, top_n: usize) -> Vec<(usize, f64)> {
        let mut ranked: Vec<(usize, f64)> = self
            .similarities(query)
            .into_iter()
            .enumerate()
            .filter(|&(doc, score)| doc != query && score > 0.0)
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(top_n);
        ranked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn tokens_are_lowercased_runs_of_two_or_more_word_characters() {
        assert_eq!(
            tokenize("Aspirin (100mg/5ml) + Vitamin B 2% X_y"),
            ["aspirin", "100mg", "5ml", "vitamin", "x_y"]
        );
        assert!(tokenize("a + b (1%)").is_empty());
        assert_eq!(tokenize("Ácido ÉTER"), ["ácido", "éter"]);
    }

    #[test]
    fn weights_follow_the_smoothed_idf_formula() {
        // n = 3; "a1" is in every document, "b2" in one, "c3" in two.
        let model = TfIdf::fit(&["a1 b2", "a1 c3", "a1 c3 c3"]);
        let idf = |df: f64| ((1.0 + 3.0) / (1.0 + df)).ln() + 1.0;
        let (a, b, c) = (idf(3.0), idf(1.0), idf(2.0));
        // Document 0 against 1: only "a1" is shared.
        let expected01 = (a * a) / ((a * a + b * b).sqrt() * (a * a + c * c).sqrt());
        // Document 1 against 2: tf of "c3" is 2 in document 2.
        let expected12 =
            (a * a + c * 2.0 * c) / ((a * a + c * c).sqrt() * (a * a + 4.0 * c * c).sqrt());
        let s0 = model.similarities(0);
        let s1 = model.similarities(1);
        assert!(close(s0[0], 1.0), "{s0:?}");
        assert!(close(s0[1], expected01), "{s0:?}");
        assert!(close(s1[2], expected12), "{s1:?}");
        assert!(close(s1[0], s0[1]), "symmetric");
    }

    #[test]
    fn most_similar_ranks_excludes_the_query_and_respects_top_n() {
        let model = TfIdf::fit(&[
            "aspirin 100mg", // 0: the query
            "ibuprofen 200mg",
            "aspirin 300mg",     // 2: shares the rare "aspirin"
            "paracetamol 100mg", // 3: shares the common "100mg"
            "aspirin 100mg",     // 4: identical to the query
            "zinc 100mg",        // 5: shares "100mg", like 3
        ]);
        let ranked = model.most_similar(0, 10);
        let order: Vec<usize> = ranked.iter().map(|&(d, _)| d).collect();
        // Identical first, then the same ingredient, then the shared strength (ties in
        // document order); ibuprofen shares nothing and is left out.
        assert_eq!(order, [4, 2, 3, 5]);
        assert!(close(ranked[0].1, 1.0));
        assert_eq!(ranked[2].1, ranked[3].1);
        assert_eq!(
            model
                .most_similar(0, 2)
                .iter()
                .map(|&(d, _)| d)
                .collect::<Vec<_>>(),
            [4, 2]
        );
        assert!(model.most_similar(0, 0).is_empty());
    }

    #[test]
    fn a_document_without_terms_is_similar_to_nothing() {
        let model = TfIdf::fit(&["+ (1)", "aspirin"]);
        assert!(model.most_similar(0, 5).is_empty());
        assert!(model.most_similar(1, 5).is_empty());
    }
}
