//! Bounded capture of a guest's stdout or stderr: the first bytes are kept, the rest are
//! counted and dropped. Writes always succeed, so a chatty plugin is never failed (or
//! made to panic in `println!`) just for printing too much.

use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::async_trait;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// One captured stream; clones share the buffer.
#[derive(Clone)]
pub(crate) struct Capture {
    limit: usize,
    /// Bytes withheld before the cut when output is truncated, so a secret that straddles
    /// the cut cannot leave its first part behind (redaction only sees whole secrets).
    guard: usize,
    inner: Arc<Mutex<Captured>>,
}

#[derive(Default)]
struct Captured {
    kept: Vec<u8>,
    dropped: usize,
}

impl Capture {
    pub fn new(limit: usize, guard: usize) -> Capture {
        Capture {
            limit,
            guard,
            inner: Arc::default(),
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut captured = self.inner.lock().expect("capture lock");
        let room = self.limit.saturating_sub(captured.kept.len());
        let kept = room.min(bytes.len());
        captured.kept.extend_from_slice(&bytes[..kept]);
        captured.dropped += bytes.len() - kept;
    }

    /// What was captured, with a note of how much was dropped.
    pub fn text(&self) -> String {
        let captured = self.inner.lock().expect("capture lock");
        if captured.dropped == 0 {
            return String::from_utf8_lossy(&captured.kept).into_owned();
        }
        let keep = captured.kept.len().saturating_sub(self.guard);
        let mut text = String::from_utf8_lossy(&captured.kept[..keep]).into_owned();
        text.push_str(&format!(
            "\n[{} more bytes not kept: output is capped at {} KiB per stream]",
            captured.dropped + captured.kept.len() - keep,
            self.limit / 1024
        ));
        text
    }
}

/// The permit offered to the guest per write; any size is accepted.
const WRITE_PERMIT: usize = 64 * 1024;

#[async_trait]
impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_PERMIT)
    }
}

#[async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl AsyncWrite for Capture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_bytes_and_counts_the_rest() {
        let capture = Capture::new(8, 0);
        capture.push(b"hello ");
        capture.push(b"world");
        let text = capture.text();
        assert!(
            text.starts_with("hello wo\n[3 more bytes not kept"),
            "{text}"
        );
    }

    #[test]
    fn withholds_a_possible_secret_prefix_at_the_cut() {
        // A 4-byte secret "o wo" straddling the cut must not survive in part.
        let guarded = Capture::new(8, 4);
        guarded.push(b"hello world");
        let text = guarded.text();
        assert!(text.starts_with("hell\n[7 more bytes"), "{text}");
    }
}
