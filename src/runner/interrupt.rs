//! SIGINT and SIGTERM as requests to stop. A signal is remembered ([`received`]): the run in
//! training stops before its next batch (`train::Progress::stop_requested`), writes nothing
//! that counts as a result, releases its lease, and the command exits with the conventional
//! status, 130 or 143. A second Ctrl-C (SIGINT) ends the process at once, with status 130; a
//! repeated SIGTERM does not (a scheduler escalates to SIGKILL itself, and a worker gets one
//! SIGTERM per thread of a parent killed by SIGKILL as it is handed from thread to thread).
//!
//! `--jobs` workers run in their own process group, so a terminal's Ctrl-C reaches only the
//! parent, which passes SIGTERM on to each worker once; and each worker asks the kernel for a
//! SIGTERM should its parent die first (`prctl(PR_SET_PDEATHSIG)`), whatever ended it (a signal,
//! a panic, `kill -9`), so no worker outlives its parent.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::Context;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use signal_hook::consts::{SIGINT, SIGTERM};

/// The signal received, the latest if both came (0: none).
static RECEIVED: AtomicUsize = AtomicUsize::new(0);
/// Set by the first signal: a SIGINT then ends the process at once.
static ARMED: AtomicBool = AtomicBool::new(false);

/// Installs the handlers (once per process; later calls add nothing).
///
/// # Errors
/// The handlers cannot be registered.
pub fn install() -> anyhow::Result<()> {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    // The order matters: the shutdown checks the flag before the first signal sets it.
    signal_hook::flag::register_conditional_shutdown(SIGINT, 128 + SIGINT, &ARMED)
        .context("installing the SIGINT handler")?;
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_usize(
            signal,
            &RECEIVED,
            usize::try_from(signal).expect("a signal number"),
        )
        .and_then(|_| signal_hook::flag::register(signal, &ARMED))
        .context("installing the SIGINT and SIGTERM handlers")?;
    }
    Ok(())
}

/// The signal received, if any (SIGINT 2, SIGTERM 15; the latest if both came).
#[must_use]
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        n => i32::try_from(n).ok(),
    }
}

/// The exit status after `signal`: 128 + its number (130 for SIGINT, 143 for SIGTERM).
#[must_use]
pub fn exit_status(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(1)
}

/// In a `--jobs` worker: SIGTERM when the parent dies, and if the parent `parent` is already
/// gone (it died before this call), the same at once.
///
/// # Errors
/// The kernel refused the request.
pub fn die_with_parent(parent: u32) -> anyhow::Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).context("prctl(PR_SET_PDEATHSIG)")?;
    let parent_now = nix::unistd::getppid().as_raw();
    if i64::from(parent) != i64::from(parent_now) {
        signal::raise(Signal::SIGTERM).context("raising SIGTERM")?;
    }
    Ok(())
}

/// Sends SIGTERM to process `pid` (a worker); a process already gone is not an error.
pub fn terminate(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = signal::kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
}
