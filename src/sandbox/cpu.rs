//! One instance's CPU: its turn at a core ([`CpuScheduler`]) and the meter of the CPU limit.
//!
//! An instance holds a turn for all of its CPU work: instantiation, guest code, the host's side
//! of quick host calls, and the memory reset when it is dropped. The sandbox gives it one
//! before it works ([`GuestCpu::hold`]); the store's call hook lends it during host calls, so
//! a guest sleeping or waiting on its database holds no core, and takes one back (the same, if
//! nobody needed it) when guest code resumes. The epoch callback charges the time since the
//! guest last got going, stops it past its budget, and hands the turn over when someone is
//! waiting. The meter counts time spent holding a turn, which with
//! one turn per core is the guest's CPU time; time waiting, blocked in host calls or
//! preempted by the scheduler is never charged.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use wasmtime::{CallHook, CallHookHandler, Store, StoreContextMut, UpdateDeadline};

use super::engine::EPOCH_TICK;
use super::scheduler::{CpuScheduler, Turn};
use crate::host::HostState;

/// The CPU side of one instance; shared by its store's call hook and epoch callback.
pub(crate) struct GuestCpu {
    scheduler: Arc<CpuScheduler>,
    tenant: Arc<str>,
    account: Mutex<Account>,
}

#[derive(Default)]
struct Account {
    /// The instance's turn (lent while the guest is in a host call).
    turn: Option<Turn>,
    /// When the instance got its current turn: a full tick on it is a full time slice.
    turn_since: Option<Instant>,
    /// When the guest last started running on its turn; `None` while it is not running.
    since: Option<Instant>,
    used: Duration,
    budget: Duration,
}

impl GuestCpu {
    /// Installs the scheduling hooks on `store`, for a guest of `tenant`.
    pub fn install(
        store: &mut Store<HostState>,
        scheduler: Arc<CpuScheduler>,
        tenant: Arc<str>,
    ) -> Arc<Self> {
        let cpu = Arc::new(GuestCpu {
            scheduler,
            tenant,
            account: Mutex::default(),
        });
        store.call_hook_async(TurnHook(cpu.clone()));
        let ticking = cpu.clone();
        store.epoch_deadline_callback(move |_| Ok(ticking.clone().on_tick()));
        // Checked once per tick (or when the scheduler preempts).
        store.set_epoch_deadline(1);
        cpu
    }

    /// Gives the instance a turn (taken by the sandbox before it starts working for a call).
    pub fn hold(&self, turn: Turn) {
        let previous = {
            let mut account = self.account();
            account.turn_since = Some(Instant::now());
            account.turn.replace(turn)
        };
        drop(previous);
    }

    /// Gives the turn back.
    pub fn release(&self) {
        let released = {
            let mut account = self.account();
            account.charge();
            account.since = None;
            account.turn.take()
        };
        drop(released);
    }

    /// Offers the lent turn to a waiter at once: the guest is in a host call that waits on
    /// I/O.
    pub fn offer(&self) {
        if let Some(turn) = &self.account().turn {
            turn.offer();
        }
    }

    /// Starts a call with a fresh budget of `limit`.
    pub fn arm(&self, limit: Duration) {
        let mut account = self.account();
        account.used = Duration::ZERO;
        account.budget = limit;
    }

    fn account(&self) -> MutexGuard<'_, Account> {
        self.account
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes its lent turn back, or a new one, and starts the clock.
    async fn run(&self) {
        let lost = {
            let mut account = self.account();
            match &account.turn {
                Some(turn) if turn.reclaim() => None,
                // Taken by a waiter while lent (or given up at a tick): gone.
                _ => Some(account.turn.take()),
            }
        };
        if let Some(lost) = lost {
            drop(lost);
            let turn = self.scheduler.acquire(&self.tenant).await;
            let mut account = self.account();
            account.turn = Some(turn);
            account.turn_since = Some(Instant::now());
        }
        self.account().since = Some(Instant::now());
    }

    /// Stops the clock; during a host call, lends the turn too (returning from guest code, the
    /// instance keeps it for the host's work that follows).
    fn stop(&self, hook: CallHook) {
        let mut account = self.account();
        account.charge();
        account.since = None;
        if matches!(hook, CallHook::CallingHost)
            && let Some(turn) = &account.turn
        {
            turn.lend();
        }
    }

    /// The epoch callback. wasmtime runs it as a host call, so the call hook has just lent the
    /// turn: handing over means giving up the lent turn.
    fn on_tick(self: Arc<Self>) -> UpdateDeadline {
        let released = {
            let mut account = self.account();
            account.charge();
            if account.used >= account.budget {
                return UpdateDeadline::Interrupt;
            }
            // The turn goes to a waiter once the guest has had a full time slice, or at once
            // if its tenant holds two turns more than a waiting one (a newcomer's preemption).
            // Otherwise, yielding once a tick keeps a busy guest from holding an executor
            // thread; the scheduler's own callback (a preemption for someone else, or the
            // first check after idling) must not cost the guest its turn.
            let slice_used = account
                .turn_since
                .is_some_and(|since| since.elapsed() >= EPOCH_TICK);
            if !self.scheduler.contended()
                || !(slice_used || self.scheduler.outnumbers_a_waiter(&self.tenant))
            {
                return UpdateDeadline::Yield(1);
            }
            account.since = None;
            account.turn.take()
        };
        drop(released);
        UpdateDeadline::YieldCustom(1, Box::pin(async move { self.run().await }))
    }
}

impl Account {
    fn charge(&mut self) {
        if let Some(since) = self.since {
            let now = Instant::now();
            self.used += now - since;
            self.since = Some(now);
        }
    }
}

/// The store's call hook: a turn while guest code runs, none while the host does.
struct TurnHook(Arc<GuestCpu>);

impl CallHookHandler<HostState> for TurnHook {
    fn handle_call_event<'life0, 'life1, 'async_trait>(
        &'life0 self,
        _store: StoreContextMut<'life1, HostState>,
        hook: CallHook,
    ) -> Pin<Box<dyn Future<Output = wasmtime::Result<()>> + Send + 'async_trait>>
    where
        Self: 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
    {
        let cpu = self.0.clone();
        Box::pin(async move {
            if hook.entering_host() {
                cpu.stop(hook);
            } else {
                cpu.run().await;
            }
            Ok(())
        })
    }
}
