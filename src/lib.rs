//! rust-net's native half: the listening socket of a Node `net.Server`, in Rust.
//!
//! This file is only the N-API surface. Set-up lives in [`socket`], the
//! descriptor handoff in [`acceptor`], the two places that accept (a tokio
//! thread, or the JavaScript thread's event loop) in [`placement`], errno
//! mapping in [`errno`].
//! Every method returns libuv-style results (0 or a negative errno) rather
//! than throwing, because Node's own `net` code decides what to throw or emit
//! for each failure and JavaScript passes these numbers straight to it.

#![deny(clippy::unwrap_used, clippy::expect_used)]

mod acceptor;
mod errno;
mod placement;
mod reserve;
mod runtime;
mod socket;

use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::CleanupEnvHook;
use napi_derive::napi;

use acceptor::Acceptor;
use placement::event_loop::LoopPoll;
use placement::{runtime_thread, Placement};
use socket::{Bound, Kind};

/// The JavaScript callback of a listening server, called with no arguments
/// when connections (or an accept error) wait in `take()`.
type ConnectionCallback<'a> = Function<'a, (), Unknown<'static>>;
type Wake = ThreadsafeFunction<(), Unknown<'static>, (), Status, false>;

/// `ref()`/`unref()` of a threadsafe function: whether it keeps the event
/// loop alive, which is what a listening Node server does unless unref'd.
fn set_referenced(env: &Env, wake: &Wake, referenced: bool) -> Result<()> {
    wake.handle.with_read_aborted(|aborted| {
        if aborted {
            return Ok(());
        }
        // SAFETY: the function is not aborted, so N-API still owns a live
        // threadsafe function, and we are on its environment's thread.
        let status = unsafe {
            if referenced {
                napi::sys::napi_ref_threadsafe_function(env.raw(), wake.raw())
            } else {
                napi::sys::napi_unref_threadsafe_function(env.raw(), wake.raw())
            }
        };
        if status == napi::sys::Status::napi_ok {
            Ok(())
        } else {
            Err(Error::from_status(Status::from(status)))
        }
    })
}

/// One listening socket: bound (or adopted), then listening and accepting.
#[napi]
#[derive(Default)]
pub struct Listener {
    bound: Option<Bound>,
    kind: Option<Kind>,
    acceptor: Option<Arc<Acceptor>>,
    wake: Option<Arc<Wake>>,
    cleanup: Option<CleanupEnvHook<Weak<Acceptor>>>,
    /// The poll handle of the event-loop placement.
    loop_poll: Option<LoopPoll>,
    /// Where this server accepts, once listening.
    placement: Option<Placement>,
    /// The socket file a pipe server created, removed on close as libuv does.
    unlink_on_close: Option<PathBuf>,
}

#[napi]
impl Listener {
    #[napi(constructor)]
    pub fn new() -> Self {
        Self::default()
    }

    fn set_bound(&mut self, result: std::result::Result<Bound, i32>) -> i32 {
        match result {
            Ok(bound) => {
                self.kind = Some(bound.kind);
                self.bound = Some(bound);
                0
            }
            Err(code) => code,
        }
    }

    /// Creates and binds a TCP socket. `ipv6` selects the address family of
    /// the literal, as Node's `bind` vs `bind6`.
    #[napi(catch_unwind)]
    pub fn bind_tcp(&mut self, address: String, port: u32, ipv6: bool, ipv6_only: bool, reuse_port: bool) -> i32 {
        if self.kind.is_some() {
            return errno::UV_EINVAL;
        }
        let Ok(port) = u16::try_from(port) else {
            return errno::UV_EINVAL;
        };
        self.set_bound(socket::bind_tcp(&address, port, ipv6, ipv6_only, reuse_port))
    }

