//! The integrator HTTP API (poem + poem-openapi). Handlers are thin: they check input, call
//! the same `Service`, store and action functions the conversations use, and map the result
//! to JSON. Every error is `{error, message}` JSON (see `error.rs`).
//!
//! `routes()` is the API's route set; `crate::server` mounts it beside the channels' and
//! owns the state they share (`AppState`), the body limit and `run`.

mod appointments;
pub mod auth;
mod conversations;
pub mod error;
mod escalations;
mod flows;
mod ops;
mod patients;

use poem::{Endpoint, Response, Route};
use poem_openapi::{OpenApiService, Tags};

pub use auth::ApiKeys;
pub use error::{ApiError, ErrorBody};
pub use ops::{install_metrics, metrics_app};

#[derive(Tags)]
enum Tag {
    /// Talk to the assistant as a patient would.
    Conversations,
    /// Availability and appointments, with the same rules the flows use.
    Appointments,
    /// Reminders scheduled for appointments.
    Reminders,
    /// Conversations handed over to staff.
    Escalations,
    /// One patient's personal data: export, erase, audit log (staff).
    Patients,
    /// The flows in force and their hot reload.
    Flows,
    /// Health, readiness and metrics.
    Ops,
}

type Apis = (
    conversations::Api,
    appointments::Api,
    escalations::Api,
    patients::Api,
    flows::Api,
    ops::Api,
);

/// The API's operations, tags and description.
pub fn openapi() -> OpenApiService<Apis, ()> {
    let apis = (
        conversations::Api,
        appointments::Api,
        escalations::Api,
        patients::Api,
        flows::Api,
        ops::Api,
    );
    OpenApiService::new(apis, "clinicflow", env!("CARGO_PKG_VERSION")).description(
        "The integrator API of clinicflow, a conversation engine for medical clinics. \
         Everything under /v1, and /metrics, needs `Authorization: Bearer <key>` when the \
         server has keys (CLINICFLOW_API_KEYS); each operation lists the roles whose keys it \
         accepts (admin, staff, integrator, metrics). A key of another role gets 403. Errors \
         are JSON `{error, message}`.",
    )
}

/// The OpenAPI document (committed as docs/openapi.json).
pub fn spec() -> String {
    openapi().spec()
}

/// The API's route set, mounted by `server::app` beside the channels: /v1 and the ops
/// endpoints, /openapi.json and /docs (Swagger UI).
pub fn routes() -> impl Endpoint<Output = Response> + 'static {
    let api = openapi();
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    Route::new()
        .at("/openapi.json", spec)
        .nest("/docs", docs)
        .nest("/", api)
}

/// Ids in paths are the caller's: keep them short and printable.
pub(crate) fn check_id(what: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.chars().count() > 200 || id.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "a {what} id is 1 to 200 printable characters"
        )));
    }
    Ok(())
}

/// Channel names label conversations and pick the sender for staff replies: keep them tame.
pub(crate) fn check_channel(channel: &str) -> Result<(), ApiError> {
    let tame = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if channel.is_empty() || channel.len() > 32 || !channel.chars().all(tame) {
        return Err(ApiError::bad_request(
            "`channel` is 1 to 32 letters, digits, `-` or `_`",
        ));
    }
    Ok(())
}

/// Page sizes: default 100, at most 1000.
pub(crate) fn limit(requested: Option<u32>) -> Result<usize, ApiError> {
    match requested {
        None => Ok(100),
        Some(n @ 1..=1000) => Ok(n as usize),
        Some(_) => Err(ApiError::bad_request("`limit` is between 1 and 1000")),
    }
}
