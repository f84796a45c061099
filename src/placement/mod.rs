//! Where a listening server accepts: on the shared tokio runtime's thread
//! ([`runtime_thread`]) or on the JavaScript thread's own event loop
//! ([`event_loop`]). Both keep the same ownership rules ([`crate::acceptor`]);
//! they differ only in who calls `accept4` and how JavaScript is told.
//!
//! The accept thread costs a cross-thread wake-up and, without a spare core,
//! a context switch per hand-off; accepting on the event loop, which
//! batches as well (TCP_INFO count), measured as fast or faster in both
//! regimes, so it is the automatic choice (bench/RESULTS.md).

pub mod event_loop;
pub mod runtime_thread;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    Runtime,
    EventLoop,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::Runtime => "runtime",
            Placement::EventLoop => "event-loop",
        }
    }

    /// `"runtime"`, `"event-loop"`, or `"auto"` (None: the automatic choice).
    pub fn parse(name: &str) -> Result<Option<Placement>, ()> {
        match name {
            "runtime" => Ok(Some(Placement::Runtime)),
            "event-loop" => Ok(Some(Placement::EventLoop)),
            "auto" => Ok(None),
            _ => Err(()),
        }
    }
}

/// The placement a server gets when none is forced: the event loop, with
/// or without a spare core. Measured on a 2-CPU machine in both regimes
/// (bench/RESULTS.md, "Accept placements"): with the server confined to one
/// CPU, and with a core to spare, accepting on the event loop served as
/// many or more connections per second at 1, 32 and 256 in flight, cost the
/// process less CPU per connection, and answered sequential connections as
/// fast or faster; the accept thread led only the median latency with 32
/// connecting at once and a spare core. So the automatic choice does not
/// depend on [`usable_cpus`]; that is reported (`autoPlacement()`) to help
/// decide when forcing the runtime placement is worth measuring.
pub fn automatic() -> Placement {
    Placement::EventLoop
}

/// How many CPUs' worth of time this process may use: the CPUs of its
/// affinity mask (`taskset`, cpusets), capped by a cgroup v2 CPU quota
/// (`cpu.max` of its cgroup or any ancestor: `docker --cpus`, Kubernetes
/// limits). The quota may be fractional (1.5 CPUs).
pub fn usable_cpus() -> f64 {
    let affinity = affinity_cpus().unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }) as f64;
    match cgroup_quota() {
        Some(quota) => affinity.min(quota),
        None => affinity,
    }
}

#[cfg(target_os = "linux")]
fn affinity_cpus() -> Option<usize> {
    // SAFETY: cpu_set_t is plain data, valid when zeroed; the kernel writes
    // at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return None;
    }
    // SAFETY: `set` was filled by the kernel.
    let count = unsafe { libc::CPU_COUNT(&set) };
    usize::try_from(count).ok().filter(|&n| n > 0)
}

#[cfg(not(target_os = "linux"))]
fn affinity_cpus() -> Option<usize> {
    None
}

/// The tightest cgroup v2 CPU quota on the way from this process's cgroup
/// to the root, in CPUs; None when there is none (or no cgroup v2).
fn cgroup_quota() -> Option<f64> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    // cgroup v2 has a single line "0::/path".
    let path = cgroups.lines().find_map(|line| line.strip_prefix("0::"))?;
    let mut dir = std::path::PathBuf::from("/sys/fs/cgroup");
    dir.push(path.trim_start_matches('/'));
    let mut tightest: Option<f64> = None;
    loop {
        if let Some(quota) = std::fs::read_to_string(dir.join("cpu.max")).ok().and_then(|s| parse_cpu_max(&s)) {
            tightest = Some(tightest.map_or(quota, |t| t.min(quota)));
        }
        if dir == std::path::Path::new("/sys/fs/cgroup") || !dir.pop() {
            break;
        }
    }
    tightest
}

/// `cpu.max` is "max 100000" (no quota) or "<quota> <period>" in µs.
pub fn parse_cpu_max(text: &str) -> Option<f64> {
    let mut parts = text.split_whitespace();
    let quota = parts.next()?;
    let period: f64 = parts.next().map_or(Some(100_000.0), |p| p.parse().ok())?;
    if quota == "max" || period <= 0.0 {
        return None;
    }
    let quota: f64 = quota.parse().ok()?;
    Some(quota / period)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max_without_quota_is_none() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
    }

    #[test]
    fn cpu_max_quota_is_cpus() {
        assert_eq!(parse_cpu_max("150000 100000\n"), Some(1.5));
        assert_eq!(parse_cpu_max("50000 100000"), Some(0.5));
        assert_eq!(parse_cpu_max("garbage"), None);
    }

    #[test]
    fn the_automatic_choice_is_the_event_loop() {
        assert_eq!(automatic(), Placement::EventLoop);
    }
}
