//! Fair turns at running guest code.
//!
//! A fixed number of guests execute wasm at once (one per core the sandbox may use). When more
//! want to, the next turn goes to the waiting tenant that holds the fewest turns, round-robin
//! among equals, so a tenant with a hundred requests in flight and a tenant with one get the
//! same share of the cores. A guest gives its turn back when it returns and, while others
//! wait, at every epoch tick ([`super::cpu`]). During a host call it lends its turn: once the
//! call has lasted into the next tick, a waiter may take it (the guest sleeps or waits on its
//! database, so it needs no core); a quick call (a clock read, a write to the captured stdout)
//! gets it back for free, with no hand-over to pay for. A tenant that
//! holds no turn at all does not even wait for the tick: its arrival bumps the epoch, so
//! running guests check in at once.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// Hands out turns at the cores, fairly between tenants.
pub struct CpuScheduler {
    turns: usize,
    waiting: AtomicUsize,
    state: Mutex<State>,
    preempt: Box<dyn Fn() + Send + Sync>,
}

#[derive(Default)]
struct State {
    running: usize,
    /// Turns held, per tenant holding any.
    held: HashMap<Arc<str>, usize>,
    /// Waiters, per tenant, first come first served within a tenant.
    queues: HashMap<Arc<str>, VecDeque<oneshot::Sender<()>>>,
    /// Tenants with waiters, in round-robin order.
    order: VecDeque<Arc<str>>,
    /// Turns lent by guests in host calls (counted in `running` and `held`), oldest first,
    /// with the tick they were lent in.
    lent: VecDeque<(u64, Arc<str>, u64)>,
    next_lent_id: u64,
    /// Epoch ticks seen.
    tick: u64,
}

/// The right to execute guest code; given back when dropped.
pub struct Turn {
    scheduler: Arc<CpuScheduler>,
    tenant: Arc<str>,
    /// Cleared once the turn was lent: the lent turn gives it back instead.
    live: bool,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if !self.live {
            return;
        }
        let mut state = self.scheduler.lock();
        state.release(&self.tenant);
        self.scheduler.dispatch(&mut state);
    }
}

impl Turn {
    /// Lends the turn for the length of a host call: a waiter may take it meanwhile.
    pub fn lend(mut self) -> LentTurn {
        self.live = false;
        let mut state = self.scheduler.lock();
        state.next_lent_id += 1;
        let id = state.next_lent_id;
        let tick = state.tick;
        state.lent.push_back((id, self.tenant.clone(), tick));
        self.scheduler.dispatch(&mut state);
        drop(state);
        LentTurn {
            id,
            scheduler: self.scheduler.clone(),
            tenant: self.tenant.clone(),
            live: true,
        }
    }
}

/// A turn lent during a host call; taken back with [`LentTurn::reclaim`].
pub struct LentTurn {
    id: u64,
    scheduler: Arc<CpuScheduler>,
    tenant: Arc<str>,
    /// Cleared once reclaimed.
    live: bool,
}

impl LentTurn {
    /// The turn, if no waiter took it meanwhile.
    pub fn reclaim(mut self) -> Option<Turn> {
        self.live = false;
        let mut state = self.scheduler.lock();
        let position = state.lent.iter().position(|(id, _, _)| *id == self.id);
        let kept = position
            .and_then(|index| state.lent.remove(index))
            .is_some();
        drop(state);
        kept.then(|| self.scheduler.turn(&self.tenant))
    }
}

impl Drop for LentTurn {
    fn drop(&mut self) {
        if !self.live {
            return;
        }
        let mut state = self.scheduler.lock();
        if let Some(index) = state.lent.iter().position(|(id, _, _)| *id == self.id) {
            state.lent.remove(index);
            state.release(&self.tenant);
            self.scheduler.dispatch(&mut state);
        }
    }
}

impl CpuScheduler {
    /// A scheduler of `turns` concurrent guests; `preempt` makes running guests check in soon
    /// (the sandbox bumps the engine's epoch).
    pub fn new(turns: usize, preempt: impl Fn() + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(CpuScheduler {
            turns: turns.max(1),
            waiting: AtomicUsize::new(0),
            state: Mutex::default(),
            preempt: Box::new(preempt),
        })
    }

    /// Called once per epoch tick: turns lent since an earlier tick go to waiters.
    pub fn tick(&self) {
        let mut state = self.lock();
        state.tick += 1;
        if self.contended() {
            self.dispatch(&mut state);
        }
    }

