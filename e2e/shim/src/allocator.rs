//! The C allocator's settings for a shim process, applied before any thread exists.
//!
//! glibc's malloc gives every thread that allocates an arena of its own (up to eight per core),
//! and memory freed into one arena is not reused by another. A shim process has two dozen threads
//! (measured: 16 of them the shim API's per-connection handlers, plus the guest's async runtime),
//! most of which allocate a little once and then idle, so each keeps a partly used arena resident. One shim process per pod makes
//! that a per-pod cost. Two arenas keep contention low for the two runtime workers that serve
//! requests while bounding the idle waste. The container process that runs the guest is cloned
//! from the shim, so it inherits the setting.

/// Arenas for the whole process (the main one included).
const ARENAS: i32 = 2;

/// Limit malloc arenas; call first thing in `main`.
pub fn limit_arenas() {
    // SAFETY: mallopt only changes allocator tunables; it is called before any other thread starts.
    let applied = unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
    if applied != 1 {
        eprintln!("wasmkube-shim: could not limit malloc arenas (mallopt returned {applied})");
    }
}
