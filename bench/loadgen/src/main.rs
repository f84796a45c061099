//! rust-net's load generator: a separate process that drives the server
//! under test over loopback, plus `sink`, a trivial epoll server used to show
//! that the generator is not the bottleneck.
//!
//! Every mode is bounded in time and in count and stops by itself. Results go
//! to stdout as one line of JSON; progress lines (hold mode) start with '#'.
//!
//! Client sockets are bound to explicit source addresses 127.0.0.2–127.0.0.251
//! and source ports 20000–29999 (below the ephemeral range), rotating through
//! the 2.5 million pairs: a connection storm leaves its TIME_WAIT entries there
//! instead of filling the ephemeral ports other programs on the machine need.
//!
//! Modes (all take --host, default 127.0.0.1, and --port):
//!   churn   --concurrency C --duration S [--max N] [--send B] [--expect B] [--stamp] [--threads T]
//!           open, send B bytes, read `expect` bytes, close; C at a time.
//!           With --stamp the first 8 bytes read are the server's CLOCK_MONOTONIC
//!           nanoseconds at 'connection', giving connect → 'connection' latency.
//!           Admission options (bench/admission.js):
//!             --src-ip A [--src-ips N]  bind to A (and the N-1 addresses after it) only,
//!                                 rotating the source ports; default: 127.0.0.2–251
//!             --rate R            start at most R connections per second (all threads)
//!             --proxy-v2          prepend a fixed PROXY v2 header (PROXY, TCP over IPv4,
//!                                 203.0.113.7:51234 → 198.51.100.9:443, no TLVs) to the
//!                                 first write
//!             --expect-close      a connection is done when the server closes it
//!                                 (EOF or reset), not when `expect` bytes arrived: the
//!                                 client side of a rejected connection; `bytes_read`
//!                                 in the output counts what such closed peers still sent
//!   echo    --connections C --duration S [--block B] [--window W] [--warmup S] [--threads T]
//!           C persistent connections, each keeping up to W bytes in flight.
//!   hold    --connections N [--concurrency C] [--hold S] [--expect B]
//!           open N idle connections (each ready once it has read `expect` bytes),
//!           print '# ready', then hold them until stdin closes or S seconds pass.
//!   sink    --port P --duration S [--proto echo|stamp|http] [--threads T]
//!           a minimal epoll server speaking the benchmark protocols.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::mem;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- arguments

struct Args {
    mode: String,
    map: HashMap<String, String>,
    flags: Vec<String>,
}

impl Args {
    fn parse() -> Args {
        let mut it = std::env::args().skip(1);
        let mode = it.next().unwrap_or_default();
        let mut map = HashMap::new();
        let mut flags = Vec::new();
        let rest: Vec<String> = it.collect();
        let mut i = 0;
        while i < rest.len() {
            let key = rest[i].trim_start_matches("--").to_string();
            if i + 1 < rest.len() && !rest[i + 1].starts_with("--") {
                map.insert(key, rest[i + 1].clone());
                i += 2;
            } else {
                flags.push(key);
                i += 1;
            }
        }
        Args { mode, map, flags }
    }
    fn num(&self, key: &str, default: f64) -> f64 {
        match self.map.get(key) {
            Some(v) => v.parse().unwrap_or_else(|_| die(&format!("--{key}: not a number: {v}"))),
            None => default,
        }
    }
    fn int(&self, key: &str, default: u64) -> u64 {
        self.num(key, default as f64) as u64
    }
    fn str(&self, key: &str, default: &str) -> String {
        self.map.get(key).cloned().unwrap_or_else(|| default.to_string())
    }
    fn flag(&self, key: &str) -> bool {
        self.flags.iter().any(|f| f == key)
    }
    /// The server's port: every mode needs one.
    fn port(&self) -> u16 {
        match self.int("port", 0) as u16 {
            0 => die("--port is required"),
            port => port,
        }
    }
    /// A measuring window in seconds, bounded so no run can go on for long.
    fn duration(&self, default: f64) -> f64 {
        let duration = self.num("duration", default);
        if duration > 120.0 {
            die("--duration is capped at 120 s");
        }
        duration
    }
}

fn die(msg: &str) -> ! {
    eprintln!("loadgen: {msg}");
    std::process::exit(2);
}

// ---------------------------------------------------------------- system

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn close(fd: RawFd) {
    // SAFETY: the caller owns fd.
    unsafe { libc::close(fd) };
}

