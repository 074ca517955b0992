//! Turns, and tickets to wait for one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;

use super::CpuScheduler;

/// A turn's state, shared by its holder and the scheduler: running, lent since a tick, or
/// taken from its lender. Lending and taking back are one atomic operation each, since they
/// happen on every host call.
pub(super) struct Grant {
    state: AtomicU64,
}

const RUNNING: u64 = u64::MAX;
const TAKEN: u64 = u64::MAX - 1;

impl Grant {
    pub(super) fn running() -> Self {
        Grant {
            state: AtomicU64::new(RUNNING),
        }
    }

    fn lend(&self, tick: u64) {
        let _ = self.state.compare_exchange(
            RUNNING,
            tick.min(TAKEN - 1),
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// Lends the turn as if since before every tick: a waiter may take it at once.
    fn offer(&self) {
        let mut state = self.state.load(Ordering::Acquire);
        while state != TAKEN && state != 0 {
            match self
                .state
                .compare_exchange(state, 0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(now) => state = now,
            }
        }
    }

    fn reclaim(&self) -> bool {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            match state {
                RUNNING => return true,
                TAKEN => return false,
                lent => match self.state.compare_exchange(
                    lent,
                    RUNNING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return true,
                    Err(now) => state = now,
                },
            }
        }
    }

    /// Takes the turn from its lender if it was lent before `tick`.
    pub(super) fn revoke_if_lent_before(&self, tick: u64) -> bool {
        let state = self.state.load(Ordering::Acquire);
        state < TAKEN
            && state < tick
            && self
                .state
                .compare_exchange(state, TAKEN, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }
}

/// The right to execute guest code; given back when dropped.
pub struct Turn {
    pub(super) scheduler: Arc<CpuScheduler>,
    pub(super) grant: Arc<Grant>,
}

impl Turn {
    /// Lends the turn for the length of a host call: a waiter may take it after a tick.
    pub fn lend(&self) {
        self.grant.lend(self.scheduler.tick.load(Ordering::Relaxed));
    }

    /// Lends the turn for a host call that waits on I/O (a database): a waiter takes it at
    /// once rather than after a tick, so the core works for someone else meanwhile.
    pub fn offer(&self) {
        self.grant.offer();
        if self.scheduler.contended() {
            self.scheduler.dispatch(&mut self.scheduler.lock());
        }
    }

    /// Takes a lent turn back; `false` if a waiter took it (the turn is then gone).
    pub fn reclaim(&self) -> bool {
        self.grant.reclaim()
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut state = self.scheduler.lock();
        if state.release(&self.grant) {
            self.scheduler.dispatch(&mut state);
        }
    }
}

/// A place in the queue for a turn (or the turn itself, if one was free).
pub struct Ticket(pub(super) TicketState);

pub(super) enum TicketState {
    Granted(Turn),
    Queued(Waiter),
}

impl Ticket {
    /// The turn, once it is this ticket's.
    pub async fn wait(self) -> Turn {
        match self.0 {
            TicketState::Granted(turn) => turn,
            TicketState::Queued(mut waiter) => {
                let granted = (&mut waiter.receiver).await;
                waiter.granted = true;
                match granted {
                    Ok(grant) => waiter.scheduler.turn(grant),
                    // Senders are only dropped after a send or once their receiver closed:
                    // should that ever change, queue again rather than fail.
                    Err(_) => Box::pin(waiter.scheduler.acquire(&waiter.tenant)).await,
                }
            }
        }
    }
}

/// A queued request for a turn; cleans up after itself if abandoned.
pub(super) struct Waiter {
    pub(super) receiver: oneshot::Receiver<Arc<Grant>>,
    pub(super) scheduler: Arc<CpuScheduler>,
    pub(super) tenant: Arc<str>,
    pub(super) granted: bool,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if self.granted {
            return;
        }
        self.receiver.close();
        if let Ok(grant) = self.receiver.try_recv() {
            // Granted just as we gave up: pass it on.
            drop(self.scheduler.turn(grant));
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
