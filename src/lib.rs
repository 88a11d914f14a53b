//! clinicflow: a rules-plus-LLM conversation engine for medical clinics.
//!
//! See docs/architecture.md for the folder map.

pub mod actions;
pub mod api;
pub mod background;
pub mod calendars;
pub mod channels;
pub mod cli;
pub mod clinics;
pub mod console;
pub mod editor;
pub mod email;
pub mod engine;
pub mod flow;
pub mod identity;
pub mod lang;
pub mod limits;
pub mod llm;
pub mod nlu;
pub mod outbound;
pub mod outbox;
pub mod reload;
pub mod reminders;
pub mod retention;
pub mod server;
pub mod service;
pub mod store;
