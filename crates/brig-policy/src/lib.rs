pub mod plan;
pub use plan::*;
