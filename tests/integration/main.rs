//! The one integration-test binary (SurrealDB makes every extra binary a long link).

mod api;
mod calendars;
mod cli;
mod conversations;
mod diagnostics;
mod email;
mod eval;
mod fuzz;
mod identity;
mod llm;
mod loops;
mod patients;
mod reload;
mod reminders;
mod schema;
mod support;
mod twilio;
mod twilio_out;
