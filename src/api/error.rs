//! Every error the API answers with: one enum, one exhaustive match to status codes, one JSON
//! shape (`{error, message}`). Errors raised outside our handlers (malformed JSON, unknown
//! routes, bad query values) are turned into the same shape by [`from_poem`].

use crate::flow::actions::Refusal;
use poem::error::ResponseError;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaResponse, MetaResponses, Registry};
use poem_openapi::{ApiResponse, Object, ResponseContent};
use serde_json::Value;

use crate::service::ServiceError;
use crate::store::StoreError;

/// The body of every error response.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// A stable machine-readable code: `unauthorized`, `forbidden`, `bad_request`, `not_found`,
    /// `too_large`, `idempotency_mismatch`, `rate_limited`, `unavailable`, … or the reason a booking was refused (`taken`, `past`, `closed`, …).
    pub error: String,
    /// What went wrong, in plain words.
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or wrong API key: send `Authorization: Bearer <key>`")]
    Unauthorized,
    /// A valid key whose role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The request is malformed or asks for something that cannot exist.
    #[error("{message}")]
    BadRequest { code: String, message: String },
    #[error("{what} `{id}` not found")]
    NotFound { what: &'static str, id: String },
    /// The request is valid but the current state refuses it (slot taken, already cancelled…).
    #[error("{message}")]
    Conflict { code: String, message: String },
    #[error("{0}")]
    TooLarge(String),
    /// The request is well formed but contradicts an earlier one (an `Idempotency-Key` reused
    /// with another body).
    #[error("{0}")]
    Unprocessable(String),
    /// Over a rate limit: retry after the given number of seconds (`Retry-After`).
    #[error("too many messages; retry in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    /// The patient's channel refused the message.
    #[error("the message could not be delivered: {0}")]
    Delivery(String),
    /// The database cannot be reached. The detail is logged, not returned.
    #[error("the database is unavailable; try again shortly")]
    Unavailable(String),
    /// A bug or a database answer we did not expect. The detail is logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code: "bad_request".into(),
            message: message.into(),
        }
    }

    pub fn not_found(what: &'static str, id: &str) -> Self {
        ApiError::NotFound {
            what,
            id: id.to_string(),
        }
    }

    /// The one place statuses are decided.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Delivery(_) => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::BadRequest { code, .. } | ApiError::Conflict { code, .. } => code,
            ApiError::NotFound { .. } => "not_found",
            ApiError::TooLarge(_) => "too_large",
            ApiError::Unprocessable(_) => "idempotency_mismatch",
            ApiError::TooManyRequests { .. } => "rate_limited",
            ApiError::Delivery(_) => "delivery_failed",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code().to_string(),
            message: self.to_string(),
        }
    }

    /// An action's refusal (`{ok: false, reason}`) as an API error. `what` names the thing a
    /// `not_found` is about.
    pub fn refusal(result: &Value, what: &'static str, id: &str) -> Self {
        let reason = result.get("reason").and_then(Value::as_str).unwrap_or("refused");
        let field = |k: &str| result.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let conflict = |message: &str| ApiError::Conflict {
            code: reason.to_string(),
            message: message.to_string(),
        };
        let bad = |message: String| ApiError::BadRequest {
            code: reason.to_string(),
            message,
        };
        let Some(refusal) = Refusal::parse(reason) else {
            return bad(format!("refused: {reason}"));
        };
        match refusal {
            Refusal::NotFound => ApiError::not_found(what, id),
            Refusal::Taken => conflict("that slot is already booked; GET /v1/availability lists free ones"),
            Refusal::Past => conflict("that date and time have already passed"),
            Refusal::Closed => conflict("the clinic is closed that day"),
            Refusal::NoSlots => conflict("nobody of that specialty sees patients that day"),
            Refusal::OutsideHours => conflict("that time is not a start time of any professional's schedule"),
            Refusal::UnknownSpecialty => bad(format!("the clinic has no specialty called `{}`", field("specialty"))),
            Refusal::UnknownProfessional => bad(format!(
                "no professional of that specialty is called `{}`",
                field("professional")
            )),
            Refusal::InvalidDate => bad("dates are written YYYY-MM-DD".into()),
            Refusal::InvalidTime => bad("times are written HH:MM".into()),
            Refusal::InvalidEmail => bad("`email` is not an email address (name@example.com)".into()),
            Refusal::InvalidDuration => bad("reminder offsets are written like 24h, 2h or 30m".into()),
            Refusal::MissingDate
            | Refusal::MissingDocument
            | Refusal::MissingPatientName
            | Refusal::MissingSpecialty
            | Refusal::MissingTime => bad(format!("`{}` is required", &reason["missing_".len()..])),
            // As the API always answered these (the flows' own words).
            Refusal::TooFar
            | Refusal::NoTime
            | Refusal::OutsideWindow
            | Refusal::CalendarUnavailable
            | Refusal::InvalidStatus
            | Refusal::InvalidWindow
            | Refusal::CodeSent
            | Refusal::Locked
            | Refusal::WrongCode => bad(format!("refused: {reason}")),
        }
    }
}

