//! Running a third-party parser that may panic on a damaged file (polars' Parquet decoders,
//! the tokenizers crate) so that the panic becomes an error message, not a crash or a
//! "panicked at" on stderr that a user would take for one.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};

/// Run `f`; a panic inside it (in any thread it waits on, such as a worker pool's) is
/// `Err(its message and location)`, on one line.
///
/// While `f` runs, the process's panic hook is swapped for one that keeps the first message
/// instead of printing it, and put back afterwards. Calls are serialised so that swaps never
/// interleave; a panic elsewhere in the process meanwhile is kept (not printed) the same way,
/// so call this around parsing only, not around long work.
pub fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static CALLS: Mutex<()> = Mutex::new(());
    let _serial = CALLS.lock().unwrap_or_else(PoisonError::into_inner);
    let kept: Arc<Mutex<Option<String>>> = Arc::default();
    let previous = std::panic::take_hook();
    let keep = Arc::clone(&kept);
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload_as_str().unwrap_or("a panic");
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let mut kept = keep.lock().unwrap_or_else(PoisonError::into_inner);
        kept.get_or_insert(format!("{message}{at}"));
    }));
    let result = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    result.map_err(|_| {
        let what = kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| "a panic".into());
        what.split_whitespace().collect::<Vec<_>>().join(" ")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// One test, not several: the panic hook is the process's, and tests run in parallel.
    #[test]
    fn panics_are_kept_on_one_line_and_the_previous_hook_comes_back() {
        static OUTSIDE: AtomicUsize = AtomicUsize::new(0);
        std::panic::set_hook(Box::new(|_| {
            OUTSIDE.fetch_add(1, Ordering::SeqCst);
        }));

        assert_eq!(quietly(|| 7), Ok(7));

        let line = line!() + 1;
        let err = quietly(|| -> u8 { panic!("assertion failed\n  left: 0") });
        assert_eq!(
            err,
            Err(format!(
                "assertion failed left: 0 at host/panic-guard/src/lib.rs:{line}"
            ))
        );

        // A panic in a thread the call waits on is kept too, and the call goes on.
        let joined =
            quietly(|| std::thread::scope(|s| s.spawn(|| panic!("in a worker")).join().is_err()));
        assert_eq!(joined, Ok(true));
        assert_eq!(
            OUTSIDE.load(Ordering::SeqCst),
            0,
            "a kept panic reached the hook"
        );

        // Afterwards the previous hook sees panics again.
        let _ = catch_unwind(|| panic!("outside"));
        assert_eq!(OUTSIDE.load(Ordering::SeqCst), 1);
        let _ = std::panic::take_hook();
    }
}
