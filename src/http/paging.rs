//! Cursor pagination shared by every listing: `limit` 1-100 (default 50), `cursor` =
//! the previous page's `next_cursor`.

use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::http::extract::de;

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 100;

pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::Unprocessable(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )))
    }
}

/// A cursor that is a UUIDv7 id (listings newest first, by id).
pub fn uuid_cursor(cursor: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    cursor
        .map(|c| {
            Uuid::parse_str(c).map_err(|_| ApiError::Unprocessable("cursor is not valid".into()))
        })
        .transpose()
}

/// The query string of a listing of the caller's records: `?status=&limit=&cursor=`.
/// `status` is described by each listing, whose statuses differ.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(ignore)]
    pub status: Option<String>,
    /// Page size, 1-100 (default 50)
    #[serde(default, deserialize_with = "de::query_int")]
    #[param(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page
    #[serde(default, deserialize_with = "de::non_empty")]
    pub cursor: Option<String>,
}

/// Parses an optional `status` filter; `allowed` names the valid values for the error.
pub fn status_filter<S>(
    raw: Option<&str>,
    parse: impl Fn(&str) -> Option<S>,
    allowed: &str,
) -> Result<Option<S>, ApiError> {
    raw.map(|s| {
        parse(s).ok_or_else(|| ApiError::Unprocessable(format!("status must be one of {allowed}")))
    })
    .transpose()
}

/// A listing of the caller's own records ("my reservations", "my book reservations",
/// "my waitlist"): the same query string, status filter, cursor and page, whatever the
/// records are. The handler fetches `fetch_limit()` rows at or before `before` with
/// `status`, newest first, and turns them into a [`Page`] with [`page`](Self::page).
pub struct OwnListing<S> {
    pub status: Option<S>,
    pub before: Option<Uuid>,
    limit: u32,
}

impl<S: Copy> OwnListing<S> {
    /// Parses `?status=&limit=&cursor=`; `statuses` names the valid statuses for the
    /// error.
    pub fn parse(
        query: &ListQuery,
        parse_status: impl Fn(&str) -> Option<S>,
        statuses: &str,
    ) -> Result<Self, ApiError> {
        Ok(Self {
            status: status_filter(query.status.as_deref(), parse_status, statuses)?,
            before: uuid_cursor(query.cursor.as_deref())?,
            limit: page_limit(query.limit)?,
        })
    }

    /// Rows to fetch: one more than the page, to tell whether another page follows.
    pub fn fetch_limit(&self) -> u32 {
        self.limit + 1
    }

    /// The page of `rows` (fetched with [`fetch_limit`](Self::fetch_limit)), each
    /// shown by `view`; the cursor is a row's id.
    pub fn page<R, T>(
        &self,
        rows: Vec<R>,
        id: impl Fn(&R) -> Uuid,
        view: impl Fn(&R) -> T,
    ) -> Page<T> {
        Page::from_rows(rows, self.limit, |r| id(r).to_string(), view)
    }
}

#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// `rows` were fetched with `limit + 1`: the extra row only tells that a next page
    /// exists, whose cursor is the last shown row's.
    pub fn from_rows<R>(
        mut rows: Vec<R>,
        limit: u32,
        cursor: impl Fn(&R) -> String,
        view: impl Fn(&R) -> T,
    ) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(&cursor) } else { None };
        Self {
            items: rows.iter().map(view).collect(),
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors() {
        assert_eq!(page_limit(None).unwrap(), 50);
        assert!(page_limit(Some(0)).is_err() && page_limit(Some(101)).is_err());
        assert!(uuid_cursor(Some("nope")).is_err());
        assert_eq!(uuid_cursor(None).unwrap(), None);
    }

    #[test]
    fn extra_row_means_a_next_page() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |r| r.to_string(), |r| r * 10);
        assert_eq!(page.items, vec![10, 20]);
        assert_eq!(page.next_cursor.as_deref(), Some("2"));
        let last = Page::from_rows(vec![1, 2], 2, |r| r.to_string(), |r| *r);
        assert_eq!(last.next_cursor, None);
    }
}
