//! The one integration-test binary (SurrealDB makes every extra binary a long link).

mod cli;
mod conversations;
mod diagnostics;
mod fuzz;
mod schema;
mod support;
