//! Answers to a request whose body was not read to its end say `Connection: close`.
//!
//! When a service answers before reading the whole request body, hyper tries to drain it; if
//! the rest has not arrived yet, it closes the connection after the answer — but it wrote the
//! answer's head before deciding, without `Connection: close`. A proxy in front (Traefik) keeps
//! that connection in its pool, shared by every client, sends the next request on it, meets the
//! closed socket and answers that request 502 (it cannot retry a POST). The edge reads every
//! body before it answers (see [`crate::edge`]), so this is left for a body declared over the
//! limit (413) and for handlers served without the edge; saying `Connection: close` there lets
//! the proxy drop the connection instead.

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, Version, header};
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::{Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

/// The middleware (around the whole router: see [`crate::http::serve_with`]).
pub async fn close_if_body_unread(request: Request, next: Next) -> Response {
    // HTTP/2 has no `Connection` header: a stream ends on its own.
    if request.version() > Version::HTTP_11 || request.body().is_end_stream() {
        return next.run(request).await;
    }
    let finished = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| {
        Body::new(Tracked {
            inner: body,
            finished: finished.clone(),
        })
    });
    let mut response = next.run(request).await;
    if !finished.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that records when it was read to its end.
struct Tracked {
    inner: Body,
    finished: Arc<AtomicBool>,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.finished.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
