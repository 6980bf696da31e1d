//! The first request line of a connection, read before hyper sees it.
//!
//! hyper refuses a request head larger than its buffer (about 400 KB) with
//! 431, whatever part is too long. The service answers an over-long URL
//! with 414, so the emulator reads the first request line itself: past
//! [`MAX_URL`](super::guard::MAX_URL) it answers 414 and closes; otherwise
//! it hands hyper a stream that gives back what was read. (Later requests
//! on the same connection are checked in the service, up to hyper's
//! buffer.)

use super::guard::MAX_URL;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// A stream with bytes already read from it put back in front.
pub struct Prefixed<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.prefix.len() {
            let rest = &self.prefix[self.at..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            self.at += n;
            if self.at == self.prefix.len() {
                self.prefix = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The longest first line let through: the method, the URL and the
/// protocol.
const MAX_LINE: usize = MAX_URL + 32;

/// Reads until the end of the first request line (or the connection's
/// end). `None` when the connection is done with: closed, too slow
/// (`timeout`), or answered 414.
pub async fn first_line<S>(mut stream: S, timeout: Duration) -> Option<Prefixed<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut read = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let outcome = tokio::time::timeout(timeout, async {
        loop {
            if read.contains(&b'\n') {
                return Some(true);
            }
            if read.len() > MAX_LINE {
                return Some(false);
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => read.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    match outcome {
        Ok(Some(true)) => Some(Prefixed {
            prefix: read,
            at: 0,
            inner: stream,
        }),
        Ok(Some(false)) => {
            let body = super::guard::uri_too_long_body();
            let head = format!(
                "HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json\r\nx-ms-error-code: UriTooLong\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&body).await;
            let _ = stream.shutdown().await;
            // Closing with the rest of the URL unread would reset the
            // connection and could destroy the answer before the client
            // reads it: read on a little first (a lingering close).
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                let mut drained = 0usize;
                while drained < 4 << 20 {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => drained += n,
                    }
                }
            })
            .await;
            None
        }
        Ok(None) | Err(_) => None,
    }
}
