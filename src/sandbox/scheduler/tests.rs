//! The scheduler's rules, on their own (tests/serve_fair_share.rs checks them end to end).

use super::*;
use std::sync::atomic::AtomicUsize;

fn tenant(name: &str) -> Arc<str> {
    Arc::from(name)
}

/// Yields until `condition` holds; fails after 10 s rather than spinning forever (a spawned
/// task that panicked never makes it hold).
async fn yield_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::task::yield_now().await;
    }
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
    yield_until("two waiting", || {
        scheduler.waiting.load(Ordering::Relaxed) >= 2
    })
    .await;
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
    assert_eq!(scheduler.lock().grants.len(), 0);
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
    yield_until("a waiter", || scheduler.contended()).await;
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
    assert_eq!(scheduler.lock().grants.len(), 0);
}

#[tokio::test]
async fn a_turn_lent_across_a_tick_goes_to_a_waiter_and_a_quick_lend_does_not() {
    let scheduler = CpuScheduler::new(1, || {});
    let (sleeper, other) = (tenant("sleeper"), tenant("other"));
    let turn = scheduler.acquire(&sleeper).await;
    turn.lend();
    assert!(turn.reclaim(), "nobody may take a turn lent in this tick");
    turn.lend();
    let s = scheduler.clone();
    let o = other.clone();
    let waiting = tokio::spawn(async move { s.acquire(&o).await });
    yield_until("a waiter", || scheduler.contended()).await;
    scheduler.tick();
    let taken = waiting.await.unwrap();
    assert!(!turn.reclaim(), "the waiter took the lent turn");
    drop(turn);
    assert_eq!(scheduler.lock().grants.len(), 1);
    drop(taken);
    assert_eq!(scheduler.lock().grants.len(), 0);
    assert!(scheduler.lock().held.is_empty());
}

#[tokio::test]
async fn a_turn_offered_while_waiting_on_io_goes_to_a_waiter_without_a_tick() {
    let scheduler = CpuScheduler::new(1, || {});
    let (reader, other) = (tenant("reader"), tenant("other"));
    let turn = scheduler.acquire(&reader).await;
    let s = scheduler.clone();
    let o = other.clone();
    let waiting = tokio::spawn(async move { s.acquire(&o).await });
    yield_until("a waiter", || scheduler.contended()).await;
    // The call hook lends the turn as the host call starts; the database call offers it.
    turn.lend();
    turn.offer();
    // No tick ever comes in this test: only the offer can hand the turn over.
    let taken = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .expect("the offered turn was not handed to the waiter")
        .unwrap();
    assert!(!turn.reclaim(), "the waiter took the offered turn");
    drop(turn);
    assert_eq!(scheduler.lock().grants.len(), 1);
    drop(taken);
    assert!(scheduler.lock().held.is_empty());

    // Offered with nobody waiting, the turn is the guest's again when it resumes.
    let turn = scheduler.acquire(&reader).await;
    turn.lend();
    turn.offer();
    assert!(turn.reclaim());
}
