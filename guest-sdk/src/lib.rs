//! Write the user's steps of a [weir](https://example.invalid/weir) pipeline
//! — deserialize, key, fold, format — as a WebAssembly component
//! (contract `weir:stream@0.2.0`).
//!
//! Events between stages are typed columns any language reads: a stage
//! declares the fields it reads ([`Schema`]) and gets them as slices
//! ([`Events::floats`]) or row by row ([`Row`]). The host decodes JSON and
//! keys and times events by field itself, so a plugin usually serves only
//! `fold` and `format`:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use weir_guest_sdk::{Error, Events, FieldType, FoldStage, FormatStage, Identity, Plugin, Row, Schema, Window};
//!
//! #[derive(Default, Serialize, Deserialize)]
//! struct Sum { total: f64 }
//!
//! struct Average;
//!
//! impl Plugin for Average {
//!     type Config = serde::de::IgnoredAny;
//!     fn new(_config: Self::Config) -> Result<Self, Error> { Ok(Average) }
//! }
//! impl FoldStage for Average {
//!     type Acc = Sum;
//!     fn reads(&self) -> Schema { Schema::new("reading", 1).field("value", FieldType::Float) }
//!     fn accumulator(&self) -> Identity { Identity::new("sum", 1) }
//!     fn init(&self) -> Sum { Sum::default() }
//!     fn fold(&self, acc: &mut Sum, event: &Row<'_>) -> Result<(), Error> {
//!         acc.total += event.float("value")?;
//!         Ok(())
//!     }
//! }
//! impl FormatStage for Average {
//!     type Acc = Sum;
//!     type Output = serde_json::Value;
//!     fn accumulator(&self) -> Identity { Identity::new("sum", 1) }
//!     fn format(&self, window: &Window, acc: Sum) -> Result<serde_json::Value, Error> {
//!         Ok(serde_json::json!({ "id": window.key, "average": acc.total / window.count as f64 }))
//!     }
//! }
//!
//! weir_guest_sdk::export_plugin!(fold: Average, format: Average);
//!
//! // The same logic runs natively under `cargo test`:
//! use weir_guest_sdk::{testing, Event};
//! let plugin: Average = testing::configure(serde_json::json!({})).unwrap();
//! let acc = testing::fold(&plugin, &[Event::new().float("value", 2.0), Event::new().float("value", 4.0)]).unwrap();
//! let window = testing::window("a", "2022-01-01T00:00:00Z", "2022-01-01T00:00:05Z", 2);
//! assert_eq!(testing::format(&plugin, &window, acc).unwrap()["average"], 3.0);
//! ```
//!
//! with a manifest that lets the host do the rest:
//!
//! ```toml
//! [stages]
//! plugin = "average.wasm"
//! [stages.deserialize]
//! builtin = "json"
//! [stages.key]
//! field = "id"
//! [clock]
//! kind = "event"
//! wait_for_system_duration = "0s"
//! time_field = "time"
//! ```
//!
//! Accumulators are kept by the host as JSON, so a window survives a plugin
//! swap or a restart, and a format stage in another language can read what
//! this fold wrote.
#![deny(missing_docs)]

mod decimal;
mod error;
mod event;
mod log;
mod record;
mod stage;
mod time;

pub mod testing;

#[doc(hidden)]
pub mod __bindings;
#[doc(hidden)]
pub mod __rt;

pub use decimal::Decimal;
pub use error::Error;
pub use log::{debug, error, info, warn};
pub use event::{Event, Events, FieldType, Identity, Row, Schema, Value};
pub use record::{Emitter, Header, Record};
pub use stage::{DeserializeStage, FoldStage, FormatStage, KeyStage, Plugin, Window, decode_state};
pub use time::{DateTimeParts, Timestamp};

#[doc(hidden)]
pub use wit_bindgen;

