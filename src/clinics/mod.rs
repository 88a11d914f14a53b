//! Many clinics in one deployment (docs/clinics.md): which clinics a folder holds
//! (`layout.rs`).

pub mod layout;

pub use layout::{ClinicDir, LayoutProblem, Slug, SlugError, discover, select};
