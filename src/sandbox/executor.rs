//! The sandbox's own threads: a runtime of low-priority threads that guest code runs on, shut
//! down without blocking, and tasks aborted when their caller goes away.

use std::future::Future;

use tokio::task::AbortHandle;

/// Guest code yields to the front end: a thread of the HTTP server (accepting, checking tokens,
/// answering 429 or `/healthz`) wakes up ahead of a guest burning its CPU budget instead of
/// waiting out the kernel's time slice. Among guests, the turns decide.
pub(super) fn lower_thread_priority() {
    let thread = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(thread), SANDBOX_NICE) {
        tracing::warn!("could not lower the sandbox thread's priority: {e}");
    }
}

/// The sandbox threads' nice value (0 is the default, 19 the lowest priority).
const SANDBOX_NICE: i32 = 10;

/// The sandbox's runtime; shut down without blocking, since it may be dropped inside another.
pub(super) struct Executor(pub(super) Option<tokio::runtime::Runtime>);

impl Executor {
    pub(super) fn spawn<Fut>(&self, work: Fut) -> tokio::task::JoinHandle<Fut::Output>
    where
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        self.0.as_ref().expect("present until dropped").spawn(work)
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Aborts a spawned task when the future awaiting it is dropped (a client that went away).
pub(super) struct AbortOnDrop(pub(super) AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
