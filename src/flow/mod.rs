//! The flow language: raw serde model → `compile()` → immutable `Bot`.

pub mod actions;
pub mod bot;
pub mod clinic;
pub mod compile;
pub mod diag;
pub mod graph;
pub mod raw;
pub mod script;
pub mod templates;
pub mod yaml;
