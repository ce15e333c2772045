//! How the kernel schedules the proxy's worker threads ([`Scheduling`]).
//!
//! A proxy's worker sleeps whenever none of its connections has anything to read, and is woken
//! by the next packet. Under Linux's normal policy (`SCHED_OTHER`) a thread that wakes takes
//! the CPU from whatever runs there at once: on a busy machine the worker then wakes for every
//! single event, handles it, sleeps again, and pays a sleep and a wake-up (about 8 µs of CPU on
//! the VM of docs/BENCHMARKS.md) per request instead of per batch of requests. Under
//! `SCHED_BATCH` (sched(7)) the woken worker waits for the running thread's turn to end
//! instead, and by then several events are ready for it. It still runs at once on an idle CPU,
//! and its share of the CPU follows its nice value as under the normal policy; what changes is
//! the wake-up (sched(7): the thread is treated as CPU-bound and "mildly disfavored" when it
//! wakes), not how much CPU it gets.
//!
//! Measured (docs/BENCHMARKS.md, "The proxy's threads under `SCHED_BATCH`"): the same binary,
//! wrk on the same 2 cores, with `SCHED_BATCH` against without: 1.09x to 1.41x the requests
//! per second at 32 connections (median 1.2x) and a p99 of 1.5 ms against 3.7 ms; 1.44x to
//! 1.61x at 1000 connections; at one connection on an idle machine the same latency. The cost:
//! when CPU-bound threads of other programs share the cores, a woken worker waits for their
//! turn to end (about a scheduler tick) where it would have preempted them: beside two busy
//! loops, at one connection, the p99 grew from 4.0 to 6.2 ms while the median fell from 87 to
//! 22 µs. That is why it is a setting ([`Scheduling::Normal`] keeps the kernel's default).
//!
//! The proxy's `unsafe` calls are here: `sched_setscheduler(2)` and `sched_getscheduler(2)`,
//! which std does not wrap. Moving between the normal and the batch policy needs no privilege
//! (checked as `nobody` with every capability dropped), and a container whose seccomp profile
//! refuses it gets a warning and the normal policy.

use std::fmt;

/// The kernel's scheduling policy for the proxy's worker threads (`--proxy-scheduling`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scheduling {
    /// `SCHED_BATCH`: a woken worker does not preempt the running thread; it runs when that
    /// thread's turn ends, or at once on an idle CPU. The default: fewer wake-ups per request
    /// under load.
    #[default]
    Batch,
    /// The kernel's default policy (`SCHED_OTHER`), as the rest of the process runs.
    Normal,
}

impl Scheduling {
    /// Every value, as `--proxy-scheduling` spells it.
    pub const NAMES: [&'static str; 2] = ["batch", "normal"];

    /// Parses `batch` or `normal`.
    pub fn parse(text: &str) -> Result<Scheduling, String> {
        match text {
            "batch" => Ok(Scheduling::Batch),
            "normal" => Ok(Scheduling::Normal),
            other => Err(format!(
                "{other:?} is not a scheduling policy for the proxy's threads; use \"batch\" (the default: fewer wake-ups under load) or \"normal\" (the kernel's default policy)"
            )),
        }
    }

    /// The name `--proxy-scheduling` takes.
    pub fn name(self) -> &'static str {
        match self {
            Scheduling::Batch => "batch",
            Scheduling::Normal => "normal",
        }
    }

    /// Puts the calling thread under this policy. [`Scheduling::Normal`] changes nothing (a
    /// new thread starts under the normal policy unless its parent was moved off it).
    pub fn apply_to_current_thread(self) -> std::io::Result<()> {
        match self {
            Scheduling::Normal => Ok(()),
            Scheduling::Batch => set_current_thread_batch(),
        }
    }

    /// The policy the calling thread runs under, when it is one of these two (`None` for
    /// another, such as a real-time policy, or where the platform has no such call).
    pub fn of_current_thread() -> Option<Scheduling> {
        current_thread_policy()
    }
}

impl fmt::Display for Scheduling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_current_thread_batch() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread (Linux schedules threads, not processes); `param`
    // is a valid `sched_param` that outlives the call; the call reads it and nothing else.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set_current_thread_batch() -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "SCHED_BATCH is a Linux scheduling policy",
    ))
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn current_thread_policy() -> Option<Scheduling> {
    // SAFETY: pid 0 is the calling thread; the call takes no pointer.
    match unsafe { libc::sched_getscheduler(0) } {
        libc::SCHED_BATCH => Some(Scheduling::Batch),
        libc::SCHED_OTHER => Some(Scheduling::Normal),
        _ => None,
    }
}

#[cfg(not(target_os = "linux"))]
fn current_thread_policy() -> Option<Scheduling> {
    None
}

#[cfg(test)]
mod tests;
