//! The one place `bindgen!` output lives. The rest of the host sees only
//! [`super::stage`]'s own types.

wasmtime::component::bindgen!({
    world: "pipeline",
    path: "../wit",
});

pub use exports::weir::stream::{deserialize, fold, format, key};
pub use weir::stream::log;
pub use weir::stream::types;