fn set_int_opt(fd: RawFd, level: i32, opt: i32, val: i32) {
    // SAFETY: valid pointer and length.
    unsafe {
        libc::setsockopt(fd, level, opt, &val as *const i32 as *const libc::c_void,
                         mem::size_of::<i32>() as libc::socklen_t)
    };
}

fn sockaddr_v4(ip: [u8; 4], port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(ip) },
        sin_zero: [0; 8],
    }
}

fn parse_ip(host: &str) -> [u8; 4] {
    let parts: Vec<u8> = host.split('.').filter_map(|p| p.parse().ok()).collect();
    if parts.len() != 4 {
        die(&format!("--host must be an IPv4 address, got {host}"));
    }
    [parts[0], parts[1], parts[2], parts[3]]
}

fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: valid out-pointer.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    lim.rlim_cur as u64
}

fn cpu_times() -> (f64, f64) {
    // SAFETY: valid out-pointer.
    let mut ru: libc::rusage = unsafe { mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_utime), t(ru.ru_stime))
}

struct Epoll {
    fd: RawFd,
    events: Vec<libc::epoll_event>,
}

impl Epoll {
    fn new() -> Epoll {
        // SAFETY: plain syscall.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            die("epoll_create1 failed");
        }
        Epoll { fd, events: vec![libc::epoll_event { events: 0, u64: 0 }; 1024] }
    }
    fn add(&self, fd: RawFd, events: u32, token: u64) -> bool {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: valid event pointer.
        unsafe { libc::epoll_ctl(self.fd, libc::EPOLL_CTL_ADD, fd, &mut ev) == 0 }
    }
    /// Waits up to `timeout_ms`; returns how many events are in `self.events`.
    fn wait(&mut self, timeout_ms: i32) -> usize {
        // SAFETY: the buffer holds events.len() entries.
        let n = unsafe {
            libc::epoll_wait(self.fd, self.events.as_mut_ptr(), self.events.len() as i32, timeout_ms)
        };
        if n < 0 { 0 } else { n as usize }
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        close(self.fd);
    }
}

// ---------------------------------------------------------------- client sockets

const SRC_PORT_BASE: u64 = 20000;
const SRC_PORTS: u64 = 10000;
const SRC_IPS: u64 = 250; // 127.0.0.2 ..= 127.0.0.251
const SRC_SPACE: u64 = SRC_PORTS * SRC_IPS;

/// Hands out (source address, source port) pairs round-robin. The start
/// depends on the clock, advancing 16 pairs per millisecond, so consecutive
/// runs do not reuse pairs still in TIME_WAIT.
struct Sources {
    next: AtomicU64,
    enabled: bool,
    collisions: AtomicU64,
    /// --src-ip: only these addresses (first, count), every source port.
    fixed: Option<([u8; 4], u64)>,
}

