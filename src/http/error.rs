//! The one error type of the HTTP edge. Every error becomes `{"detail": "..."}` with the
//! right status; internal errors are logged and never leaked.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pica_actors::{EngineError, Interval, OccurrenceConflict};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::local;
use crate::storage::DbError;

/// What every error answer carries (schema `Error`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong, for humans
    pub detail: String,
}

/// A conflict's answer: the `Error` body, plus the interval in the way when there is
/// one.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ConflictError)]
pub struct ConflictBody {
    pub detail: String,
    /// The interval in the way, when there is one
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub conflict: Option<crate::http::IntervalView>,
}

/// A refused series' answer: the `Error` body, plus every date that could not be
/// booked and why.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SeriesConflictError)]
pub struct SeriesConflictBody {
    pub detail: String,
    /// Every date that could not be booked and why; absent when the refusal is not
    /// about dates (the seat is out of service, the series limit would be passed)
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub conflicts: Option<Vec<DateConflict>>,
}

/// One date of a refused series.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DateConflict {
    /// The occurrence's local date
    #[schema(format = Date, example = "2026-12-09")]
    pub date: String,
    /// The occurrence that could not be booked
    pub occurrence: crate::http::IntervalView,
    /// Why, for humans
    pub detail: String,
    /// The interval in the way
    pub conflict: crate::http::IntervalView,
}

