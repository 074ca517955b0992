//! Fair turns at running guest code.
//!
//! A fixed number of guests execute wasm at once (one per core the sandbox may use). When more
//! want to, the next turn goes to the waiting tenant that holds the fewest turns, round-robin
//! among equals, so a tenant with a hundred requests in flight and a tenant with one get the
//! same share of the cores. A guest gives its turn back when its instance is done and, while
//! others wait, at every epoch tick (`cpu.rs`). During a host call it lends its turn:
//! once the call has lasted into the next tick, a waiter may take it (the guest sleeps or
//! waits on its database, so it needs no core); a quick call (a clock read, a write to the
//! captured stdout) takes it back with one atomic operation, and nothing is handed over. A
//! host call that waits on I/O (the tenant's database) offers its turn at once instead
//! ([`Turn::offer`]): with guests waiting on their databases for a round trip each, waiting
//! for the tick left the cores 20 % idle under load. A
//! tenant that holds no turn at all does not even wait for the tick: its arrival bumps the
//! epoch, so running guests check in at once.

mod ticket;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

use ticket::{Grant, TicketState, Waiter};
pub use ticket::{Ticket, Turn};

/// Hands out turns at the cores, fairly between tenants.
pub struct CpuScheduler {
    turns: usize,
    waiting: AtomicUsize,
    /// Epoch ticks seen; a turn lent in an earlier tick may be taken.
    tick: AtomicU64,
    state: Mutex<State>,
    preempt: Box<dyn Fn() + Send + Sync>,
}

#[derive(Default)]
struct State {
    /// Turns out: running, or lent and not yet taken.
    grants: Vec<(Arc<Grant>, Arc<str>)>,
    /// Turns out, per tenant holding any.
    held: HashMap<Arc<str>, usize>,
    /// Waiters, per tenant, first come first served within a tenant.
    queues: HashMap<Arc<str>, VecDeque<oneshot::Sender<Arc<Grant>>>>,
    /// Tenants with waiters, in round-robin order.
    order: VecDeque<Arc<str>>,
}

impl CpuScheduler {
    /// A scheduler of `turns` concurrent guests; `preempt` makes running guests check in soon
    /// (the sandbox bumps the engine's epoch).
    pub fn new(turns: usize, preempt: impl Fn() + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(CpuScheduler {
            turns: turns.max(1),
            waiting: AtomicUsize::new(0),
            // From 1, so that a turn offered (lent "at tick 0") can be taken at once.
            tick: AtomicU64::new(1),
            state: Mutex::default(),
            preempt: Box::new(preempt),
        })
    }

    /// Called once per epoch tick: turns lent since an earlier tick go to waiters.
    pub fn tick(&self) {
        self.tick.fetch_add(1, Ordering::Relaxed);
        if self.contended() {
            self.dispatch(&mut self.lock());
        }
    }

    /// Whether any guest is waiting for a turn: a running guest should then give its turn up.
    pub fn contended(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
    }

    /// Whether `tenant` holds at least two turns more than some waiting tenant: handing one
    /// over then makes the shares more even, so it should happen without waiting for a tick.
    pub fn outnumbers_a_waiter(&self, tenant: &Arc<str>) -> bool {
        let state = self.lock();
        let mine = state.held.get(tenant).copied().unwrap_or(0);
        state
            .order
            .iter()
            .map(|waiting| state.held.get(waiting).copied().unwrap_or(0))
            .min()
            .is_some_and(|fewest| mine >= fewest + 2)
    }

    /// Waits for a turn for `tenant`. Cancel-safe: dropped while waiting, it leaves the queue,
    /// and a turn granted meanwhile goes to the next waiter.
    pub async fn acquire(self: &Arc<Self>, tenant: &Arc<str>) -> Turn {
        self.ticket(tenant).wait().await
    }

    /// Takes a place in the queue for `tenant` now, to wait on later: the front end takes one
    /// before it hands a request to the sandbox's threads, so the preemption it causes frees a
    /// thread that is already running to pick the request up.
    pub fn ticket(self: &Arc<Self>, tenant: &Arc<str>) -> Ticket {
        let (receiver, starved) = {
            let mut state = self.lock();
            if state.order.is_empty() && self.free_a_turn(&mut state) {
                let grant = state.grant(tenant);
                return Ticket(TicketState::Granted(self.turn(grant)));
            }
            let (sender, receiver) = oneshot::channel();
            let queue = state.queues.entry(tenant.clone()).or_default();
            queue.push_back(sender);
            if queue.len() == 1 {
                state.order.push_back(tenant.clone());
            }
            self.waiting.fetch_add(1, Ordering::Relaxed);
            self.dispatch(&mut state);
            (receiver, !state.held.contains_key(tenant))
        };
        if starved {
            (self.preempt)();
        }
        Ticket(TicketState::Queued(Waiter {
            receiver,
            scheduler: self.clone(),
            tenant: tenant.clone(),
            granted: false,
        }))
    }

    fn turn(self: &Arc<Self>, grant: Arc<Grant>) -> Turn {
        Turn {
            scheduler: self.clone(),
            grant,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if something did, the counts are still sound.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a turn is free, taking back one lent since an earlier tick if none is.
    fn free_a_turn(&self, state: &mut State) -> bool {
        if state.grants.len() < self.turns {
            return true;
        }
        let tick = self.tick.load(Ordering::Relaxed);
        let taken = state
            .grants
            .iter()
            .position(|(grant, _)| grant.revoke_if_lent_before(tick));
        match taken {
            Some(index) => {
                let (_, tenant) = state.grants.swap_remove(index);
                state.forget(&tenant);
                true
            }
            None => false,
        }
    }

    /// Grants free turns to waiters: the tenant holding fewest first, round-robin among equals.
    fn dispatch(&self, state: &mut State) {
        while !state.order.is_empty() && self.free_a_turn(state) {
            let next = state
                .order
                .iter()
                .enumerate()
                .min_by_key(|(_, tenant)| state.held.get(*tenant).copied().unwrap_or(0))
                .map(|(index, _)| index);
            let Some(tenant) = next.and_then(|index| state.order.remove(index)) else {
                return;
            };
            let Some(queue) = state.queues.get_mut(&tenant) else {
                continue;
            };
            let sender = queue.pop_front();
            if queue.is_empty() {
                state.queues.remove(&tenant);
            } else {
                state.order.push_back(tenant.clone());
            }
            let Some(sender) = sender else { continue };
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            let grant = state.grant(&tenant);
            if sender.send(grant.clone()).is_err() {
                // The waiter gave up: the turn stays free for the next one.
                state.release(&grant);
            }
        }
    }
}

impl State {
    fn grant(&mut self, tenant: &Arc<str>) -> Arc<Grant> {
        let grant = Arc::new(Grant::running());
        self.grants.push((grant.clone(), tenant.clone()));
        *self.held.entry(tenant.clone()).or_default() += 1;
        grant
    }

    /// Gives `grant`'s turn back, unless it was already taken from its lender.
    fn release(&mut self, grant: &Arc<Grant>) -> bool {
        let Some(index) = self.grants.iter().position(|(g, _)| Arc::ptr_eq(g, grant)) else {
            return false;
        };
        let (_, tenant) = self.grants.swap_remove(index);
        self.forget(&tenant);
        true
    }

    fn forget(&mut self, tenant: &Arc<str>) {
        if let Some(held) = self.held.get_mut(tenant) {
            *held -= 1;
            if *held == 0 {
                self.held.remove(tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests;
