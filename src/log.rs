//! Library logging: a user callback (set through `sip_set_log_callback`) or
//! stderr filtered by `$SIPPROFILE_LOG`. Secrets are masked by the callers
//! (see `sip::message::masked_for_log`) before anything reaches here.

use parking_lot::RwLock;
use std::sync::OnceLock;

pub const ERROR: i32 = 1;
pub const WARN: i32 = 2;
pub const INFO: i32 = 3;
pub const DEBUG: i32 = 4;
pub const TRACE: i32 = 5;

/// Where log lines go. The sink is a plain Rust closure so the core never
/// names a C type; `ffi/log.rs` wraps the C callback into one.
pub type Sink = Box<dyn Fn(i32, &str) + Send + Sync>;

struct Logger {
    sink: Option<Sink>,
    max_level: i32,
}

fn logger() -> &'static RwLock<Logger> {
    static L: OnceLock<RwLock<Logger>> = OnceLock::new();
    L.get_or_init(|| {
        RwLock::new(Logger {
            sink: None,
            max_level: level_from_env(),
        })
    })
}

fn level_from_env() -> i32 {
    match std::env::var("SIPPROFILE_LOG").as_deref() {
        Ok("error") => ERROR,
        Ok("warn") => WARN,
        Ok("info") => INFO,
        Ok("debug") => DEBUG,
        Ok("trace") => TRACE,
        Ok("off") => 0,
        _ => WARN,
    }
}

/// Installs `sink` with `max_level`; `None` goes back to stderr and `$SIPPROFILE_LOG`.
pub fn set_sink(sink: Option<Sink>, max_level: i32) {
    let mut l = logger().write();
    l.max_level = if sink.is_some() {
        max_level
    } else {
        level_from_env()
    };
    l.sink = sink;
}

/// True when a message at `level` would be written (lets callers skip formatting).
pub fn enabled(level: i32) -> bool {
    level <= logger().read().max_level
}

pub fn log(level: i32, msg: &str) {
    let l = logger().read();
    if level > l.max_level {
        return;
    }
    match &l.sink {
        Some(sink) => sink(level, msg),
        None => {
            let name = match level {
                ERROR => "error",
                WARN => "warn",
                INFO => "info",
                DEBUG => "debug",
                _ => "trace",
            };
            eprintln!("sipprofile {name}: {msg}");
        }
    }
}

pub fn error(msg: &str) {
    log(ERROR, msg)
}
pub fn warn(msg: &str) {
    log(WARN, msg)
}
pub fn info(msg: &str) {
    log(INFO, msg)
}
pub fn debug(msg: &str) {
    log(DEBUG, msg)
}