impl ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        ApiError::status(self)
    }

    fn as_response(&self) -> Response {
        // Server-side failures are logged here, once per response; their detail (which may
        // quote a database message) stays out of the body.
        match self {
            ApiError::Unavailable(detail) | ApiError::Internal(detail) => {
                tracing::error!(code = self.code(), "request failed: {detail}");
            }
            ApiError::Delivery(detail) => tracing::warn!("delivery failed: {detail}"),
            _ => {}
        }
        let mut resp = json_response(self.status(), &self.body());
        if let ApiError::TooManyRequests { retry_after } = self
            && let Ok(v) = poem::http::HeaderValue::from_str(&retry_after.to_string())
        {
            resp.headers_mut().insert(poem::http::header::RETRY_AFTER, v);
        }
        resp
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        ResponseError::as_response(&self)
    }
}

/// Documents the error responses of every operation: any 4XX or 5XX carries an [`ErrorBody`].
impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        let entry = |description: &'static str, range: &str| MetaResponse {
            description,
            status: None,
            status_range: Some(range.to_string()),
            content: <Json<ErrorBody> as ResponseContent>::media_types(),
            headers: Vec::new(),
        };
        MetaResponses {
            responses: vec![
                entry("A client error: `{error, message}`", "4XX"),
                entry("A server error: `{error, message}`", "5XX"),
            ],
        }
    }

    fn register(registry: &mut Registry) {
        <Json<ErrorBody> as ResponseContent>::register(registry);
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadUrl { .. } | StoreError::Connect(_) => ApiError::Unavailable(e.to_string()),
            StoreError::Conflict(_) => ApiError::Conflict {
                code: "conflict".into(),
                message: "a concurrent change won; retry the request".into(),
            },
            StoreError::SlotTaken => ApiError::Conflict {
                code: "taken".into(),
                message: "that slot is already booked".into(),
            },
            StoreError::NotFound { table, id } => ApiError::NotFound { what: table, id },
            StoreError::Query(_) => ApiError::Internal(e.to_string()),
            // A decode error can quote the stored value (a document number, a name): its
            // detail goes to the debug log only.
            StoreError::Decode { what, reason } => {
                tracing::debug!(what, "decode error: {reason}");
                ApiError::Internal(format!("cannot read a stored {what}"))
            }
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Store(e) => e.into(),
            ServiceError::ClaimLost => ApiError::Conflict {
                code: "claim_lost".into(),
                message: "another worker took the message over; nothing was stored".into(),
            },
            ServiceError::IdReused => ApiError::Unprocessable(
                "this Idempotency-Key was already used on this conversation for a different message; \
                 send a new key with a new message (a retry must repeat the same body)"
                    .into(),
            ),
        }
    }
}

impl From<crate::actions::ActionError> for ApiError {
    fn from(e: crate::actions::ActionError) -> Self {
        match e {
            crate::actions::ActionError::Store(e) => e.into(),
        }
    }
}

fn json_response(status: StatusCode, body: &ErrorBody) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(bytes)
}

/// Any error that reached the top of the app, as `{error, message}` JSON: ours keep their
/// body; poem's (malformed JSON, bad parameters, unknown route, wrong method) get a code from
/// their status and their own message, which names the field but never quotes the body.
pub fn from_poem(err: poem::Error) -> Response {
    if let Some(api) = err.downcast_ref::<ApiError>() {
        return ResponseError::as_response(api);
    }
    let status = err.status();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    };
    let message = if status.is_server_error() {
        tracing::error!(status = status.as_u16(), "request failed: {err}");
        "internal error".to_string()
    } else if status == StatusCode::NOT_FOUND && err.to_string().eq_ignore_ascii_case("not found") {
        "no such endpoint; GET /openapi.json lists them".to_string()
    } else {
        err.to_string()
    };
    json_response(
        status,
        &ErrorBody {
            error: code.to_string(),
            message,
        },
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn refusals_map_to_the_right_status() {
        let cases = [
            (json!({ "ok": false, "reason": "not_found" }), StatusCode::NOT_FOUND),
            (json!({ "ok": false, "reason": "taken" }), StatusCode::CONFLICT),
            (json!({ "ok": false, "reason": "past" }), StatusCode::CONFLICT),
            (
                json!({ "ok": false, "reason": "missing_document" }),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({ "ok": false, "reason": "unknown_specialty", "specialty": "x" }),
                StatusCode::BAD_REQUEST,
            ),
            (json!({ "ok": false }), StatusCode::BAD_REQUEST),
        ];
        for (result, status) in cases {
            assert_eq!(
                ApiError::refusal(&result, "appointment", "a1").status(),
                status,
                "{result}"
            );
        }
        let missing = ApiError::refusal(&json!({ "reason": "missing_document" }), "appointment", "a1");
        assert_eq!(
            (missing.code(), missing.to_string().as_str()),
            ("missing_document", "`document` is required")
        );
    }

    #[test]
    fn server_errors_do_not_leak_their_detail() {
        let e: ApiError = StoreError::Query("SELECT … 30111222".into()).into();
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.body().message.contains("30111222"));
        let e: ApiError = ServiceError::IdReused.into();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