impl Sources {
    fn new(enabled: bool) -> Sources {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Sources { next: AtomicU64::new((ms * 16) % SRC_SPACE), enabled, collisions: AtomicU64::new(0), fixed: None }
    }
    fn take(&self) -> libc::sockaddr_in {
        if let Some((ip, count)) = self.fixed {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % (SRC_PORTS * count);
            let port = (SRC_PORT_BASE + i % SRC_PORTS) as u16;
            let last = ip[3].saturating_add((i / SRC_PORTS) as u8);
            return sockaddr_v4([ip[0], ip[1], ip[2], last], port);
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % SRC_SPACE;
        let port = (SRC_PORT_BASE + i % SRC_PORTS) as u16;
        let host = 2 + (i / SRC_PORTS) as u8;
        sockaddr_v4([127, 0, 0, host], port)
    }
}

/// A non-blocking socket whose connect to `dst` has started (0 or
/// EINPROGRESS), or the errno of the failure.
fn start_connect(dst: &libc::sockaddr_in, sources: &Sources) -> Result<RawFd, i32> {
    let len = mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    for _ in 0..32 {
        // SAFETY: plain syscall.
        let fd = unsafe {
            libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0)
        };
        if fd < 0 {
            return Err(errno());
        }
        if sources.enabled {
            set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
            let src = sources.take();
            // SAFETY: valid address and length.
            let rc = unsafe { libc::bind(fd, &src as *const _ as *const libc::sockaddr, len) };
            if rc != 0 {
                let e = errno();
                close(fd);
                if e == libc::EADDRINUSE {
                    sources.collisions.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                return Err(e);
            }
        }
        // SAFETY: valid address and length.
        let rc = unsafe { libc::connect(fd, dst as *const _ as *const libc::sockaddr, len) };
        if rc == 0 {
            return Ok(fd);
        }
        let e = errno();
        if e == libc::EINPROGRESS {
            return Ok(fd);
        }
        close(fd);
        if e == libc::EADDRNOTAVAIL || e == libc::EADDRINUSE {
            sources.collisions.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        return Err(e);
    }
    Err(libc::EADDRNOTAVAIL)
}

/// write(2), as bytes written or the errno.
fn write_fd(fd: RawFd, buf: &[u8]) -> Result<usize, i32> {
    // SAFETY: valid buffer.
    let n = unsafe { libc::write(fd, buf.as_ptr() as *const libc::c_void, buf.len()) };
    if n < 0 { Err(errno()) } else { Ok(n as usize) }
}

/// read(2), as bytes read (0 at EOF) or the errno.
fn read_fd(fd: RawFd, buf: &mut [u8]) -> Result<usize, i32> {
    // SAFETY: valid buffer.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
    if n < 0 { Err(errno()) } else { Ok(n as usize) }
}

// ---------------------------------------------------------------- statistics

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn latency_json(samples: &mut [u64]) -> String {
    samples.sort_unstable();
    let us = |ns: u64| ns as f64 / 1000.0;
    format!(
        "{{\"n\":{},\"p50_us\":{:.2},\"p90_us\":{:.2},\"p99_us\":{:.2},\"max_us\":{:.2}}}",
        samples.len(),
        us(percentile(samples, 50.0)),
        us(percentile(samples, 90.0)),
        us(percentile(samples, 99.0)),
        us(samples.last().copied().unwrap_or(0))
    )
}

// ---------------------------------------------------------------- churn

#[derive(Clone, Copy, PartialEq)]
enum St {
    Free,
    Connecting,
    Sent,
}

#[derive(Clone, Copy)]
struct Conn {
    fd: RawFd,
    st: St,
    got: usize,
    t0: u64,
    stamp: [u8; 8],
}

const FREE: Conn = Conn { fd: -1, st: St::Free, got: 0, t0: 0, stamp: [0; 8] };

struct ChurnCfg {
    dst: libc::sockaddr_in,
    conc: usize,
    send: usize,
    expect: usize,
    stamp: bool,
    deadline: Instant,
    max: u64,
    /// Connections per second for this worker (0: as fast as it can).
    rate: f64,
    /// Prepended to the first write (--proxy-v2), else empty.
    header: Vec<u8>,
    expect_close: bool,
}

/// A PROXY protocol v2 header: PROXY command, TCP over IPv4, fixed
/// addresses (documentation ranges), no TLVs — 28 bytes.
fn proxy_v2_header() -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // version 2, PROXY
    h.push(0x11); // AF_INET, STREAM
    h.extend_from_slice(&12u16.to_be_bytes());
    h.extend_from_slice(&[203, 0, 113, 7]);
    h.extend_from_slice(&[198, 51, 100, 9]);
    h.extend_from_slice(&51234u16.to_be_bytes());
    h.extend_from_slice(&443u16.to_be_bytes());
    h
}

#[derive(Default)]
struct ChurnOut {
    completed: u64,
    errors: u64,
    first_error: i32,
    lat: Vec<u64>,
    rtt: Vec<u64>,
    /// --expect-close: bytes the server sent before closing.
    bytes_read: u64,
}

const MAX_SAMPLES: usize = 2_000_000;

fn churn_worker(cfg: &ChurnCfg, sources: &Sources, started: &AtomicU64) -> ChurnOut {
    let mut out = ChurnOut::default();
    let mut ep = Epoll::new();
    let mut conns = vec![FREE; cfg.conc];
    let mut free: Vec<usize> = (0..cfg.conc).rev().collect();
    let mut payload = cfg.header.clone();
    payload.extend(std::iter::repeat(b'x').take(cfg.send));
    let first = payload.len();
    let mut buf = vec![0u8; 65536];
    let mut active = 0usize;
    let mut stopping = false;
    let interval = if cfg.rate > 0.0 { Duration::from_secs_f64(1.0 / cfg.rate) } else { Duration::ZERO };
    let mut next_start = Instant::now();

    loop {
        if !stopping && Instant::now() >= cfg.deadline {
            stopping = true;
        }
        // Top up to the configured concurrency.
        while !stopping && !free.is_empty() {
            if cfg.rate > 0.0 {
                let now = Instant::now();
                if now < next_start {
                    break;
                }
                // Behind by more than a second (a stall): do not burst to catch up.
                next_start = (next_start + interval).max(now - Duration::from_secs(1));
            }
            if started.fetch_add(1, Ordering::Relaxed) >= cfg.max {
                stopping = true;
                break;
            }
            let slot = free.pop().unwrap_or(0);
            let t0 = now_ns();
            match start_connect(&cfg.dst, sources) {
                Ok(fd) => {
                    let mut c = Conn { fd, st: St::Connecting, got: 0, t0, stamp: [0; 8] };
                    // Optimistic: on loopback the handshake is often done already.
                    if first == 0 {
                        c.st = St::Sent;
                    } else if let Ok(n) = write_fd(fd, &payload[..first]) {
                        if n == first {
                            c.st = St::Sent;
                        }
                    }
                    conns[slot] = c;
                    if !ep.add(fd, (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLET) as u32, slot as u64) {
                        out.errors += 1;
                        close(fd);
                        conns[slot] = FREE;
                        free.push(slot);
                        continue;
                    }
                    active += 1;
                }
                Err(e) => {
                    out.errors += 1;
                    if out.first_error == 0 {
                        out.first_error = e;
                    }
                    free.push(slot);
                    // Do not spin on a persistent failure.
                    thread::sleep(Duration::from_millis(1));
                    break;
                }
            }
        }
        if stopping && active == 0 {
            break;
        }
        if stopping && Instant::now() >= cfg.deadline {
            // In-flight connections at the deadline are abandoned, not counted.
            for c in conns.iter_mut() {
                if c.st != St::Free {
                    close(c.fd);
                    *c = FREE;
                }
            }
            break;
        }
        let mut timeout = cfg.deadline.saturating_duration_since(Instant::now()).as_millis().min(50) as i32;
        if cfg.rate > 0.0 && !stopping && !free.is_empty() {
            // Wake for the next paced start (rounded up to the next millisecond).
            let until = next_start.saturating_duration_since(Instant::now());
            timeout = timeout.min(until.as_micros().div_ceil(1000) as i32);
        }
        let n = if cfg.rate > 0.0 { ep.wait(timeout.max(0)) } else { ep.wait(timeout.max(1)) };
        for i in 0..n {
            let ev = ep.events[i];
            let slot = ev.u64 as usize;
            let flags = ev.events;
            let mut c = conns[slot];
            if c.st == St::Free {
                continue;
            }
            let mut done = false;
            let mut failed = 0;
            if c.st == St::Connecting && flags & (libc::EPOLLOUT as u32) != 0 {
                match write_fd(c.fd, &payload[..first]) {
                    Ok(n) if n == first => c.st = St::Sent,
                    Ok(_) => failed = libc::EIO,
                    Err(libc::EAGAIN) => {}
                    Err(e) => failed = e,
                }
            }
            if failed == 0 && c.st == St::Sent && flags & (libc::EPOLLIN as u32 | libc::EPOLLHUP as u32 | libc::EPOLLERR as u32) != 0 {
                loop {
                    match read_fd(c.fd, &mut buf) {
                        Ok(0) => {
                            if cfg.expect_close {
                                out.bytes_read += c.got as u64;
                                done = true;
                            } else if c.got < cfg.expect {
                                failed = libc::ECONNRESET;
                            }
                            break;
                        }
                        Ok(n) => {
                            if cfg.stamp {
                                for (k, b) in buf[..n].iter().enumerate() {
                                    if c.got + k < 8 {
                                        c.stamp[c.got + k] = *b;
                                    }
                                }
                            }
                            c.got += n;
                            if !cfg.expect_close && c.got >= cfg.expect {
                                done = true;
                                break;
                            }
                        }
                        Err(libc::EAGAIN) => break,
                        Err(libc::ECONNRESET) if cfg.expect_close => {
                            out.bytes_read += c.got as u64;
                            done = true;
                            break;
                        }
                        Err(e) => {
                            failed = e;
                            break;
                        }
                    }
                }
            } else if failed == 0 && cfg.expect_close && c.st == St::Connecting &&
                flags & (libc::EPOLLHUP as u32 | libc::EPOLLERR as u32) != 0 {
                // Closed (reset) by the server before the first write went out.
                done = true;
            } else if failed == 0 && flags & (libc::EPOLLERR as u32) != 0 {
                failed = libc::ECONNREFUSED;
            }
            if done {
                let t1 = now_ns();
                if out.rtt.len() < MAX_SAMPLES {
                    out.rtt.push(t1.saturating_sub(c.t0));
                    if cfg.stamp {
                        let server = u64::from_le_bytes(c.stamp);
                        out.lat.push(server.saturating_sub(c.t0));
                    }
                }
                if Instant::now() <= cfg.deadline {
                    out.completed += 1;
                }
            }
            if failed != 0 {
                out.errors += 1;
                if out.first_error == 0 {
                    out.first_error = failed;
                }
            }
            if done || failed != 0 {
                close(c.fd);
                conns[slot] = FREE;
                free.push(slot);
                active -= 1;
            } else {
                conns[slot] = c;
            }
        }
    }
    out
}

fn churn(args: &Args) {
    let host = parse_ip(&args.str("host", "127.0.0.1"));
    let port = args.port();
    let conc = args.int("concurrency", 32).max(1) as usize;
    let threads = args.int("threads", 1).clamp(1, 64) as usize;
    let duration = args.duration(3.0);
    let max = args.int("max", 10_000_000);
    let stamp = args.flag("stamp");
    let send = args.int("send", if stamp { 0 } else { 1 }) as usize;
    let expect = args.int("expect", if stamp { 8 } else { 1 }) as usize;
    let rate = args.num("rate", 0.0).max(0.0);
    let header = if args.flag("proxy-v2") { proxy_v2_header() } else { Vec::new() };
    let expect_close = args.flag("expect-close");
    raise_nofile();
    let mut src = Sources::new(!args.flag("ephemeral"));
    if let Some(ip) = args.map.get("src-ip") {
        let count = args.int("src-ips", 1).clamp(1, 250);
        src.fixed = Some((parse_ip(ip), count));
    }
    let sources = Arc::new(src);
    let started = Arc::new(AtomicU64::new(0));
    let begin = Instant::now();
    let deadline = begin + Duration::from_secs_f64(duration);
    let (u0, s0) = cpu_times();
    let mut handles = Vec::new();
    for t in 0..threads {
        let per = conc / threads + usize::from(t < conc % threads);
        if per == 0 {
            continue;
        }
        let cfg = ChurnCfg {
            dst: sockaddr_v4(host, port), conc: per, send, expect, stamp, deadline, max,
            rate: rate * per as f64 / conc as f64, header: header.clone(), expect_close,
        };
        let sources = Arc::clone(&sources);
        let started = Arc::clone(&started);
        handles.push(thread::spawn(move || churn_worker(&cfg, &sources, &started)));
    }
    let mut total = ChurnOut::default();
    for h in handles {
        let o = h.join().unwrap_or_default();
        total.completed += o.completed;
        total.errors += o.errors;
        total.bytes_read += o.bytes_read;
        if total.first_error == 0 {
            total.first_error = o.first_error;
        }
        total.lat.extend(o.lat);
        total.rtt.extend(o.rtt);
    }
    // The run ends at the deadline, or earlier once --max connections are done.
    let elapsed = begin.elapsed().as_secs_f64().min(duration).max(1e-6);
    let (u1, s1) = cpu_times();
    println!(
        "{{\"mode\":\"churn\",\"concurrency\":{conc},\"threads\":{threads},\"completed\":{},\"errors\":{},\"first_error\":{},\"collisions\":{},\"bytes_read\":{},\"elapsed_s\":{:.4},\"rate\":{:.1},\"cpu_user_s\":{:.4},\"cpu_sys_s\":{:.4},\"rtt\":{},\"latency\":{}}}",
        total.completed,
        total.errors,
        total.first_error,
        sources.collisions.load(Ordering::Relaxed),
        total.bytes_read,
        elapsed,
        total.completed as f64 / elapsed,
        u1 - u0,
        s1 - s0,
        latency_json(&mut total.rtt),
        latency_json(&mut total.lat)
    );
}

// ---------------------------------------------------------------- echo

struct EchoConn {
    fd: RawFd,
    sent: u64,
    recv: u64,
}

fn echo_worker(dst: libc::sockaddr_in, n: usize, block: usize, window: u64,
               warm: Instant, deadline: Instant, sources: &Sources) -> (u64, u64, u64) {
    let mut ep = Epoll::new();
    let mut conns: Vec<EchoConn> = Vec::new();
    let mut errors = 0;
    for i in 0..n {
        match start_connect(&dst, sources) {
            Ok(fd) => {
                set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
                ep.add(fd, (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLET) as u32, i as u64);
                conns.push(EchoConn { fd, sent: 0, recv: 0 });
            }
            Err(_) => errors += 1,
        }
    }
    let data = vec![b'e'; block];
    let mut buf = vec![0u8; 256 * 1024];
    let mut at_warm: Option<u64> = None;
    let mut total: u64 = 0;
    loop {
        let now = Instant::now();
        if at_warm.is_none() && now >= warm {
            at_warm = Some(total);
        }
        if now >= deadline {
            break;
        }
        let timeout = deadline.saturating_duration_since(now).as_millis().min(50) as i32;
        let k = ep.wait(timeout.max(1));
        for i in 0..k {
            let ev = ep.events[i];
            let Some(c) = conns.get_mut(ev.u64 as usize) else { continue };
            if c.fd < 0 {
                continue;
            }
            let mut dead = ev.events & (libc::EPOLLERR as u32) != 0;
            // Drain what came back, then refill the window.
            loop {
                match read_fd(c.fd, &mut buf) {
                    Ok(0) => {
                        dead = true;
                        break;
                    }
                    Ok(r) => {
                        c.recv += r as u64;
                        total += r as u64;
                    }
                    Err(libc::EAGAIN) => break,
                    Err(_) => {
                        dead = true;
                        break;
                    }
                }
            }
            while !dead && c.sent - c.recv < window {
                let want = ((window - (c.sent - c.recv)) as usize).min(block);
                match write_fd(c.fd, &data[..want]) {
                    Ok(w) => c.sent += w as u64,
                    Err(libc::EAGAIN) => break,
                    Err(_) => {
                        dead = true;
                        break;
                    }
                }
            }
            if dead {
                errors += 1;
                close(c.fd);
                c.fd = -1;
            }
        }
    }
    for c in &conns {
        if c.fd >= 0 {
            close(c.fd);
        }
    }
    let base = at_warm.unwrap_or(0);
    (total - base, total, errors)
}

fn echo(args: &Args) {
    let host = parse_ip(&args.str("host", "127.0.0.1"));
    let port = args.port();
    let conns = args.int("connections", 1).max(1) as usize;
    let threads = args.int("threads", 1).clamp(1, 64) as usize;
    let duration = args.duration(3.0);
    let warmup = args.num("warmup", 0.5);
    let block = args.int("block", 65536).max(1) as usize;
    let window = args.int("window", 262144).max(1);
    raise_nofile();
    let sources = Arc::new(Sources::new(!args.flag("ephemeral")));
    let begin = Instant::now();
    let warm = begin + Duration::from_secs_f64(warmup);
    let deadline = warm + Duration::from_secs_f64(duration);
    let (u0, s0) = cpu_times();
    let mut handles = Vec::new();
    for t in 0..threads {
        let per = conns / threads + usize::from(t < conns % threads);
        if per == 0 {
            continue;
        }
        let sources = Arc::clone(&sources);
        let dst = sockaddr_v4(host, port);
        handles.push(thread::spawn(move || echo_worker(dst, per, block, window, warm, deadline, &sources)));
    }
    let (mut measured, mut all, mut errors) = (0, 0, 0);
    for h in handles {
        let (m, a, e) = h.join().unwrap_or((0, 0, 1));
        measured += m;
        all += a;
        errors += e;
    }
    let (u1, s1) = cpu_times();
    println!(
        "{{\"mode\":\"echo\",\"connections\":{conns},\"threads\":{threads},\"bytes\":{measured},\"bytes_all\":{all},\"errors\":{errors},\"elapsed_s\":{duration:.4},\"mb_per_s\":{:.2},\"cpu_user_s\":{:.4},\"cpu_sys_s\":{:.4}}}",
        measured as f64 / duration / 1e6,
        u1 - u0,
        s1 - s0
    );
}

// ---------------------------------------------------------------- hold

/// Blocks until stdin reaches end of file (the harness closed it: it is done
/// measuring) or `seconds` pass, whichever comes first.
fn wait_for_stdin_close(seconds: f64) {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut stdin = io::stdin();
        while let Ok(r) = stdin.read(&mut buf) {
            if r == 0 {
                break;
            }
        }
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_secs_f64(seconds));
}

