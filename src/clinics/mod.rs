//! Many clinics in one deployment (docs/clinics.md): which clinics a folder holds
//! (`layout.rs`), the clinic `clinicflow init` creates (`template.rs`), the clinics a server
//! runs and finds again while it runs (`registry.rs`), and which clinic the current task works
//! for, for metric labels and logs (`scope.rs`).

pub mod layout;
pub mod registry;
pub mod scope;
pub mod template;

pub use layout::{ClinicDir, LayoutProblem, Slug, SlugError, discover, select};
pub use registry::{Clinics, Shared};
