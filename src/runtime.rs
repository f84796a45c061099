//! The one tokio runtime that accepts for every server in the process.
//!
//! A single thread is enough: accepting is a syscall per connection plus a
//! wake-up for JavaScript, and on small machines a second accept thread would
//! only compete with Node's own event loop for a core. It is a current-thread
//! runtime driven by one dedicated thread: with a single worker, the
//! multi-thread scheduler's park/unpark and bookkeeping cost about 2 µs per
//! connection and buy nothing (bench/JOURNAL.md, experiment E2). The runtime
//! is shared by every Node environment (main thread and workers) so loading
//! the addon in many workers does not multiply threads.

use std::io;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle};

static RUNTIME: OnceLock<Result<Handle, String>> = OnceLock::new();

/// A handle to the shared runtime, starting it on first use.
pub fn handle() -> io::Result<Handle> {
    let runtime = RUNTIME.get_or_init(|| {
        let rt = Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|err| err.to_string())?;
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("rust-net-accept".into())
            .spawn(move || rt.block_on(std::future::pending::<()>()))
            .map_err(|err| err.to_string())?;
        Ok(handle)
    });
    match runtime {
        Ok(handle) => Ok(handle.clone()),
        Err(msg) => Err(io::Error::other(format!(
            "rust-net: could not start its tokio runtime: {msg}"
        ))),
    }
}