    /// Whether any guest is waiting for a turn: a running guest should then give its turn up.
    pub fn contended(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
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
            if state.has_free_turn(self.turns) && state.order.is_empty() {
                state.take_lent_if_full(self.turns);
                state.grant(tenant);
                return Ticket(TicketState::Granted(self.turn(tenant)));
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

    fn turn(self: &Arc<Self>, tenant: &Arc<str>) -> Turn {
        Turn {
            scheduler: self.clone(),
            tenant: tenant.clone(),
            live: true,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if something did, the counts are still sound.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Grants free turns to waiters: the tenant holding fewest first, round-robin among equals.
    fn dispatch(&self, state: &mut State) {
        while state.has_free_turn(self.turns) {
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
            if sender.is_closed() {
                continue;
            }
            state.take_lent_if_full(self.turns);
            if sender.send(()).is_ok() {
                state.grant(&tenant);
            }
        }
    }
}

impl State {
    fn grant(&mut self, tenant: &Arc<str>) {
        self.running += 1;
        *self.held.entry(tenant.clone()).or_default() += 1;
    }

    fn release(&mut self, tenant: &Arc<str>) {
        self.running -= 1;
        if let Some(held) = self.held.get_mut(tenant) {
            *held -= 1;
            if *held == 0 {
                self.held.remove(tenant);
            }
        }
    }

    /// A turn is free, or lent since an earlier tick and so can be taken.
    fn has_free_turn(&self, turns: usize) -> bool {
        self.running < turns || self.lent.front().is_some_and(|lent| lent.2 < self.tick)
    }

    /// When every turn is out, takes back the oldest lent one if it may be, so a grant fits.
    fn take_lent_if_full(&mut self, turns: usize) {
        if self.running >= turns
            && self.lent.front().is_some_and(|lent| lent.2 < self.tick)
            && let Some((_, tenant, _)) = self.lent.pop_front()
        {
            self.release(&tenant);
        }
    }
}

/// A place in the queue for a turn (or the turn itself, if one was free).
pub struct Ticket(TicketState);

enum TicketState {
    Granted(Turn),
    Queued(Waiter),
}

impl Ticket {
    /// The turn, once it is this ticket's.
    pub async fn wait(self) -> Turn {
        match self.0 {
            TicketState::Granted(turn) => turn,
            TicketState::Queued(mut waiter) => {
                // Senders are only dropped after a send, or once their receiver is closed.
                let _ = (&mut waiter.receiver).await;
                waiter.granted = true;
                waiter.scheduler.turn(&waiter.tenant)
            }
        }
    }
}

/// A queued request for a turn; cleans up after itself if abandoned.
struct Waiter {
    receiver: oneshot::Receiver<()>,
    scheduler: Arc<CpuScheduler>,
    tenant: Arc<str>,
    granted: bool,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if self.granted {
            return;
        }
        self.receiver.close();
        if self.receiver.try_recv().is_ok() {
            // Granted just as we gave up: pass it on.
            drop(self.scheduler.turn(&self.tenant));
            return;
        }
        let mut state = self.scheduler.lock();
        let Some(queue) = state.queues.get_mut(&self.tenant) else {
            return;
        };
        let before = queue.len();
        queue.retain(|sender| !sender.is_closed());
        let removed = before - queue.len();
        self.scheduler.waiting.fetch_sub(removed, Ordering::Relaxed);
        if queue.is_empty() {
            state.queues.remove(&self.tenant);
            state.order.retain(|tenant| tenant != &self.tenant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn tenant(name: &str) -> Arc<str> {
        Arc::from(name)
    }

    #[tokio::test]
    async fn a_tenant_holding_no_turn_goes_before_one_holding_many() {
        let preempted = Arc::new(AtomicUsize::new(0));
        let counter = preempted.clone();
        let scheduler = CpuScheduler::new(2, move || {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        let (hog, probe) = (tenant("hog"), tenant("probe"));
        let first = scheduler.acquire(&hog).await;
        let second = scheduler.acquire(&hog).await;
        let s = scheduler.clone();
        let h = hog.clone();
        let queued_hog = tokio::spawn(async move { s.acquire(&h).await });
        tokio::task::yield_now().await;
        let s = scheduler.clone();
        let p = probe.clone();
        let queued_probe = tokio::spawn(async move { s.acquire(&p).await });
        while scheduler.waiting.load(Ordering::Relaxed) < 2 {
            tokio::task::yield_now().await;
        }
        assert!(scheduler.contended());
        assert_eq!(
            preempted.load(Ordering::Relaxed),
            1,
            "only the probe preempts"
        );
        drop(first);
        let probe_turn = queued_probe.await.unwrap();
        assert!(!queued_hog.is_finished());
        drop(second);
        let hog_turn = queued_hog.await.unwrap();
        assert!(!scheduler.contended());
        drop((probe_turn, hog_turn));
        assert_eq!(scheduler.lock().running, 0);
        assert!(scheduler.lock().held.is_empty());
    }

    #[tokio::test]
    async fn an_abandoned_wait_leaves_the_queue_and_loses_no_turn() {
        let scheduler = CpuScheduler::new(1, || {});
        let (a, b) = (tenant("a"), tenant("b"));
        let held = scheduler.acquire(&a).await;
        let s = scheduler.clone();
        let b2 = b.clone();
        let abandoned = tokio::spawn(async move { s.acquire(&b2).await });
        while !scheduler.contended() {
            tokio::task::yield_now().await;
        }
        abandoned.abort();
        let _ = abandoned.await;
        assert!(!scheduler.contended());
        assert!(scheduler.lock().order.is_empty());
        drop(held);
        // The one turn is free again.
        let again = tokio::time::timeout(std::time::Duration::from_secs(5), scheduler.acquire(&b))
            .await
            .expect("the turn was lost");
        drop(again);
        assert_eq!(scheduler.lock().running, 0);
    }
}
