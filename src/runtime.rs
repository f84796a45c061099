//! The one tokio runtime that accepts for every server in the process.
//!
//! A single worker thread is enough: accepting is a syscall per connection
//! plus a wake-up for JavaScript, and on small machines a second accept
//! thread would only compete with Node's own event loop for a core. The
//! runtime is shared by every Node environment (main thread and workers) so
//! loading the addon in many workers does not multiply threads.

use std::io;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle, Runtime};

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// A handle to the shared runtime, starting it on first use.
pub fn handle() -> io::Result<Handle> {
    let runtime = RUNTIME.get_or_init(|| {
        Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(1)
            .thread_name("rust-net-accept")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|err| err.to_string())
    });
    match runtime {
        Ok(runtime) => Ok(runtime.handle().clone()),
        Err(msg) => Err(io::Error::other(format!(
            "rust-net: could not start its tokio runtime: {msg}"
        ))),
    }
}