fn hold(args: &Args) {
    let host = parse_ip(&args.str("host", "127.0.0.1"));
    let port = args.port();
    let n = args.int("connections", 10000) as usize;
    let conc = args.int("concurrency", 256).max(1) as usize;
    let expect = args.int("expect", 1) as usize;
    let hold_s = args.num("hold", 60.0).min(600.0);
    let open_timeout = args.num("timeout", 60.0);
    let limit = raise_nofile();
    if (limit as usize) < n + 64 {
        die(&format!("RLIMIT_NOFILE is {limit}, too low for {n} connections"));
    }
    let dst = sockaddr_v4(host, port);
    let sources = Sources::new(!args.flag("ephemeral"));
    let mut ep = Epoll::new();
    // fd, bytes read so far (usize::MAX once ready)
    let mut conns: Vec<(RawFd, usize)> = Vec::with_capacity(n);
    let mut pending = 0usize;
    let mut ready = 0usize;
    let mut errors = 0u64;
    let mut buf = [0u8; 256];
    let begin = Instant::now();
    let give_up = begin + Duration::from_secs_f64(open_timeout);
    while ready + (errors as usize) < n && Instant::now() < give_up {
        while conns.len() < n && pending < conc {
            match start_connect(&dst, &sources) {
                Ok(fd) => {
                    let idx = conns.len();
                    ep.add(fd, (libc::EPOLLIN | libc::EPOLLET) as u32, idx as u64);
                    conns.push((fd, if expect == 0 { usize::MAX } else { 0 }));
                    if expect == 0 {
                        ready += 1;
                    } else {
                        pending += 1;
                    }
                }
                Err(_) => {
                    errors += 1;
                    conns.push((-1, usize::MAX));
                }
            }
        }
        let k = ep.wait(20);
        for i in 0..k {
            let idx = ep.events[i].u64 as usize;
            let (fd, got) = conns[idx];
            if fd < 0 || got == usize::MAX {
                continue;
            }
            match read_fd(fd, &mut buf) {
                Ok(0) | Err(libc::ECONNRESET) => {
                    errors += 1;
                    pending -= 1;
                    close(fd);
                    conns[idx] = (-1, usize::MAX);
                }
                Ok(r) => {
                    if got + r >= expect {
                        conns[idx].1 = usize::MAX;
                        ready += 1;
                        pending -= 1;
                    } else {
                        conns[idx].1 = got + r;
                    }
                }
                Err(_) => {}
            }
        }
    }
    let open_s = begin.elapsed().as_secs_f64();
    println!("# ready {ready} errors {errors} open_s {open_s:.3}");
    let _ = io::stdout().flush();
    // Hold until stdin closes (the harness is done measuring) or time is up.
    wait_for_stdin_close(hold_s);
    for (fd, _) in &conns {
        if *fd >= 0 {
            close(*fd);
        }
    }
    println!("{{\"mode\":\"hold\",\"connections\":{n},\"ready\":{ready},\"errors\":{errors},\"open_s\":{open_s:.4},\"collisions\":{}}}",
             sources.collisions.load(Ordering::Relaxed));
}

