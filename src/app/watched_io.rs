//! The socket (plain or TLS) as hyper sees it: every read is recorded in the connection's
//! [`Activity`], and hyper's own bare error answers get a JSON body.
//!
//! Data path: under the HTTP handler, between hyper and the socket. When a request cannot even
//! be parsed, hyper answers by itself, before any handler runs, with an empty body: 400 for a
//! malformed request, 414 for a request target over its 65,534-byte limit (a value too large
//! for `/write/{key}/{value}`), 431 for oversized headers. Every other answer of the service is
//! JSON with `"error"` (docs/design.md), so these are rewritten here: an answer whose status
//! line is one of those three, written when every request the service was handed has already
//! been answered, can only be hyper's own. It is swallowed and replaced by the same status
//! with a JSON body and `connection: close` (hyper closes the connection after it anyway).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::activity::Activity;

/// A connection's socket with its reads recorded and hyper's parse-error answers rewritten.
#[derive(Debug)]
pub struct WatchedIo<S> {
    inner: S,
    activity: Arc<Activity>,
    /// Final (non-1xx) response heads written so far.
    heads: u64,
    /// A replacement answer still being written, and how much of it is out.
    replacement: Option<(Vec<u8>, usize)>,
    /// hyper's error answer was replaced: whatever else it writes is dropped.
    swallowing: bool,
}

impl<S> WatchedIo<S> {
    /// Wraps `inner`, recording into `activity`.
    pub fn new(inner: S, activity: Arc<Activity>) -> WatchedIo<S> {
        WatchedIo {
            inner,
            activity,
            heads: 0,
            replacement: None,
            swallowing: false,
        }
    }
}

/// The JSON answer that replaces hyper's bare one for `status`, if it is one hyper makes.
fn replacement_for(status: &[u8]) -> Option<Vec<u8>> {
    let (line, error, code) = match status {
        b"400" => (
            "400 Bad Request",
            "malformed HTTP request",
            "malformed_request",
        ),
        b"414" => (
            "414 URI Too Long",
            "the request target is longer than 65534 bytes; send a value this large as the body of PUT /kv/{key}",
            "uri_too_long",
        ),
        b"431" => (
            "431 Request Header Fields Too Large",
            "the request headers are larger than the server accepts",
            "headers_too_large",
        ),
        _ => return None,
    };
    let body = serde_json::json!({ "error": error, "code": code }).to_string();
    Some(
        format!(
            "HTTP/1.1 {line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

impl<S: AsyncWrite + Unpin> WatchedIo<S> {
    /// Writes what is left of the replacement; Ready(Ok) once it is all out.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement {
            if *written >= bytes.len() {
                self.replacement = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Looks at the start of a write: a response head is counted, or replaced when it is
    /// hyper's own error answer. Returns true when `buf` is to be swallowed.
    fn inspect(&mut self, buf: &[u8]) -> bool {
        if self.swallowing {
            return true;
        }
        if buf.len() < 12 || !buf.starts_with(b"HTTP/1.") || buf[8] != b' ' {
            return false;
        }
        let status = &buf[9..12];
        if status[0] == b'1' {
            return false;
        }
        if self.heads >= self.activity.calls()
            && let Some(answer) = replacement_for(status)
        {
            self.replacement = Some((answer, 0));
            self.swallowing = true;
            return true;
        }
        self.heads += 1;
        false
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WatchedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = ready!(Pin::new(&mut this.inner).poll_read(cx, buf));
        if result.is_ok() && buf.filled().len() > before {
            this.activity.on_read();
        }
        Poll::Ready(result)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WatchedIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        if this.inspect(buf) {
            // Start the replacement now; what does not fit goes out on flush or shutdown.
            if let Poll::Ready(Err(e)) = this.poll_replacement(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[tokio::test]
    async fn hypers_own_error_answer_gets_json_and_service_answers_pass() -> TestResult {
        let activity = Arc::new(Activity::new());
        let (near, mut far) = tokio::io::duplex(4096);
        let mut io = WatchedIo::new(near, activity.clone());
        // A handled request's 413 passes untouched.
        let guard = activity.start_request();
        io.write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 2\r\n\r\n{}")
            .await?;
        drop(guard);
        // Then hyper's own 414, for a request no handler saw.
        io.write_all(b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n")
            .await?;
        io.shutdown().await?;
        let mut seen = String::new();
        far.read_to_string(&mut seen).await?;
        assert!(
            seen.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
            "{seen}"
        );
        let second = seen.split("{}").nth(1).ok_or("no second answer")?;
        assert!(
            second.starts_with("HTTP/1.1 414 URI Too Long\r\n"),
            "{second}"
        );
        assert!(
            second.contains("content-type: application/json"),
            "{second}"
        );
        let body = second.split("\r\n\r\n").nth(1).ok_or("no body")?;
        let json: serde_json::Value = serde_json::from_str(body)?;
        assert_eq!(json["code"], "uri_too_long");
        assert!(
            json["error"]
                .as_str()
                .is_some_and(|e| e.contains("PUT /kv"))
        );
        Ok(())
    }

    #[tokio::test]
    async fn reads_are_recorded() -> TestResult {
        let activity = Arc::new(Activity::new());
        let (near, mut far) = tokio::io::duplex(64);
        let mut io = WatchedIo::new(near, activity.clone());
        let header = std::time::Duration::from_secs(10);
        let idle = std::time::Duration::from_secs(75);
        drop(activity.start_request());
        let before = activity.check(std::time::Instant::now(), header, idle);
        far.write_all(b"GET").await?;
        let mut buf = [0u8; 3];
        io.read_exact(&mut buf).await?;
        let after = activity.check(std::time::Instant::now(), header, idle);
        assert_ne!(
            before, after,
            "a read moves the connection to the header bound"
        );
        Ok(())
    }
}
