//! The OpenAPI document's frame: what no single handler owns (info, tags, security
//! schemes, the shared error responses) and the schema glue for generic pages. Every
//! operation and schema in `/openapi.json` comes from the `#[utoipa::path]` of the
//! handler that serves it and the `ToSchema` of the types it reads and writes; routes
//! are registered with `routes!`, so a route cannot exist without its description.

use std::borrow::Cow;

use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, RefOr, Schema, Type};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::paging::Page;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Pica",
        version = env!("CARGO_PKG_VERSION"),
        description = "Seat, book and bundle reservations for a coworking space that is also a library and a café. Errors are JSON `{\"detail\": \"...\"}`; times are RFC 3339 in the space's time zone, dates `YYYY-MM-DD`. Lists page with `limit` and `cursor` (pass `next_cursor` back).",
        license(name = "MIT", identifier = "MIT"),
    ),
    servers((url = "/")),
    tags(
        (name = "Public", description = "Welcome, registration and sign-in (no credentials)"),
        (name = "Zones", description = "Zones, seats and availability (no credentials)"),
        (name = "Account", description = "Your account, tokens and API keys"),
        (name = "Reservations", description = "Seat reservations"),
        (name = "Waitlist", description = "Waiting for a seat in a full zone, and the holds it offers"),
        (name = "Live", description = "Server-Sent Events: committed changes as they happen"),
        (name = "Books", description = "The library: catalog, book reservations, seat + book bundles"),
        (name = "Drugs", description = "Drug recommendations (MediMatch) and autocomplete"),
        (name = "Admin", description = "Role `admin` only"),
        (name = "Operations", description = "Health, readiness, metrics and these docs"),
    ),
    components(
        schemas(crate::http::error::ErrorBody),
        responses(
            r::BadRequest,
            r::PayloadTooLarge,
            r::UnsupportedMediaType,
            r::Unprocessable,
            r::NotAuthenticated,
            r::AdminRequired,
            r::Unauthorized,
            r::TooManyRequests,
            r::Unavailable,
        )
    ),
    modifiers(&SecuritySchemes),
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "`Authorization: Bearer <access_token>` from `/api/public/login`",
            ))
            .build();
        components.add_security_scheme("bearerAuth", SecurityScheme::Http(bearer));
        for (name, header, what) in [
            (
                "apiKeyHeader",
                "api-key",
                "An API key from `POST /api/secure/api-keys`",
            ),
            (
                "xApiKeyHeader",
                "X-API-Key",
                "The same API key, in `X-API-Key`",
            ),
        ] {
            components.add_security_scheme(
                name,
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(header, what))),
            );
        }
    }
}

/// The error answers many operations share, as `#/components/responses/*`. Each one is
/// an `ApiError` variant's rendering: `{"detail": ...}` (the `Error` schema).
pub mod r {
    use utoipa::openapi::{RefOr, Response};

    macro_rules! response {
        ($name:ident, $json:tt) => {
            pub struct $name;
            impl<'s> utoipa::ToResponse<'s> for $name {
                fn response() -> (&'s str, RefOr<Response>) {
                    let response: Response = serde_json::from_value(serde_json::json!($json))
                        .expect("a well-formed response object");
                    (stringify!($name), RefOr::T(response))
                }
            }
        };
    }

    response!(BadRequest, {"description": "Malformed JSON, a malformed query string or path segment, invalid UTF-8 or a bad header", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}, "example": {"detail": "Malformed JSON: expected value at line 1 column 1"}}}});
    response!(PayloadTooLarge, {"description": "Body larger than `PICA_BODY_LIMIT_BYTES`", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}, "example": {"detail": "Request body is too large"}}}});
    response!(UnsupportedMediaType, {"description": "Body is not `application/json`", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}, "example": {"detail": "Expected a request with `Content-Type: application/json`"}}}});
    response!(Unprocessable, {"description": "Well-formed but invalid input", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}, "example": {"detail": "limit must be between 1 and 100"}}}});
    response!(NotAuthenticated, {"description": "No credentials", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}, "example": {"detail": "Not authenticated"}}}});
    response!(AdminRequired, {"description": "No credentials (`Not authenticated`) or not an admin", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}, "example": {"detail": "Admin role required"}}}});
    response!(Unauthorized, {"description": "Invalid, expired or revoked credentials (`Invalid or expired token` for a JWT, `Missing or invalid API key` for a key)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}, "example": {"detail": "Invalid or expired token"}}}, "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer` or `ApiKey`"}}});
    response!(TooManyRequests, {"description": "Too many failed attempts", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}, "example": {"detail": "Too many attempts; retry in 60 seconds"}}}, "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}}});
    response!(Unavailable, {"description": "A zone is restarting, a write could not commit, or the request timed out; retry (with the same Idempotency-Key)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}, "example": {"detail": "The zone is restarting; retry shortly"}}}, "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}}});
}

/// `{"message": ...}`, the answer of the welcome endpoints and of a password change.
#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub message: String,
}

impl Message {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// The schema name of a listing of `T`s: `T`'s own name + `Page`, unless the type says
/// otherwise.
pub trait Paged: ToSchema {
    fn page_name() -> Cow<'static, str> {
        Cow::Owned(format!("{}Page", Self::name()))
    }
}

impl<T: Paged> PartialSchema for Page<T> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .property(
                "items",
                utoipa::openapi::ArrayBuilder::new()
                    .items(utoipa::openapi::Ref::from_schema_name(T::name())),
            )
            .property(
                "next_cursor",
                ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                        Type::String,
                        Type::Null,
                    ]))
                    .description(Some(
                        "Pass it back as `cursor` for the next page; `null` on the last page",
                    )),
            )
            .required("items")
            .required("next_cursor")
            .into()
    }
}

impl<T: Paged> ToSchema for Page<T> {
    fn name() -> Cow<'static, str> {
        T::page_name()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
}
