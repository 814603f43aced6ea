//! Lines for the host's log, tagged with the stage that wrote them.

#[cfg(target_arch = "wasm32")]
fn write(level: crate::__bindings::weir::stream::log::Level, message: &str) {
    crate::__bindings::weir::stream::log::log(level, message);
}

#[cfg(not(target_arch = "wasm32"))]
fn write(level: crate::__bindings::weir::stream::log::Level, message: &str) {
    // Natively (unit tests) there is no host: write to stderr.
    eprintln!("[{level:?}] {message}");
}

/// Logs `message` at debug level.
pub fn debug(message: &str) {
    write(crate::__bindings::weir::stream::log::Level::Debug, message);
}

/// Logs `message` at info level.
pub fn info(message: &str) {
    write(crate::__bindings::weir::stream::log::Level::Info, message);
}

/// Logs `message` at warn level.
pub fn warn(message: &str) {
    write(crate::__bindings::weir::stream::log::Level::Warn, message);
}

/// Logs `message` at error level.
pub fn error(message: &str) {
    write(crate::__bindings::weir::stream::log::Level::Error, message);
}
