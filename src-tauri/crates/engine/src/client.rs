//! Sending a [`ChatRequest`] to a provider and streaming the answer back as
//! [`Timed`] events. Time is measured here, inside the engine, on a
//! monotonic clock: at the send, at the arrival of each network chunk, and
//! at the end. Dropping a [`ChatStream`] drops the HTTP response, which
//! closes the connection: that is how a request is cancelled.
//!
//! The client is also the last guard for two promises: a provider disabled
//! in config is refused here whatever path reached it, and credential
//! headers are marked sensitive while every error body that comes back is
//! scrubbed of the key that was sent ([`redact`](crate::redact)) before it
//! becomes a [`ProviderError`].

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::time::Instant;

use crate::chat::{ChatRequest, StreamEvent};
use crate::error::{ErrorKind, ProviderError};
use crate::keys::Secret;
use crate::provider::{self, ProviderConfig, RetryHeaders, StreamParser, WireRequest};
use crate::redact;
use crate::sse::{SseDecoder, SseEvent};

/// A stream event and when it arrived, counted from the send.
#[derive(Debug, Clone, PartialEq)]
pub struct Timed {
    /// Time since the request was sent (monotonic).
    pub at: Duration,
    /// What happened.
    pub event: StreamEvent,
}

/// The HTTP client shared by every provider call.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A client with connection pooling and a connect timeout. Streams have
    /// no overall timeout here: the routing layer owns the three timers.
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("Switchboard/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .build()
            .unwrap_or_default();
        Self { http }
    }

    async fn send(
        &self,
        provider: &ProviderConfig,
        wire: &WireRequest,
    ) -> Result<reqwest::Response, ProviderError> {
        let rb = with_headers(self.http.post(&wire.url).json(&wire.body), &wire.headers);
        let response = rb.send().await.map_err(|e| network(provider, &e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(http_error(provider, response, &wire.headers).await)
    }

    /// Start a streaming request. `Err` means it could not start (network,
    /// HTTP error status); failures after that arrive as a final
    /// [`StreamEvent::Error`] in the stream.
    pub async fn stream(
        &self,
        provider: &ProviderConfig,
        key: Option<&Secret>,
        req: &ChatRequest,
    ) -> Result<ChatStream, ProviderError> {
        if !provider.enabled {
            return Err(provider.disabled_error());
        }
        let wire = provider::build_request(provider, key.map(Secret::expose), req, true);
        let sent_at = Instant::now();
        let response = self.send(provider, &wire).await?;
        Ok(ChatStream {
            secrets: redact::secrets_of(&wire.headers),
            body: Box::pin(response.bytes_stream()),
            decoder: SseDecoder::new(),
            parser: StreamParser::new(provider),
            provider: provider.id.clone(),
            sse: Vec::new(),
            scratch: Vec::new(),
            pending: VecDeque::new(),
            sent_at,
            chunk_at: Duration::ZERO,
            done: false,
        })
    }

    /// A non-streaming request: the whole answer as events, all stamped with
    /// the arrival of the complete response.
    pub async fn complete(
        &self,
        provider: &ProviderConfig,
        key: Option<&Secret>,
        req: &ChatRequest,
    ) -> Result<Vec<Timed>, ProviderError> {
        if !provider.enabled {
            return Err(provider.disabled_error());
        }
        let wire = provider::build_request(provider, key.map(Secret::expose), req, false);
        let sent_at = Instant::now();
        let response = self.send(provider, &wire).await?;
        let body = response.text().await.map_err(|e| {
            ProviderError::new(
                ErrorKind::Interrupted,
                &provider.id,
                format!("the response was cut: {e}"),
            )
        })?;
        let at = sent_at.elapsed();
        let events = provider::parse_response(provider, &body)
            .map_err(|e| e.scrubbed(&redact::secrets_of(&wire.headers)))?;
        Ok(events
            .into_iter()
            .map(|event| Timed { at, event })
            .collect())
    }

    /// GET a JSON document from a provider (model lists), with its key.
    pub async fn get_json(
        &self,
        provider: &ProviderConfig,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<serde_json::Value, ProviderError> {
        if !provider.enabled {
            return Err(provider.disabled_error());
        }
        let rb = with_headers(self.http.get(url).timeout(Duration::from_secs(20)), headers);
        let response = rb.send().await.map_err(|e| network(provider, &e))?;
        if !response.status().is_success() {
            return Err(http_error(provider, response, headers).await);
        }
        let body = response.text().await.map_err(|e| network(provider, &e))?;
        serde_json::from_str(&body).map_err(|e| {
            ProviderError::new(
                ErrorKind::Malformed,
                &provider.id,
                format!("unreadable model list: {e}"),
            )
            .with_raw(&redact::scrub(&body, &redact::secrets_of(headers)))
        })
    }
}

/// `rb` with `headers`; credential headers are marked sensitive, so the
/// HTTP stack never prints them (and HTTP/2 never indexes them).
fn with_headers(
    mut rb: reqwest::RequestBuilder,
    headers: &[(String, String)],
) -> reqwest::RequestBuilder {
    for (k, v) in headers {
        match reqwest::header::HeaderValue::from_str(v) {
            Ok(mut value) => {
                value.set_sensitive(redact::is_sensitive_header(k));
                rb = rb.header(k, value);
            }
            // Not a valid header value: let the builder report it.
            Err(_) => rb = rb.header(k, v),
        }
    }
    rb
}

/// The classified error of a non-success response: its retry hints, and
/// its body with the keys that were sent (and any credential header it
/// echoes) scrubbed before anything keeps or shows it.
async fn http_error(
    provider: &ProviderConfig,
    response: reqwest::Response,
    sent: &[(String, String)],
) -> ProviderError {
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (retry_after_ms, retry_after) = (header("retry-after-ms"), header("retry-after"));
    let body = response.text().await.unwrap_or_default();
    let body = redact::scrub(&body, &redact::secrets_of(sent));
    provider::classify_http(
        provider,
        status,
        RetryHeaders {
            retry_after_ms: retry_after_ms.as_deref(),
            retry_after: retry_after.as_deref(),
        },
        &body,
    )
}

fn network(provider: &ProviderConfig, e: &reqwest::Error) -> ProviderError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Network
    };
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = format!("{cause}: {s}");
        source = s.source();
    }
    ProviderError::new(
        kind,
        &provider.id,
        format!("could not reach {}: {cause}", provider.base_url),
    )
}

