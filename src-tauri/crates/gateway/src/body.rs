//! Bodies: reading a request's within the size limit, and the response
//! body, either whole or a stream of pieces produced by the request's
//! task.
//!
//! A streamed body owns the request's [`CancelOnDrop`]: hyper drops the
//! body when the client goes away (a failed write, a closed connection),
//! and that cancels the routed request, which then settles as `stopped`.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::StatusCode;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::errors::ApiError;
use crate::run::Progress;

/// A request body read as `format` (named in the error when it does not
/// match): 400 `invalid_json` saying whether it is not JSON at all or JSON
/// of another shape.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    format: &str,
) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let what = if e.is_data() {
            format!("the request body does not match the {format} format")
        } else {
            "the request body is not valid JSON".to_owned()
        };
        ApiError::bad_request("invalid_json", format!("{what}: {e}"))
    })
}

/// Cancels a request's token when dropped: the client is gone, or the
/// answer is complete (then the request has ended and it changes nothing).
#[derive(Debug)]
pub(crate) struct CancelOnDrop(pub CancellationToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Turns a request's progress into the bytes of its stream.
pub(crate) trait Encoder: Send + 'static {
    /// Append what `p` adds to the stream; true once the stream is
    /// complete (nothing follows).
    fn encode(&mut self, p: Progress, out: &mut Vec<u8>) -> bool;
}

/// A response body.
pub(crate) enum GatewayBody {
    /// All of it at once.
    Full(Option<Bytes>),
    /// Pieces as the request's task produces them.
    Stream(Box<Streamed>),
}

impl std::fmt::Debug for GatewayBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GatewayBody::Full(_) => f.write_str("GatewayBody::Full"),
            GatewayBody::Stream(_) => f.write_str("GatewayBody::Stream"),
        }
    }
}

/// A streamed body: the request's progress channel and its encoder.
pub(crate) struct Streamed {
    /// Bytes to send first (the pieces that decided the response).
    first: Option<Vec<u8>>,
    rx: mpsc::UnboundedReceiver<Progress>,
    encoder: Box<dyn Encoder>,
    done: bool,
    _cancel: CancelOnDrop,
}

impl GatewayBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        GatewayBody::Full(Some(bytes.into()))
    }

    pub(crate) fn stream(
        first: Vec<u8>,
        rx: mpsc::UnboundedReceiver<Progress>,
        encoder: Box<dyn Encoder>,
        cancel: CancelOnDrop,
    ) -> Self {
        GatewayBody::Stream(Box::new(Streamed {
            first: Some(first),
            rx,
            encoder,
            done: false,
            _cancel: cancel,
        }))
    }
}

impl Body for GatewayBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            GatewayBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            GatewayBody::Stream(s) => {
                let mut out = s.first.take().unwrap_or_default();
                // Everything already waiting goes out as one frame: fewer
                // writes when pieces come faster than the socket drains.
                while !s.done {
                    match s.rx.poll_recv(cx) {
                        Poll::Ready(Some(p)) => s.done = s.encoder.encode(p, &mut out),
                        Poll::Ready(None) => s.done = true,
                        Poll::Pending => break,
                    }
                }
                if !out.is_empty() {
                    Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))))
                } else if s.done {
                    Poll::Ready(None)
                } else {
                    Poll::Pending
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GatewayBody::Full(b) => b.is_none(),
            GatewayBody::Stream(s) => s.done && s.first.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GatewayBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            GatewayBody::Full(None) => SizeHint::with_exact(0),
            GatewayBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// How much of an oversized body is read (and dropped) so the client gets
/// the 413 instead of a broken pipe; beyond it the connection is closed.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Read a request body of at most `limit` bytes.
pub(crate) async fn read_limited(
    body: hyper::body::Incoming,
    declared: Option<u64>,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!("the request body is larger than the Local API's limit of {limit} bytes"),
        )
    };
    let mut body = body;
    let mut buf: Vec<u8> = Vec::with_capacity(
        declared
            .and_then(|d| usize::try_from(d).ok())
            .unwrap_or(0)
            .min(limit),
    );
    let mut over = declared.is_some_and(|d| d > limit as u64);
    let mut seen: usize = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::bad_request(
                "unreadable_body",
                format!("the request body broke off: {e}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if over || seen > limit {
            over = true;
            buf = Vec::new();
            if seen > DRAIN_LIMIT {
                break;
            }
            continue;
        }
        buf.extend_from_slice(&data);
    }
    if over {
        return Err(too_large());
    }
    Ok(Bytes::from(buf))
}
