//! The one place `bindgen!` output lives. The rest of the host sees only
//! [`super::stage`]'s own types.

wasmtime::component::bindgen!({
    world: "merging-pipeline",
    path: "../wit",
});

pub use self::exports::weir::stream::{deserialize, fold, format, key, merge};
pub use self::weir::stream::log;
pub use self::weir::stream::types;