// ---------------------------------------------------------------- sink

#[derive(Clone, Copy, PartialEq)]
enum Proto {
    Echo,
    Stamp,
    Http,
}

struct SinkConn {
    fd: RawFd,
    /// Bytes read but not yet echoed back (echo), or the tail of the
    /// request stream (http).
    pending: Vec<u8>,
    close_after: bool,
}

const HTTP_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world\n";
const HTTP_RESPONSE_CLOSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\nhello world\n";

fn sink_worker(port: u16, proto: Proto, stop: &AtomicBool, accepted: &AtomicU64) {
    // SAFETY: plain syscalls on a descriptor we own.
    let lfd = unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0)
    };
    set_int_opt(lfd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1);
    set_int_opt(lfd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1);
    let addr = sockaddr_v4([127, 0, 0, 1], port);
    // SAFETY: valid address and length.
    let rc = unsafe {
        libc::bind(lfd, &addr as *const _ as *const libc::sockaddr, mem::size_of::<libc::sockaddr_in>() as u32)
    };
    // SAFETY: plain syscall.
    if rc != 0 || unsafe { libc::listen(lfd, 511) } != 0 {
        die(&format!("sink: cannot listen on port {port}: errno {}", errno()));
    }
    let mut ep = Epoll::new();
    const LISTENER: u64 = u64::MAX;
    ep.add(lfd, libc::EPOLLIN as u32, LISTENER);
    let mut conns: HashMap<u64, SinkConn> = HashMap::new();
    let mut buf = vec![0u8; 256 * 1024];
    while !stop.load(Ordering::Relaxed) {
        let k = ep.wait(50);
        for i in 0..k {
            let token = ep.events[i].u64;
            if token == LISTENER {
                loop {
                    // SAFETY: null address pointers are allowed.
                    let fd = unsafe {
                        libc::accept4(lfd, std::ptr::null_mut(), std::ptr::null_mut(),
                                      libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
                    };
                    if fd < 0 {
                        break;
                    }
                    accepted.fetch_add(1, Ordering::Relaxed);
                    if proto == Proto::Stamp {
                        let _ = write_fd(fd, &now_ns().to_le_bytes());
                    }
                    ep.add(fd, (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLET) as u32, fd as u64);
                    conns.insert(fd as u64, SinkConn { fd, pending: Vec::new(), close_after: false });
                }
                continue;
            }
            let Some(c) = conns.get_mut(&token) else { continue };
            let mut dead = false;
            // Flush what is pending first.
            if proto != Proto::Http && !c.pending.is_empty() {
                match write_fd(c.fd, &c.pending) {
                    Ok(w) => {
                        c.pending.drain(..w);
                    }
                    Err(libc::EAGAIN) => {}
                    Err(_) => dead = true,
                }
            }
            while !dead && (proto == Proto::Http || c.pending.is_empty()) {
                match read_fd(c.fd, &mut buf) {
                    Ok(0) => {
                        dead = true;
                    }
                    Ok(r) => match proto {
                        Proto::Echo | Proto::Stamp => match write_fd(c.fd, &buf[..r]) {
                            Ok(w) if w == r => {}
                            Ok(w) => c.pending.extend_from_slice(&buf[w..r]),
                            Err(libc::EAGAIN) => c.pending.extend_from_slice(&buf[..r]),
                            Err(_) => dead = true,
                        },
                        Proto::Http => {
                            c.pending.extend_from_slice(&buf[..r]);
                            while let Some(end) = find(&c.pending, b"\r\n\r\n") {
                                let head = &c.pending[..end];
                                let close_req = contains_ci(head, b"connection: close");
                                let resp = if close_req { HTTP_RESPONSE_CLOSE } else { HTTP_RESPONSE };
                                if write_fd(c.fd, resp).is_err() {
                                    dead = true;
                                }
                                c.pending.drain(..end + 4);
                                if close_req {
                                    c.close_after = true;
                                    break;
                                }
                            }
                            if c.close_after {
                                dead = true;
                            }
                        }
                    },
                    Err(libc::EAGAIN) => break,
                    Err(_) => dead = true,
                }
            }
            if dead {
                close(c.fd);
                conns.remove(&token);
            }
        }
    }
    for c in conns.values() {
        close(c.fd);
    }
    close(lfd);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

fn sink(args: &Args) {
    let port = args.port();
    let duration = args.num("duration", 30.0).min(600.0);
    let threads = args.int("threads", 1).clamp(1, 16) as usize;
    let proto = match args.str("proto", "echo").as_str() {
        "echo" => Proto::Echo,
        "stamp" => Proto::Stamp,
        "http" => Proto::Http,
        other => die(&format!("sink: unknown --proto {other}")),
    };
    raise_nofile();
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..threads {
        let stop = Arc::clone(&stop);
        let accepted = Arc::clone(&accepted);
        handles.push(thread::spawn(move || sink_worker(port, proto, &stop, &accepted)));
    }
    println!("# listening {port}");
    let _ = io::stdout().flush();
    // Runs until stdin closes or the duration is up.
    wait_for_stdin_close(duration);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let (u, s) = cpu_times();
    println!("{{\"mode\":\"sink\",\"accepted\":{},\"cpu_user_s\":{u:.4},\"cpu_sys_s\":{s:.4}}}",
             accepted.load(Ordering::Relaxed));
}

fn main() {
    let args = Args::parse();
    match args.mode.as_str() {
        "churn" => churn(&args),
        "echo" => echo(&args),
        "hold" => hold(&args),
        "sink" => sink(&args),
        _ => die("usage: loadgen churn|echo|hold|sink [--options] (see the comment at the top of src/main.rs)"),
    }
}
