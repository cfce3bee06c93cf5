//! Bodies: reading a request's within the size limit, and the response
//! body, either whole or the stream of a running request.
//!
//! A streamed body owns its request's [`Running`]: the request encodes
//! every piece straight into one shared buffer, and each poll of the body
//! hands out all of it as one frame. So a piece crosses no channel, costs
//! no allocation of its own, and pieces that arrive while a frame is
//! written leave together in the next. Hyper drops the body when the
//! client goes away (a failed write, a closed connection); the request
//! then goes on by itself, cancelled, and settles as `stopped` (see
//! [`Running`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::StatusCode;
use switchboard_engine::Usage;

use crate::errors::{ApiError, Dialect};
use crate::run::{Finished, Running};
use crate::{anthropic, openai};

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

/// Writes a streamed answer in a dialect's wire format.
pub(crate) trait Encoder {
    /// Append a piece of answer text.
    fn text(&mut self, text: &str, out: &mut Vec<u8>);
    /// Append a piece of reasoning (or nothing, when the caller did not
    /// ask for it).
    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>);
    /// Append the end: how it ended, usage and cost, the terminator.
    fn end(&mut self, f: &Finished, out: &mut Vec<u8>);
}

/// How a streamed answer is written: the dialect and what the caller
/// asked of it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamFormat {
    pub dialect: Dialect,
    /// OpenAI: `stream_options.include_usage`.
    pub include_usage: bool,
    /// Anthropic: thinking blocks.
    pub thinking: bool,
}

/// A streamed answer's encoder, one per dialect (dispatched statically).
#[derive(Debug)]
pub(crate) enum StreamEncoder {
    OpenAi(openai::ChunkStream),
    Anthropic(anthropic::EventStream),
}

impl StreamFormat {
    /// The encoder of an answer served by `target`, with the counts its
    /// provider reported so far; appends the stream's opening to `out`.
    pub(crate) fn start(self, target: &str, usage: Usage, out: &mut Vec<u8>) -> StreamEncoder {
        match self.dialect {
            Dialect::OpenAi => {
                StreamEncoder::OpenAi(openai::ChunkStream::start(target, self.include_usage, out))
            }
            Dialect::Anthropic => StreamEncoder::Anthropic(anthropic::EventStream::start(
                target,
                usage,
                self.thinking,
                out,
            )),
        }
    }
}

impl Encoder for StreamEncoder {
    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        match self {
            StreamEncoder::OpenAi(e) => e.text(text, out),
            StreamEncoder::Anthropic(e) => e.text(text, out),
        }
    }

    fn reasoning(&mut self, text: &str, out: &mut Vec<u8>) {
        match self {
            StreamEncoder::OpenAi(e) => e.reasoning(text, out),
            StreamEncoder::Anthropic(e) => e.reasoning(text, out),
        }
    }

    fn end(&mut self, f: &Finished, out: &mut Vec<u8>) {
        match self {
            StreamEncoder::OpenAi(e) => e.end(f, out),
            StreamEncoder::Anthropic(e) => e.end(f, out),
        }
    }
}

/// A response body.
pub(crate) enum GatewayBody {
    /// All of it at once; the request it answers (if any) is kept until
    /// the body is done, which then lets its ledger writes go (see
    /// [`Running`]).
    Full {
        bytes: Option<Bytes>,
        /// Dropped with the body: lets its ledger writes go.
        _request: Option<Box<Running>>,
    },
    /// The stream of a running request.
    Stream(Box<Running>),
}

impl std::fmt::Debug for GatewayBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GatewayBody::Full { .. } => f.write_str("GatewayBody::Full"),
            GatewayBody::Stream(_) => f.write_str("GatewayBody::Stream"),
        }
    }
}

impl GatewayBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        GatewayBody::Full {
            bytes: Some(bytes.into()),
            _request: None,
        }
    }

    /// The whole answer of `running`, a request that has ended.
    pub(crate) fn full_of(bytes: impl Into<Bytes>, running: Running) -> Self {
        GatewayBody::Full {
            bytes: Some(bytes.into()),
            _request: Some(Box::new(running)),
        }
    }

    pub(crate) fn stream(running: Running) -> Self {
        GatewayBody::Stream(Box::new(running))
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
            GatewayBody::Full { bytes, .. } => {
                Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b))))
            }
            // Everything that is ready goes out as one frame.
            GatewayBody::Stream(running) => running
                .poll_bytes(cx)
                .map(|bytes| bytes.map(|b| Ok(Frame::data(Bytes::from(b))))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GatewayBody::Full { bytes, .. } => bytes.is_none(),
            GatewayBody::Stream(running) => running.is_over(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GatewayBody::Full { bytes, .. } => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
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