/// A response being streamed. Yields [`Timed`] events; a
/// [`StreamEvent::Error`] is always the last item.
pub struct ChatStream {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    /// Credential values sent with the request, scrubbed from errors.
    secrets: Vec<Secret>,
    decoder: SseDecoder,
    parser: StreamParser,
    provider: String,
    sse: Vec<SseEvent>,
    scratch: Vec<StreamEvent>,
    pending: VecDeque<StreamEvent>,
    sent_at: Instant,
    chunk_at: Duration,
    done: bool,
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream")
            .field("provider", &self.provider)
            .field("done", &self.done)
            .finish()
    }
}

impl ChatStream {
    /// When the request was sent.
    pub fn sent_at(&self) -> Instant {
        self.sent_at
    }

    /// Time since the request was sent.
    pub fn elapsed(&self) -> Duration {
        self.sent_at.elapsed()
    }

    fn parse_pending_sse(&mut self) {
        for ev in self.sse.drain(..) {
            if let Err(e) = self.parser.on_event(&ev, &mut self.scratch) {
                self.pending.extend(self.scratch.drain(..));
                self.pending
                    .push_back(StreamEvent::Error(e.scrubbed(&self.secrets)));
                self.done = true;
                return;
            }
        }
        self.pending.extend(self.scratch.drain(..));
    }

    fn on_chunk(&mut self, chunk: &[u8]) {
        self.decoder.feed(chunk, &mut self.sse);
        self.parse_pending_sse();
    }

    fn on_body_end(&mut self) {
        self.decoder.finish(&mut self.sse);
        self.parse_pending_sse();
        if !self.done {
            if let Err(e) = self.parser.on_end() {
                self.pending.push_back(StreamEvent::Error(e));
            }
            self.done = true;
        }
    }

    fn on_body_error(&mut self, e: &reqwest::Error) {
        let mut cause = e.to_string();
        if let Some(s) = std::error::Error::source(e) {
            cause = format!("{cause}: {s}");
        }
        self.pending
            .push_back(StreamEvent::Error(ProviderError::new(
                ErrorKind::Interrupted,
                &self.provider,
                format!("the connection broke mid-stream ({cause}); the text that arrived is kept"),
            )));
        self.done = true;
    }
}

impl Stream for ChatStream {
    type Item = Timed;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Timed>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.pending.pop_front() {
                return Poll::Ready(Some(Timed {
                    at: this.chunk_at,
                    event,
                }));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match this.body.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(item) => {
                    this.chunk_at = this.sent_at.elapsed();
                    match item {
                        Some(Ok(chunk)) => this.on_chunk(&chunk),
                        Some(Err(e)) => this.on_body_error(&e),
                        None => this.on_body_end(),
                    }
                }
            }
        }
    }
}
