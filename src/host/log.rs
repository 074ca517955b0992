//! Bounded capture of the guest's stdout and stderr.
//!
//! Writes past the cap are accepted and dropped, never refused: a refused write would turn a
//! chatty `print` into an exception inside the handler. The capture records that it truncated.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Marker appended to captured output that hit the cap.
pub const TRUNCATION_MARK: &str = "\n[output truncated by pubfn]\n";

#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
}

/// A shared, capped buffer; one serves both stdout and stderr so their order is kept.
#[derive(Debug, Clone)]
pub struct OutputCapture {
    inner: Arc<Mutex<Captured>>,
    cap: usize,
}

impl OutputCapture {
    /// A capture that keeps at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        OutputCapture {
            inner: Arc::default(),
            cap,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Captured> {
        // A panic while holding this lock cannot leave the buffer inconsistent.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn append(&self, buf: &[u8]) {
        let mut captured = self.lock();
        let room = self.cap.saturating_sub(captured.bytes.len());
        if buf.len() > room {
            captured.truncated = true;
        }
        captured
            .bytes
            .extend_from_slice(&buf[..buf.len().min(room)]);
    }

    /// Takes what was captured so far (lossy UTF-8, with the truncation mark if it was cut),
    /// leaving the capture empty for the next call.
    pub fn take(&self) -> String {
        let mut captured = self.lock();
        let mut text = String::from_utf8_lossy(&captured.bytes).into_owned();
        if captured.truncated {
            text.push_str(TRUNCATION_MARK);
        }
        *captured = Captured::default();
        text
    }
}

impl IsTerminal for OutputCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputCapture {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for OutputCapture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_past_the_cap_is_dropped_and_marked() {
        let capture = OutputCapture::new(4);
        capture.append(b"abc");
        capture.append(b"def");
        assert_eq!(capture.take(), format!("abcd{TRUNCATION_MARK}"));
        assert_eq!(capture.take(), "");
    }
}