/// The errors of drug recommendations, in MediMatch's shape.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MedimatchError)]
pub struct MedimatchBody {
    /// Always `false`
    pub success: bool,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Well-formed but semantically invalid input.
    #[error("{0}")]
    Unprocessable(String),
    /// Malformed input, with the status the framework chose (400, 413, 415, ...).
    #[error("{1}")]
    Rejected(StatusCode, String),
    #[error("Not authenticated")]
    NotAuthenticated,
    #[error("Invalid or expired token")]
    InvalidToken,
    #[error("Missing or invalid API key")]
    InvalidApiKey,
    #[error("Invalid username or password")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("Too many attempts; retry in {retry_after} seconds")]
    TooManyRequests { retry_after: u64 },
    #[error("{0}")]
    NotFound(String),
    /// `conflict` is the interval that is in the way, already rendered.
    #[error("{detail}")]
    Conflict {
        detail: String,
        conflict: Option<(String, String)>,
    },
    /// Some dates of a series cannot be booked (so none was).
    #[error("{detail}")]
    SeriesConflict {
        detail: String,
        conflicts: Vec<DateConflict>,
    },
    #[error("{0}")]
    Unavailable(String),
    /// Drug recommendations failed; answered in MediMatch's shape
    /// `{"success": false, "detail": ...}` with the status the failure maps to.
    #[error("{0}")]
    Medimatch(#[from] crate::medimatch::MedimatchError),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        if self.is_database_busy() {
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        match self {
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Rejected(status, _) => *status,
            ApiError::NotAuthenticated => StatusCode::FORBIDDEN,
            ApiError::InvalidToken | ApiError::InvalidApiKey | ApiError::InvalidCredentials => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } | ApiError::SeriesConflict { .. } => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Medimatch(err) => err.status(),
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl ApiError {
    /// The database could not give a connection in time (or SQLite stayed locked): the
    /// server is busy, not broken, so the client hears 503 and may retry.
    fn is_database_busy(&self) -> bool {
        let ApiError::Internal(err) = self else {
            return false;
        };
        err.chain().any(|cause| {
            let sqlx = cause.downcast_ref::<sqlx::Error>().or_else(|| {
                match cause.downcast_ref::<DbError>() {
                    Some(DbError::Sqlx(inner)) => Some(inner),
                    _ => None,
                }
            });
            match sqlx {
                Some(sqlx::Error::PoolTimedOut) => true,
                // SQLITE_BUSY (5) and its extended codes: another writer held the lock
                // past the busy timeout.
                Some(sqlx::Error::Database(db)) => db
                    .code()
                    .is_some_and(|code| code == "5" || code == "517" || code == "261"),
                _ => false,
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.is_database_busy() {
            if let ApiError::Internal(err) = &self {
                tracing::warn!(error = %err, "database busy; answering 503");
            }
            return ApiError::Unavailable("The database is busy; retry shortly".into())
                .into_response();
        }
        let status = self.status();
        let detail = self.to_string();
        let mut response = match &self {
            ApiError::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                Json(ErrorBody {
                    detail: "Internal server error".into(),
                })
                .into_response()
            }
            ApiError::Conflict { conflict, .. } => Json(ConflictBody {
                detail,
                conflict: conflict
                    .as_ref()
                    .map(|(start, end)| crate::http::IntervalView {
                        start: start.clone(),
                        end: end.clone(),
                    }),
            })
            .into_response(),
            ApiError::SeriesConflict { conflicts, .. } => Json(SeriesConflictBody {
                detail,
                conflicts: Some(conflicts.clone()),
            })
            .into_response(),
            ApiError::Medimatch(_) => Json(MedimatchBody {
                success: false,
                detail,
            })
            .into_response(),
            _ => Json(ErrorBody { detail }).into_response(),
        };
        *response.status_mut() = status;
        let headers = response.headers_mut();
        match self {
            ApiError::InvalidToken | ApiError::InvalidCredentials => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::InvalidApiKey => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("ApiKey"));
            }
            ApiError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::TooManyRequests { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            ApiError::Medimatch(err) => {
                if let Some(secs) = err.retry_after_secs() {
                    headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
            }
            _ => {}
        }
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> Self {
        ApiError::engine(err, chrono_tz::UTC)
    }
}

impl ApiError {
    /// Maps an engine refusal, rendering a conflicting interval in `tz`.
    pub fn engine(err: EngineError, tz: chrono_tz::Tz) -> Self {
        let render = |i: Interval| Some((local(i.start, tz), local(i.end, tz)));
        let detail = err.to_string();
        match err {
            EngineError::UnknownSeat(_) | EngineError::ReservationNotFound => {
                ApiError::NotFound(detail)
            }
            EngineError::SeatExists(_) => ApiError::Conflict {
                detail,
                conflict: None,
            },
            EngineError::SeriesConflict { conflicts } => ApiError::SeriesConflict {
                detail,
                conflicts: conflicts
                    .into_iter()
                    .map(|c| date_conflict(c, tz))
                    .collect(),
            },
            EngineError::SeatOutOfService(_)
            | EngineError::UserLimit { .. }
            | EngineError::SeriesLimit { .. } => ApiError::Conflict {
                detail,
                conflict: None,
            },
            EngineError::SeatTaken { conflict } | EngineError::UserOverlap { conflict } => {
                ApiError::Conflict {
                    detail,
                    conflict: render(conflict),
                }
            }
            EngineError::NotChangeable { .. }
            | EngineError::AlreadyEnded
            | EngineError::ChangeInProgress => ApiError::Conflict {
                detail,
                conflict: None,
            },
            EngineError::CommitFailed
            | EngineError::Overloaded
            | EngineError::Unavailable
            | EngineError::Starting => ApiError::Unavailable(detail),
            EngineError::BookNotFound | EngineError::BookReservationNotFound => {
                ApiError::NotFound(detail)
            }
            EngineError::OutOfStock { .. }
            | EngineError::BookReservationNotChangeable { .. }
            | EngineError::StockBelowReserved { .. } => ApiError::Conflict {
                detail,
                conflict: None,
            },
            EngineError::PrepareExpired => ApiError::Unavailable(detail),
            EngineError::WaitlistEntryNotFound => ApiError::NotFound(detail),
            EngineError::Refused(_) => ApiError::Conflict {
                detail,
                conflict: None,
            },
        }
    }
}

/// One refused occurrence, in the space's time zone.
fn date_conflict(c: OccurrenceConflict, tz: chrono_tz::Tz) -> DateConflict {
    let view = |i: Interval| crate::http::IntervalView {
        start: local(i.start, tz),
        end: local(i.end, tz),
    };
    let in_the_way = match *c.reason {
        EngineError::SeatTaken { conflict } | EngineError::UserOverlap { conflict } => conflict,
        _ => c.interval,
    };
    DateConflict {
        date: c.interval.start.with_timezone(&tz).date_naive().to_string(),
        occurrence: view(c.interval),
        detail: c.reason.to_string(),
        conflict: view(in_the_way),
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        ApiError::Internal(err.into())
    }
}

/// A handler panicked: log it, answer a plain 500 JSON body.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a client hears while the engine is still loading its zones after a start
    /// (the engine's test in `actors/src/supervisor/tests.rs` shows when it is refused).
    #[tokio::test]
    async fn a_booking_while_loading_is_a_503_to_retry() {
        let response = ApiError::from(EngineError::Starting).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body["detail"],
            "The server is still loading reservations; retry shortly"
        );
    }
}
