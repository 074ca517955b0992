//! Open files: WASI's `path_open`, `fd_close` and `fd_renumber`, counted.
//!
//! Every file a guest opens in its read-only stdlib is a real descriptor of the host process,
//! and the process has a fixed number of them (often 1,024, here 20,000): a guest opening files
//! in a loop could leave the server unable to accept a connection or reach PostgreSQL. So each
//! instance may hold [`MAX_OPEN_PER_INSTANCE`] at once, and all guests together half of the
//! process's limit; past either, `path_open` fails with `EMFILE`, which Python raises as
//! `OSError` in the guest alone. These wrappers shadow wasmtime-wasi's definitions and call
//! them for the work itself.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmtime::{Caller, Extern, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as wasi;

use super::HostState;

/// Files one instance may hold open at once (CPython needs a handful).
pub const MAX_OPEN_PER_INSTANCE: usize = 64;

/// WASI's `EMFILE`.
const ERRNO_MFILE: i32 = 33;
/// WASI's `EFAULT`: the guest exports no memory to read the path from.
const ERRNO_FAULT: i32 = 21;

/// Files open in all guests, against a budget of half the process's descriptor limit.
static OPEN_IN_ALL_GUESTS: AtomicUsize = AtomicUsize::new(0);

fn process_budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        (limit / 2).min(1 << 20) as usize
    })
}

/// The files one instance holds; given back to the process budget when the instance goes.
///
/// Only the descriptors `path_open` made are counted, by number: closing stdio or the stdlib
/// preopen (which nobody counted) gives nothing back, so a guest cannot raise its own budget.
#[derive(Debug, Default)]
pub struct OpenFiles {
    counted: std::collections::HashSet<u32>,
    /// Budget taken for a `path_open` in progress, not yet tied to a descriptor.
    reserved: bool,
}

impl OpenFiles {
    /// Descriptors counted against the budget.
    pub fn count(&self) -> usize {
        self.counted.len() + usize::from(self.reserved)
    }

    /// Takes one unit of budget for a `path_open` about to run.
    fn try_take(&mut self) -> bool {
        if self.reserved || self.count() >= MAX_OPEN_PER_INSTANCE {
            return false;
        }
        let budget = process_budget();
        let taken = OPEN_IN_ALL_GUESTS.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < budget).then_some(n + 1)
        });
        if taken.is_err() {
            return false;
        }
        self.reserved = true;
        true
    }

    /// The reserved unit now belongs to descriptor `fd`.
    fn opened(&mut self, fd: u32) {
        if std::mem::take(&mut self.reserved) && !self.counted.insert(fd) {
            // Counted already (cannot happen: WASI hands out free numbers only).
            OPEN_IN_ALL_GUESTS.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The `path_open` failed: the reserved unit goes back.
    fn cancel(&mut self) {
        if std::mem::take(&mut self.reserved) {
            OPEN_IN_ALL_GUESTS.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Descriptor `fd` was closed: its unit goes back if it had one.
    fn closed(&mut self, fd: u32) {
        if self.counted.remove(&fd) {
            OPEN_IN_ALL_GUESTS.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// `from` now has the number `to` (and what `to` held was closed).
    fn renumbered(&mut self, from: u32, to: u32) {
        if from == to {
            return;
        }
        self.closed(to);
        if self.counted.remove(&from) {
            self.counted.insert(to);
        }
    }
}

impl Drop for OpenFiles {
    fn drop(&mut self) {
        OPEN_IN_ALL_GUESTS.fetch_sub(self.count(), Ordering::AcqRel);
    }
}

/// Shadows the WASI calls that open and close descriptors with counted versions.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap_async(
        "wasi_snapshot_preview1",
        "path_open",
        |mut caller: Caller<'_, HostState>,
         (fd, dirflags, path, path_len, oflags, base, inheriting, fdflags, opened): (
            i32,
            i32,
            i32,
            i32,
            i32,
            i64,
            i64,
            i32,
            i32,
        )| {
            Box::new(async move {
                // The guest's fault: too many files open. Refused before any work is done.
                if !caller.data_mut().open_files.try_take() {
                    return Ok(ERRNO_MFILE);
                }
                let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
                    caller.data_mut().open_files.cancel();
                    return Ok(ERRNO_FAULT);
                };
                let (bytes, state) = memory.data_and_store_mut(&mut caller);
                let mut guest = wiggle::GuestMemory::Unshared(bytes);
                let result = wasi::path_open(
                    &mut state.wasi,
                    &mut guest,
                    fd,
                    dirflags,
                    path,
                    path_len,
                    oflags,
                    base,
                    inheriting,
                    fdflags,
                    opened,
                )
                .await;
                let (bytes, state) = memory.data_and_store_mut(&mut caller);
                // The new descriptor's number, where WASI just wrote it (bounds-checked).
                let new_fd = (opened as u32 as usize)
                    .checked_add(4)
                    .and_then(|end| bytes.get(end - 4..end))
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                match (&result, new_fd) {
                    (Ok(0), Some(new_fd)) => state.open_files.opened(new_fd),
                    _ => state.open_files.cancel(),
                }
                result
            })
        },
    )?;
    linker.func_wrap_async(
        "wasi_snapshot_preview1",
        "fd_close",
        |mut caller: Caller<'_, HostState>, (fd,): (i32,)| {
            Box::new(async move {
                let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
                    return Ok(ERRNO_FAULT);
                };
                let (bytes, state) = memory.data_and_store_mut(&mut caller);
                let mut guest = wiggle::GuestMemory::Unshared(bytes);
                let errno = wasi::fd_close(&mut state.wasi, &mut guest, fd).await?;
                if errno == 0 {
                    state.open_files.closed(fd as u32);
                }
                Ok(errno)
            })
        },
    )?;
    linker.func_wrap_async(
        "wasi_snapshot_preview1",
        "fd_renumber",
        |mut caller: Caller<'_, HostState>, (from, to): (i32, i32)| {
            Box::new(async move {
                let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
                    return Ok(ERRNO_FAULT);
                };
                let (bytes, state) = memory.data_and_store_mut(&mut caller);
                let mut guest = wiggle::GuestMemory::Unshared(bytes);
                let errno = wasi::fd_renumber(&mut state.wasi, &mut guest, from, to).await?;
                // `to` was closed and `from` took its number (nothing, if they are the same).
                if errno == 0 {
                    state.open_files.renumbered(from as u32, to as u32);
                }
                Ok(errno)
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_counted_descriptors_give_budget_back() {
        let mut files = OpenFiles::default();
        // Closing stdio or the preopen, or renumbering a descriptor onto itself, gives nothing.
        for fd in [0, 1, 2, 3] {
            files.closed(fd);
        }
        for fd in 4..4 + MAX_OPEN_PER_INSTANCE as u32 {
            assert!(files.try_take());
            files.opened(fd);
        }
        assert!(!files.try_take(), "the 65th open is refused");
        files.renumbered(10, 10);
        assert_eq!(files.count(), MAX_OPEN_PER_INSTANCE);
        // Moving a counted descriptor onto another counted one closes the latter.
        files.renumbered(10, 11);
        assert_eq!(files.count(), MAX_OPEN_PER_INSTANCE - 1);
        files.closed(11);
        assert_eq!(files.count(), MAX_OPEN_PER_INSTANCE - 2);
        assert!(files.try_take());
        files.cancel();
        assert_eq!(files.count(), MAX_OPEN_PER_INSTANCE - 2);
    }
}
