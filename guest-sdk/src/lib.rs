//! Write the user's steps of a [weir](https://example.invalid/weir) pipeline
//! — deserialize, key, fold, format — as a WebAssembly component.
//!
//! A plugin is a struct, a trait impl per stage it serves, and one
//! [`export_plugin!`]. The host owns everything else: reading the source,
//! event time, windows, the accumulators, checkpoints and the sink. Each stage
//! gets its own instance of your struct, built by [`Plugin::new`] from that
//! stage's config in the manifest.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use weir_guest_sdk::{
//!     DeserializeStage, Emitter, Error, FoldStage, FormatStage, KeyStage, Plugin, Record,
//!     Timestamp, Window,
//! };
//!
//! #[derive(Serialize, Deserialize)]
//! struct Reading { id: String, value: f64, time: String }
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
//! impl DeserializeStage for Average {
//!     type Event = Reading;
//!     fn deserialize(&self, record: &Record<'_>, out: &mut Emitter<'_, Reading>) -> Result<(), Error> {
//!         let reading: Reading = record.json()?;
//!         let time = Timestamp::parse_rfc3339(&reading.time)?;
//!         out.emit_at(reading, time)
//!     }
//! }
//! impl KeyStage for Average {
//!     type Event = Reading;
//!     fn key(&self, reading: &Reading) -> Result<String, Error> { Ok(reading.id.clone()) }
//! }
//! impl FoldStage for Average {
//!     type Event = Reading;
//!     type Acc = Sum;
//!     fn init(&self) -> Sum { Sum::default() }
//!     fn fold(&self, acc: &mut Sum, reading: Reading) -> Result<(), Error> {
//!         acc.total += reading.value;
//!         Ok(())
//!     }
//! }
//! impl FormatStage for Average {
//!     type Acc = Sum;
//!     type Output = serde_json::Value;
//!     fn format(&self, window: &Window, acc: Sum) -> Result<serde_json::Value, Error> {
//!         Ok(serde_json::json!({ "id": window.key, "average": acc.total / window.count as f64 }))
//!     }
//! }
//!
//! weir_guest_sdk::export_plugin!(deserialize: Average, key: Average, fold: Average, format: Average);
//!
//! // The same logic runs natively under `cargo test`:
//! use weir_guest_sdk::testing;
//! let plugin: Average = testing::configure(serde_json::json!({})).unwrap();
//! let events = testing::deserialize(&plugin, br#"{"id":"a","value":2.0,"time":"2022-01-01T00:00:00Z"}"#).unwrap();
//! assert_eq!(testing::key(&plugin, &events[0].0).unwrap(), "a");
//! let acc = testing::fold(&plugin, events.into_iter().map(|(e, _)| e)).unwrap();
//! let window = testing::window("a", "2022-01-01T00:00:00Z", "2022-01-01T00:00:05Z", 1);
//! assert_eq!(testing::format(&plugin, &window, acc).unwrap()["average"], 2.0);
//! ```
//!
//! Events travel between stages encoded by this SDK (postcard), so the
//! stages of one pipeline must agree on the event type; accumulators are
//! encoded the same way and kept by the host, which is why a window survives
//! a plugin swap or a restart.
#![deny(missing_docs)]

mod decimal;
mod error;
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
pub use record::{Emitter, Header, Record};
pub use stage::{DeserializeStage, FoldStage, FormatStage, KeyStage, Plugin, Window, decode_state};
pub use time::{DateTimeParts, Timestamp};

#[doc(hidden)]
pub use wit_bindgen;

/// Exports a component serving the named stages.
///
/// Name any of `deserialize`, `key`, `fold` and `format`, each with the type
/// that implements that stage's trait. A stage left out is still exported
/// (the component targets the WIT world `pipeline`) but refuses its config,
/// so a manifest that uses this component for it fails `weir check` with a
/// clear message.
///
/// ```
/// use weir_guest_sdk::{Error, KeyStage, Plugin};
///
/// struct ByText;
/// impl Plugin for ByText {
///     type Config = serde::de::IgnoredAny;
///     fn new(_: Self::Config) -> Result<Self, Error> { Ok(ByText) }
/// }
/// impl KeyStage for ByText {
///     type Event = String;
///     fn key(&self, event: &String) -> Result<String, Error> { Ok(event.clone()) }
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
                fn deserialize(batch: __stages::deserialize::SourceBatch) -> __stages::deserialize::Events {
                    __DESERIALIZE.with(|slot| $crate::__rt::deserialize(slot.borrow().as_ref(), batch))
                }
            }

            impl __stages::key::Guest for __WeirComponent {
                fn configure(config: String) -> Result<(), String> {
                    let stage = $crate::__rt::configure::<$k>("key", &config)?;
                    __KEY.with(|slot| *slot.borrow_mut() = Some(stage));
                    Ok(())
                }
                fn key(events: $crate::__bindings::weir::stream::types::Packed) -> __stages::key::Keys {
                    __KEY.with(|slot| $crate::__rt::key(slot.borrow().as_ref(), events))
                }
            }

            impl __stages::fold::Guest for __WeirComponent {
                fn configure(config: String) -> Result<(), String> {
                    let stage = $crate::__rt::configure::<$f>("fold", &config)?;
                    __FOLD.with(|slot| *slot.borrow_mut() = Some(stage));
                    Ok(())
                }
                fn state_version() -> u32 {
                    <$f as $crate::FoldStage>::STATE_VERSION
                }
                fn fold(batch: __stages::fold::FoldBatch) -> __stages::fold::Folded {
                    __FOLD.with(|slot| $crate::__rt::fold(slot.borrow().as_ref(), batch))
                }
                fn migrate(from_version: u32, accs: $crate::__bindings::weir::stream::types::Packed) -> Result<$crate::__bindings::weir::stream::types::Packed, String> {
                    __FOLD.with(|slot| $crate::__rt::migrate(slot.borrow().as_ref(), from_version, accs))
                }
            }

            impl __stages::format::Guest for __WeirComponent {
                fn configure(config: String) -> Result<(), String> {
                    let stage = $crate::__rt::configure::<$m>("format", &config)?;
                    __FORMAT.with(|slot| *slot.borrow_mut() = Some(stage));
                    Ok(())
                }
                fn format(windows: Vec<__stages::format::Window>) -> __stages::format::Formatted {
                    __FORMAT.with(|slot| $crate::__rt::format(slot.borrow().as_ref(), windows))
                }
            }

            $crate::__bindings::export_pipeline!(__WeirComponent with_types_in $crate::__bindings);
        };
    };
}
