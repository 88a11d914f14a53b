//! The one integration-test binary (SurrealDB makes every extra binary a long link).

mod api;
mod atomic;
mod browser;
mod calendars;
mod cli;
mod console;
mod conversations;
mod diagnostics;
mod email;
mod eval;
mod fuzz;
mod handoff;
mod identity;
mod llm;
mod loops;
mod outbox;
mod pages;
mod patients;
mod reload;
mod reminders;
mod schema;
mod support;
mod surreal_server;
mod twilio;
mod twilio_out;
mod widget;
