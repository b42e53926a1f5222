//! `sip_set_log_callback`: where the library's log lines go.

use std::ffi::{CString, c_char, c_void};

/// Receives one log line: `level` 1 error … 5 trace, `message` valid only
/// during the call. Called from any library thread.
pub type sip_log_callback =
    Option<unsafe extern "C" fn(context: *mut c_void, level: i32, message: *const c_char)>;

struct CSink {
    callback: unsafe extern "C" fn(*mut c_void, i32, *const c_char),
    context: *mut c_void,
}

impl CSink {
    fn call(&self, level: i32, text: &CString) {
        // SAFETY: callback and context supplied by the caller for this
        // purpose; text outlives the call.
        unsafe { (self.callback)(self.context, level, text.as_ptr()) };
    }
}

// SAFETY: the contract requires the callback and its context to be usable
// from any thread (the library calls it from its own threads).
unsafe impl Send for CSink {}
// SAFETY: as above; the library never touches `context` itself.
unsafe impl Sync for CSink {}

/// Sends log lines at `max_level` and below (1 error, 2 warn, 3 info,
/// 4 debug, 5 trace: every SIP message, with digest responses masked;
/// passwords are never logged) to `callback`. A NULL `callback` logs to
/// stderr filtered by `$SIPPROFILE_LOG` (error|warn|info|debug|trace,
/// default warn). `context` is passed back untouched. The callback runs on
/// whichever thread logs, possibly with a library lock held: it must return
/// quickly and must not call this API.
#[unsafe(no_mangle)]
pub extern "C" fn sip_set_log_callback(
    callback: sip_log_callback,
    context: *mut c_void,
    max_level: i32,
) {
    super::boundary::guard((), || match callback {
        Some(cb) => {
            let sink = CSink {
                callback: cb,
                context,
            };
            crate::log::set_sink(
                Some(Box::new(move |level, msg| {
                    let text = CString::new(msg.replace('\0', " ")).unwrap_or_default();
                    sink.call(level, &text);
                })),
                max_level,
            );
        }
        None => crate::log::set_sink(None, 0),
    })
}