    /// Creates a Unix domain socket bound at `name` (abstract if it starts
    /// with a NUL byte). `unlink_on_close` is the file removed when the
    /// server closes, and `pad_abstract` whether an abstract name takes the
    /// whole address size — Node versions differ on both.
    #[napi(catch_unwind)]
    pub fn bind_pipe(&mut self, name: Buffer, unlink_on_close: Option<Buffer>, pad_abstract: bool) -> i32 {
        if self.kind.is_some() {
            return errno::UV_EINVAL;
        }
        let code = self.set_bound(socket::bind_pipe(&name, pad_abstract));
        if code == 0 {
            self.unlink_on_close = unlink_on_close
                .map(|path| PathBuf::from(std::ffi::OsStr::from_bytes(&path)));
        }
        code
    }

    /// Adopts an existing socket descriptor (`listen({ fd })`).
    #[napi(catch_unwind)]
    pub fn open(&mut self, fd: i32) -> i32 {
        if self.kind.is_some() {
            return errno::UV_EINVAL;
        }
        self.set_bound(socket::adopt(fd))
    }

    /// `"tcp"`, `"pipe"`, or null before a socket exists.
    #[napi(getter)]
    pub fn kind(&self) -> Option<&'static str> {
        self.kind.map(|kind| match kind {
            Kind::Tcp => "tcp",
            Kind::Pipe => "pipe",
        })
    }

    /// The listening descriptor, or -1 when there is none.
    #[napi(getter)]
    pub fn fd(&self) -> i32 {
        if let Some(acceptor) = &self.acceptor {
            return acceptor.with_listener(|s| s.as_raw_fd()).unwrap_or(-1);
        }
        self.bound.as_ref().map_or(-1, |b| socket::raw(&b.socket))
    }

    /// Starts listening and accepting. Connections (and accept errors) are
    /// reported through `onconnection`, in batches. `placement` is
    /// `"runtime"`, `"event-loop"` or `"auto"` (the default: see
    /// [`placement::automatic`]).
    #[napi(catch_unwind)]
    pub fn listen(&mut self, env: Env, backlog: i32, onconnection: ConnectionCallback, placement: Option<String>) -> Result<i32> {
        if let Some(acceptor) = &self.acceptor {
            // Listening already (a handle shared by two servers, as Node
            // allows): only the backlog changes, as with a second uv_listen.
            let result = acceptor.with_listener(|s| s.listen(backlog).map_err(|e| errno::uv_code(&e)));
            return Ok(result.unwrap_or(Err(-libc::EBADF)).err().unwrap_or(0));
        }
        let placement = match Placement::parse(placement.as_deref().unwrap_or("auto")) {
            Ok(choice) => choice.unwrap_or_else(placement::automatic),
            Err(()) => return Ok(errno::UV_EINVAL),
        };
        let Some(bound) = self.bound.as_ref() else {
            return Ok(errno::UV_EINVAL);
        };
        if let Err(code) = socket::listen(bound, backlog) {
            return Ok(code);
        }
        reserve::ensure();
        let Some(bound) = self.bound.take() else {
            return Ok(errno::UV_EINVAL);
        };
        let code = match placement {
            Placement::Runtime => self.listen_on_runtime(&env, bound.socket, backlog, onconnection)?,
            Placement::EventLoop => self.listen_on_event_loop(&env, bound.socket, backlog, &onconnection),
        };
        if code == 0 {
            self.placement = Some(placement);
        }
        Ok(code)
    }

    fn listen_on_runtime(&mut self, env: &Env, socket: socket2::Socket, backlog: i32, onconnection: ConnectionCallback) -> Result<i32> {
        let handle = runtime::handle().map_err(|e| Error::from_reason(e.to_string()))?;
        let listening = match runtime_thread::register(socket, &handle) {
            Ok(listening) => listening,
            Err(err) => return Ok(errno::uv_code(&err)),
        };
        let acceptor = Arc::new(Acceptor::new(listening, backlog));

        let wake: Arc<Wake> = Arc::new(onconnection
            .build_threadsafe_function::<()>()
            .callee_handled::<false>()
            .build_callback(|_ctx| Ok(()))?);

        self.cleanup = Some(env.add_env_cleanup_hook(Arc::downgrade(&acceptor), |acceptor| {
            // The environment (a worker, or the main thread at exit) is going
            // away: stop accepting and close whatever JavaScript never took.
            if let Some(acceptor) = acceptor.upgrade() {
                acceptor.shutdown();
            }
        })?);

        let task_wake = Arc::clone(&wake);
        handle.spawn(runtime_thread::run(Arc::clone(&acceptor), move || {
            task_wake.call((), ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok
        }));
        self.wake = Some(wake);
        self.acceptor = Some(acceptor);
        Ok(0)
    }

    fn listen_on_event_loop(&mut self, env: &Env, socket: socket2::Socket, backlog: i32, onconnection: &ConnectionCallback) -> i32 {
        let acceptor = Arc::new(Acceptor::new(placement::event_loop::listening(socket), backlog));
        // SAFETY: called from JavaScript, so on `env`'s thread, with
        // `onconnection` a live function of that environment.
        match unsafe { LoopPoll::start(env.raw(), onconnection.raw(), Arc::clone(&acceptor)) } {
            Ok(poll) => {
                self.loop_poll = Some(poll);
                self.acceptor = Some(acceptor);
                0
            }
            Err(code) => {
                acceptor.shutdown();
                code
            }
        }
    }

    /// Where this server accepts: `"runtime"`, `"event-loop"`, or null
    /// before it listens.
    #[napi(getter)]
    pub fn placement(&self) -> Option<&'static str> {
        self.placement.map(Placement::name)
    }

    /// The next batch of connections: `[error, fd, ...]` (see
    /// [`Acceptor::take`]). Each descriptor must be claimed in `claimCounter()`
    /// once a Node handle owns it, or released with `release()`.
    #[napi(catch_unwind)]
    pub fn take(&self) -> Vec<i32> {
        let Some(acceptor) = &self.acceptor else {
            return vec![0];
        };
        let batch = acceptor.take();
        if let Some(poll) = &self.loop_poll {
            poll.resume();
        }
        batch
    }

    /// Closes in-flight descriptor `index` (0-based within the last batch's
    /// descriptors), which JavaScript could not wrap.
    #[napi(catch_unwind)]
    pub fn release(&self, index: u32) {
        if let Some(acceptor) = &self.acceptor {
            acceptor.release(index as usize);
        }
    }

    /// A one-element Int32Array over the claim counter: JavaScript stores in
    /// it how many descriptors of the last batch it has taken ownership of.
    #[napi(catch_unwind)]
    pub fn claim_counter(&self) -> Result<Int32Array> {
        let Some(acceptor) = &self.acceptor else {
            return Err(Error::from_reason("rust-net: claimCounter() before listen()"));
        };
        let keep_alive = Arc::clone(acceptor);
        // SAFETY: the pointer is the AtomicI32 inside the Acceptor, which the
        // finaliser keeps alive (through `keep_alive`) for as long as the
        // Int32Array exists; one i32 is exactly its size.
        Ok(unsafe {
            Int32Array::with_external_data(acceptor.claimed_ptr(), 1, move |_, _| drop(keep_alive))
        })
    }

    /// Keeps the event loop alive while listening (the default).
    #[napi(js_name = "ref", catch_unwind)]
    pub fn refer(&mut self, env: Env) -> Result<()> {
        if let Some(poll) = &self.loop_poll {
            poll.set_ref(true);
        }
        match &self.wake {
            Some(wake) => set_referenced(&env, wake, true),
            None => Ok(()),
        }
    }

    /// Lets the process exit while this server still listens.
    #[napi(catch_unwind)]
    pub fn unref(&mut self, env: Env) -> Result<()> {
        if let Some(poll) = &self.loop_poll {
            poll.set_ref(false);
        }
        match &self.wake {
            Some(wake) => set_referenced(&env, wake, false),
            None => Ok(()),
        }
    }

    /// Stops listening now: when this returns the port (or path) is free, and
    /// connections accepted but not yet handed to JavaScript are closed.
    #[napi(catch_unwind)]
    pub fn close(&mut self, env: Env) -> Result<()> {
        // The poll handle leaves libuv's epoll before the socket closes.
        if let Some(poll) = self.loop_poll.take() {
            poll.close();
        }
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.shutdown();
        }
        self.bound = None;
        if let Some(wake) = self.wake.take() {
            // The accept task may hold its clone a moment longer; it must not
            // keep the process alive meanwhile.
            set_referenced(&env, &wake, false)?;
        }
        if let Some(hook) = self.cleanup.take() {
            env.remove_env_cleanup_hook(hook)?;
        }
        if let Some(path) = self.unlink_on_close.take() {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    /// A close-on-exec duplicate of `fd` (the caller owns it), or a libuv
    /// errno. Node's stream wraps are opened on duplicates of Rust-owned
    /// listening sockets, so that `server._handle` is a genuine TCPWrap or
    /// PipeWrap while the original descriptor stays with Rust.
    #[napi(catch_unwind)]
    pub fn dup(fd: i32) -> i32 {
        socket::duplicate(fd).unwrap_or_else(|code| code)
    }

    /// Closes descriptors that JavaScript received but could not wrap.
    #[napi(catch_unwind)]
    pub fn close_fds(fds: Vec<i32>) {
        for fd in fds {
            socket::close_raw(fd);
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(poll) = self.loop_poll.take() {
            poll.close();
        }
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.shutdown();
        }
    }
}

