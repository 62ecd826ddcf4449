//! Drug recommendations (MediMatch or the built-in recommender) and name
//! autocomplete over the shipped catalog.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tracing::{info, instrument};

use crate::app::AppState;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{Json, Query};
use crate::medimatch::{Drug, DrugQuery, MedimatchError, Recommendations};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/secure/recommend-drugs", post(recommend))
        .route("/api/public/drugs", get(search))
}

/// `top_n` when the request leaves it out.
const DEFAULT_TOP_N: i64 = 5;

#[derive(Deserialize)]
struct RecommendRequest {
    drug_name: String,
    top_n: Option<i64>,
}

#[derive(Serialize)]
struct RecommendResponse {
    success: bool,
    data: Recommendations,
}

/// The drug name is health information about the caller: it is not logged. Every
/// error after authentication is in MediMatch's shape (`"success": false`).
#[instrument(skip_all, fields(user_id = user.id))]
async fn recommend(
    State(state): State<AppState>,
    user: AuthUser,
    request: Result<Json<RecommendRequest>, ApiError>,
) -> Result<Json<RecommendResponse>, ApiError> {
    let Json(request) =
        request.map_err(|err| MedimatchError::Invalid(err.status(), err.to_string()))?;
    let query = DrugQuery::new(&request.drug_name, request.top_n.unwrap_or(DEFAULT_TOP_N))?;
    let recommender = &state.medimatch.recommender;
    let data = recommender.recommend(&query).await?;
    info!(
        source = recommender.source(),
        results = data.name.0.len(),
        "recommended drugs"
    );
    Ok(Json(RecommendResponse {
        success: true,
        data,
    }))
}

const DEFAULT_PAGE: usize = 10;
const MAX_PAGE: usize = 50;

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct DrugView<'a> {
    id: &'a str,
    name: &'a str,
    form: &'a str,
    strength: &'a str,
    combined_composition: String,
    category: &'a str,
}

impl<'a> DrugView<'a> {
    fn new(drug: &'a Drug) -> Self {
        Self {
            id: &drug.id,
            name: &drug.name,
            form: &drug.form,
            strength: &drug.strength,
            combined_composition: drug.combined_composition(),
            category: &drug.category,
        }
    }
}

#[derive(Serialize)]
struct Page<'a> {
    items: Vec<DrugView<'a>>,
    next_cursor: Option<String>,
}

/// Products whose name contains `q`, best autocomplete matches first. The cursor is
/// the position in that (fixed) order, so pages never overlap or skip.
#[instrument(skip_all)]
async fn search(
    State(state): State<AppState>,
    Query(query): Query<SearchQuery>,
) -> Result<axum::response::Response, ApiError> {
    let q = query.q.unwrap_or_default();
    if q.chars().count() > DrugQuery::MAX_NAME_CHARS {
        return Err(ApiError::Unprocessable(format!(
            "q must be at most {} characters",
            DrugQuery::MAX_NAME_CHARS
        )));
    }
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::Unprocessable(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let hits = state.medimatch.catalog.catalog().search(&q);
    let start = match query.cursor.as_deref() {
        None => 0,
        Some(c) => c
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0 && n <= hits.len())
            .ok_or_else(|| ApiError::Unprocessable("cursor is not valid".into()))?,
    };
    let end = (start + limit).min(hits.len());
    let page = Page {
        items: hits[start..end].iter().map(|d| DrugView::new(d)).collect(),
        next_cursor: (end < hits.len()).then(|| end.to_string()),
    };
    Ok(axum::response::IntoResponse::into_response(Json(page)))
}