/// Exports a component serving the named stages.
///
/// Name any of `deserialize`, `key`, `fold` and `format`, each with the type
/// that implements that stage's trait. A stage left out is still exported
/// (the component targets the WIT world `merging-pipeline`) but refuses its config,
/// so a manifest that uses this component for it fails `weir check` with a
/// clear message; let the host do it instead (`builtin = "json"`,
/// `field = "..."`).
///
/// ```
/// use weir_guest_sdk::{Error, FieldType, KeyStage, Plugin, Row, Schema};
///
/// struct ByText;
/// impl Plugin for ByText {
///     type Config = serde::de::IgnoredAny;
///     fn new(_: Self::Config) -> Result<Self, Error> { Ok(ByText) }
/// }
/// impl KeyStage for ByText {
///     fn reads(&self) -> Schema { Schema::new("text", 1).field("text", FieldType::Text) }
///     fn key(&self, event: &Row<'_>) -> Result<String, Error> { Ok(event.text("text")?.to_lowercase()) }
/// }
///
/// // Serves the key stage; used for any other stage it refuses its config.
/// weir_guest_sdk::export_plugin!(key: ByText);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($($stage:ident : $ty:ty),+ $(,)?) => {
        $crate::__export_plugin!(@collect [] [] [] [] $($stage : $ty,)+);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin {
    (@collect [$($d:ty)?] [$($k:ty)?] [$($f:ty)?] [$($m:ty)?] deserialize : $t:ty, $($rest:tt)*) => {
        $crate::__export_plugin!(@collect [$t] [$($k)?] [$($f)?] [$($m)?] $($rest)*);
    };
    (@collect [$($d:ty)?] [$($k:ty)?] [$($f:ty)?] [$($m:ty)?] key : $t:ty, $($rest:tt)*) => {
        $crate::__export_plugin!(@collect [$($d)?] [$t] [$($f)?] [$($m)?] $($rest)*);
    };
    (@collect [$($d:ty)?] [$($k:ty)?] [$($f:ty)?] [$($m:ty)?] fold : $t:ty, $($rest:tt)*) => {
        $crate::__export_plugin!(@collect [$($d)?] [$($k)?] [$t] [$($m)?] $($rest)*);
    };
    (@collect [$($d:ty)?] [$($k:ty)?] [$($f:ty)?] [$($m:ty)?] format : $t:ty, $($rest:tt)*) => {
        $crate::__export_plugin!(@collect [$($d)?] [$($k)?] [$($f)?] [$t] $($rest)*);
    };
    (@collect [$($d:ty)?] [$($k:ty)?] [$($f:ty)?] [$($m:ty)?] $other:ident : $t:ty, $($rest:tt)*) => {
        ::core::compile_error!(concat!(
            "unknown stage `", stringify!($other),
            "`: export_plugin! takes deserialize, key, fold and format"
        ));
    };
    (@collect [$($d:ty)?] [$($k:ty)?] [$($f:ty)?] [$($m:ty)?]) => {
        $crate::__export_plugin!(@emit
            [$crate::__export_plugin!(@or $($d)?)]
            [$crate::__export_plugin!(@or $($k)?)]
            [$crate::__export_plugin!(@or $($f)?)]
            [$crate::__export_plugin!(@or $($m)?)]
        );
    };
    (@or $t:ty) => { $t };
    (@or) => { $crate::__rt::Unserved };
    (@emit [$d:ty] [$k:ty] [$f:ty] [$m:ty]) => {
        // Checked on every target, so `cargo test` reports a wrong type too.
        const _: fn() = || {
            fn serves<D: $crate::DeserializeStage, K: $crate::KeyStage, F: $crate::FoldStage, M: $crate::FormatStage>() {}
            serves::<$d, $k, $f, $m>();
        };
        // Only a wasm build exports anything: native builds (unit tests of
        // the plugin's logic) would trip over the `:` in WIT export names.
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            use $crate::__bindings::exports::weir::stream as __stages;

            struct __WeirComponent;

            ::std::thread_local! {
                static __DESERIALIZE: ::core::cell::RefCell<Option<$d>> = const { ::core::cell::RefCell::new(None) };
                static __KEY: ::core::cell::RefCell<Option<$k>> = const { ::core::cell::RefCell::new(None) };
                static __FOLD: ::core::cell::RefCell<Option<$f>> = const { ::core::cell::RefCell::new(None) };
                static __FORMAT: ::core::cell::RefCell<Option<$m>> = const { ::core::cell::RefCell::new(None) };
            }

            impl __stages::deserialize::Guest for __WeirComponent {
                fn configure(config: String) -> Result<(), String> {
                    let stage = $crate::__rt::configure::<$d>("deserialize", &config)?;
                    __DESERIALIZE.with(|slot| *slot.borrow_mut() = Some(stage));
                    Ok(())
                }
                fn writes() -> $crate::__bindings::weir::stream::types::Schema {
                    __DESERIALIZE.with(|slot| $crate::__rt::schema(slot.borrow().as_ref().map($crate::DeserializeStage::writes)))
                }
                fn deserialize(batch: __stages::deserialize::SourceBatch) -> __stages::deserialize::Decoded {
                    __DESERIALIZE.with(|slot| $crate::__rt::deserialize(slot.borrow().as_ref(), batch))
                }
            }

            impl __stages::key::Guest for __WeirComponent {
                fn configure(config: String) -> Result<(), String> {
                    let stage = $crate::__rt::configure::<$k>("key", &config)?;
                    __KEY.with(|slot| *slot.borrow_mut() = Some(stage));
                    Ok(())
                }
                fn reads() -> $crate::__bindings::weir::stream::types::Schema {
                    __KEY.with(|slot| $crate::__rt::schema(slot.borrow().as_ref().map($crate::KeyStage::reads)))
                }
                fn key(events: $crate::__bindings::weir::stream::types::Events) -> __stages::key::Keys {
                    __KEY.with(|slot| $crate::__rt::key(slot.borrow().as_ref(), events))
                }
            }

            impl __stages::fold::Guest for __WeirComponent {
                fn configure(config: String) -> Result<(), String> {
                    let stage = $crate::__rt::configure::<$f>("fold", &config)?;
                    __FOLD.with(|slot| *slot.borrow_mut() = Some(stage));
                    Ok(())
                }
                fn reads() -> $crate::__bindings::weir::stream::types::Schema {
                    __FOLD.with(|slot| $crate::__rt::schema(slot.borrow().as_ref().map($crate::FoldStage::reads)))
                }
                fn accumulator() -> $crate::__bindings::weir::stream::types::Identity {
                    __FOLD.with(|slot| $crate::__rt::identity(slot.borrow().as_ref().map($crate::FoldStage::accumulator)))
                }
                fn fold(batch: __stages::fold::FoldBatch) -> __stages::fold::Folded {
                    __FOLD.with(|slot| $crate::__rt::fold(slot.borrow().as_ref(), batch))
                }
                fn migrate(from: $crate::__bindings::weir::stream::types::Identity, accs: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, String> {
                    __FOLD.with(|slot| $crate::__rt::migrate(slot.borrow().as_ref(), from, accs))
                }
            }

            impl __stages::merge::Guest for __WeirComponent {
                fn merge(into: Vec<u8>, from: Vec<u8>) -> Result<Vec<u8>, String> {
                    __FOLD.with(|slot| $crate::__rt::merge(slot.borrow().as_ref(), &into, &from))
                }
            }

            impl __stages::format::Guest for __WeirComponent {
                fn configure(config: String) -> Result<(), String> {
                    let stage = $crate::__rt::configure::<$m>("format", &config)?;
                    __FORMAT.with(|slot| *slot.borrow_mut() = Some(stage));
                    Ok(())
                }
                fn accumulator() -> $crate::__bindings::weir::stream::types::Identity {
                    __FORMAT.with(|slot| $crate::__rt::identity(slot.borrow().as_ref().map($crate::FormatStage::accumulator)))
                }
                fn format(windows: Vec<__stages::format::Window>) -> __stages::format::Formatted {
                    __FORMAT.with(|slot| $crate::__rt::format(slot.borrow().as_ref(), windows))
                }
            }

            $crate::__bindings::export_pipeline!(__WeirComponent with_types_in $crate::__bindings);
        };
    };
}