/// A socket's options as the OS reports them (see [`socket::inspect`]).
#[napi(object)]
pub struct SocketOptions {
    pub reuse_address: bool,
    pub accepting: bool,
    pub no_delay: Option<bool>,
    pub keep_alive: bool,
    pub ipv6_only: Option<bool>,
    pub close_on_exec: bool,
    pub non_blocking: bool,
}

/// Reads a socket descriptor's options, so tests can check what the OS
/// really has (SO_REUSEADDR, close-on-exec, TCP_NODELAY...). Errors are
/// thrown as `Error` with a libuv errno in the message.
#[napi(catch_unwind)]
pub fn inspect_socket(fd: i32) -> Result<SocketOptions> {
    let o = socket::inspect(fd).map_err(|code| Error::from_reason(format!("inspectSocket: errno {code}")))?;
    Ok(SocketOptions {
        reuse_address: o.reuse_address,
        accepting: o.accepting,
        no_delay: o.no_delay,
        keep_alive: o.keep_alive,
        ipv6_only: o.ipv6_only,
        close_on_exec: o.close_on_exec,
        non_blocking: o.non_blocking,
    })
}

/// The placement a server gets when none is forced, and the CPUs' worth of
/// time this process may use that it was decided from.
#[napi(object)]
pub struct AutoPlacement {
    pub placement: String,
    pub usable_cpus: f64,
}

/// How [`placement::automatic`] decided for this process.
#[napi(catch_unwind)]
pub fn auto_placement() -> AutoPlacement {
    AutoPlacement {
        placement: placement::automatic().name().to_string(),
        usable_cpus: placement::usable_cpus(),
    }
}

/// Test hook: the next accept round panics. The panic
/// must surface as an 'error' event (EIO, syscall 'accept') and the server
/// must keep serving.
#[napi]
pub fn inject_accept_panic() {
    acceptor::INJECT_PANIC.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Test hook: panics inside an exported function, which must reach
/// JavaScript as a thrown Error rather than abort the process.
#[napi(catch_unwind)]
pub fn panic_for_tests() {
    panic!("rust-net: panic_for_tests (test hook)");
}
