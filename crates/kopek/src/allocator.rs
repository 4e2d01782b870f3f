//! The process's memory allocator: mimalloc, tuned for the billing run's beat.

// The billing run builds and drops many small JSON values; with glibc's malloc, a third
// of its profile was malloc and free (perf, `kopek bench billing-run`). mimalloc also
// replaces malloc for the C code linked in (its `override` feature): SQLite's writer
// spent a seventh of its time in glibc's malloc and free (statement journals, bound
// values), and glibc handed freed page buffers back to the kernel, only to fault them in
// again on the next transaction (175,000 page faults in a billing run of 100,000; 45,000
// with mimalloc, and the writer thread's CPU time 9% lower over six interleaved pairs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc v3's `mi_option_e` (include/mimalloc.h), which
/// the `libmimalloc-sys` bindings do not name.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long memory freed stays with the process before mimalloc gives it back to the
/// kernel. mimalloc's default is one second, shorter than a billing run: buffers freed
/// by one batch went back and the next batches faulted zeroed pages in again (25,000
/// page faults in a run of 100,000, `clear_page` a tenth of the planners' time; 650 with
/// ten seconds, and renewals/s +6% in the median of six interleaved pairs). Idle memory
/// still goes back after it; `MIMALLOC_PURGE_DELAY` (milliseconds) overrides it.
const PURGE_DELAY_MS: std::ffi::c_long = 10_000;

/// Call first thing in `main`, before any thread starts.
#[allow(unsafe_code)]
pub fn configure() {
    // SAFETY: sets a plain option value in mimalloc's option table; no other thread runs
    // yet to read it concurrently. An option set from the environment is left as it is.
    unsafe { libmimalloc_sys::mi_option_set_default(PURGE_DELAY, PURGE_DELAY_MS) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)]
    fn the_purge_delay_option_is_the_one_named() {
        // mimalloc v3's options.c gives purge_delay a default of 1000 ms and no other
        // option that default, so this fails if index 15 stops being the purge delay.
        let expected = std::env::var("MIMALLOC_PURGE_DELAY")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        // SAFETY: reads a plain option value.
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) },
            expected
        );
    }
}
