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
#[derive(Debug, Default)]
pub struct OpenFiles {
    count: usize,
}

impl OpenFiles {
    fn try_take(&mut self) -> bool {
        if self.count >= MAX_OPEN_PER_INSTANCE {
            return false;
        }
        let budget = process_budget();
        let taken = OPEN_IN_ALL_GUESTS.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < budget).then_some(n + 1)
        });
        if taken.is_err() {
            return false;
        }
        self.count += 1;
        true
    }

    fn give_back(&mut self) {
        if self.count > 0 {
            self.count -= 1;
            OPEN_IN_ALL_GUESTS.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for OpenFiles {
    fn drop(&mut self) {
        OPEN_IN_ALL_GUESTS.fetch_sub(self.count, Ordering::AcqRel);
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
                    caller.data_mut().open_files.give_back();
                    return Ok(ERRNO_FAULT);
                };
                let (bytes, state) = memory.data_and_store_mut(&mut caller);
                let mut guest = wiggle::GuestMemory::Unshared(bytes);
                let errno = wasi::path_open(
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
                .await?;
                if errno != 0 {
                    state.open_files.give_back();
                }
                Ok(errno)
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
                    state.open_files.give_back();
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
                // `to` was closed and `from` took its place: one descriptor fewer.
                if errno == 0 {
                    state.open_files.give_back();
                }
                Ok(errno)
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
