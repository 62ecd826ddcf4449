//! Drug recommendations (MediMatch or the built-in recommender) and name
//! autocomplete over the shipped catalog.

use super::doc::r;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tracing::{info, instrument};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::http::AppState;
use crate::http::error::{ApiError, MedimatchBody};
use crate::http::extract::de;
use crate::http::extract::{Json, Query};
use crate::medimatch::{Drug, DrugQuery, MedimatchError, Recommendations};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(recommend))
        .routes(routes!(search))
}

/// `top_n` when the request leaves it out.
const DEFAULT_TOP_N: i64 = 5;

#[derive(Deserialize, ToSchema)]
struct RecommendRequest {
    #[schema(min_length = 1, max_length = 100)]
    drug_name: String,
    #[serde(default, deserialize_with = "de::opt_int")]
    #[schema(nullable = false, minimum = 1, maximum = 50, default = 5)]
    top_n: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct RecommendResponse {
    /// Always `true` here; errors carry `false`
    success: bool,
    #[schema(inline)]
    data: Recommendations,
}

/// The drug name is health information about the caller: it is not logged. Every
/// error after authentication is in MediMatch's shape (`"success": false`).
#[utoipa::path(
    post, path = "/api/secure/recommend-drugs",
    tag = "Drugs", operation_id = "recommendDrugs",
    summary = "Drugs with a similar composition",
    description = "Ranked by TF-IDF cosine similarity of active-ingredient composition (MediMatch, or the built-in recommender when `MEDIMATCH_URL` is unset). Errors carry `success: false`.",
    request_body(content = RecommendRequest, example = json!({"drug_name": "aspirin", "top_n": 3})),
    responses(
        (status = 200, description = "Recommendations, best first", body = RecommendResponse, example = json!({"success": true, "data": {"name": {"240": "Disprin 300 mg Dispersible Tablet"}, "combined_composition": {"240": "Aspirin (300mg)"}}})),
        (status = 400, description = "Malformed JSON", body = MedimatchBody, example = json!({"success": false, "detail": "Malformed JSON: expected value at line 1 column 1"})),
        (status = 401, response = r::Unauthorized),
        (status = 403, response = r::NotAuthenticated),
        (status = 404, description = "Unknown drug", body = MedimatchBody, example = json!({"success": false, "detail": "Drug with name containing 'xyz' not found in the dataset."})),
        (status = 413, description = "Body too large", body = MedimatchBody, example = json!({"success": false, "detail": "Request body is too large"})),
        (status = 415, description = "Body is not `application/json`", body = MedimatchBody, example = json!({"success": false, "detail": "Expected a request with `Content-Type: application/json`"})),
        (status = 422, description = "Invalid input", body = MedimatchBody, example = json!({"success": false, "detail": "top_n must be between 1 and 50"})),
        (status = 502, description = "MediMatch gave an unusable answer", body = MedimatchBody, example = json!({"success": false, "detail": "The drug recommendation service failed"})),
        (status = 503, description = "MediMatch unreachable or circuit open", body = MedimatchBody, example = json!({"success": false, "detail": "The drug recommendation service is unavailable"})),
        (status = 504, description = "MediMatch too slow", body = MedimatchBody, example = json!({"success": false, "detail": "The drug recommendation service timed out"})),
    ),
    security(("bearerAuth" = []), ("apiKeyHeader" = []), ("xApiKeyHeader" = [])),
)]
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    /// Part of a product name (at most 100 characters)
    #[param(example = "aspirin")]
    q: Option<String>,
    /// Page size, 1-50 (default 10)
    #[serde(default, deserialize_with = "de::query_int")]
    #[param(minimum = 1, maximum = 50, default = 10)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page
    #[serde(default, deserialize_with = "de::non_empty")]
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Drug)]
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

#[derive(Serialize, ToSchema)]
#[schema(as = DrugPage)]
struct Page<'a> {
    items: Vec<DrugView<'a>>,
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// Products whose name contains `q`, best autocomplete matches first. The cursor is
/// the position in that (fixed) order, so pages never overlap or skip.
#[utoipa::path(
    get, path = "/api/public/drugs",
    tag = "Drugs", operation_id = "searchDrugs",
    summary = "Autocomplete drug names over the shipped catalog",
    description = "Names starting with `q` first, then names with a word starting with `q`, then the rest.",
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of products", body = Page),
        (status = 400, response = r::BadRequest),
        (status = 422, response = r::Unprocessable),
        (status = 503, response = r::Unavailable),
    ),
)]
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
