//! Many clinics in one deployment (docs/clinics.md): which clinics a folder holds
//! (`layout.rs`), the clinic `clinicflow init` creates (`template.rs`).

pub mod layout;
pub mod template;

pub use layout::{ClinicDir, LayoutProblem, Slug, SlugError, discover, select};
