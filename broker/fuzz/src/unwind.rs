//! Panics of the harness itself turned into findings. A panic in a worker or a check must end
//! the run as a reported failure (where it happened, with which frame), never unwind through a
//! `std::thread::scope` whose other threads then wait forever for a stop signal.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// The last panic of this thread, as the hook saw it (message and location).
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Installs (once per process) a panic hook that remembers each panic's message and location
/// for [`catch`], then runs the hook that was there before (which prints it as usual).
pub fn install_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let at = info
                .location()
                .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            let text = format!("{}{at}", payload_text(info.payload()));
            // A panic while this thread's locals are being torn down has nowhere to go.
            let _ = LAST.try_with(|last| *last.borrow_mut() = Some(text));
            previous(info);
        }));
    });
}

/// Runs `f`; a panic in it becomes `Err` with its message and (once [`install_hook`] ran)
/// its location. Whatever `f` shared must tolerate being left mid-update (the harness's
/// mutexes are read through poisoning).
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let _ = LAST.try_with(|last| last.borrow_mut().take());
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        LAST.try_with(|last| last.borrow_mut().take())
            .ok()
            .flatten()
            .unwrap_or_else(|| payload_text(payload.as_ref()))
    })
}

/// The message of a panic payload (`panic!` with a literal or a format string), or a
/// placeholder for other payloads.
pub fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_location() {
        install_hook();
        let err = catch(|| -> u8 { panic!("boom {}", 7) }).unwrap_err();
        assert!(err.starts_with("boom 7 at "), "{err}");
        assert!(err.contains("unwind.rs"), "{err}");
        assert_eq!(catch(|| 5), Ok(5));
    }
}
