//! The HTTP server: listening, the endpoints, and turning a request's
//! progress into a response.
//!
//! | endpoint | |
//! |---|---|
//! | `POST /v1/chat/completions` | OpenAI Chat Completions ([`crate::openai`]) |
//! | `POST /v1/messages` | Anthropic Messages ([`crate::anthropic`]) |
//! | `GET /v1/models` | the catalog and the routes ([`crate::models`]) |
//!
//! (The same paths without `/v1` work too, for tools configured with a
//! base URL that lacks it.) HTTP/1.1 with keep-alive; no CORS headers are
//! ever sent, so browsers do not let a web page read any answer.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use switchboard_engine::hooks::SpendContext;
use switchboard_engine::{DataDir, KeyStore};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::body::{Encoder, GatewayBody, StreamFormat, read_limited};
use crate::errors::{ApiError, Dialect, attempt_word, attempts_header};
use crate::run::{Finished, Job, Running};
use crate::state::{GatewayStats, RELOAD_EVERY, State};
use crate::{anthropic, openai, resolve, tokens};

/// The port the Local API listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 4141;

/// The largest request body accepted, in bytes (4 MiB: about a million
/// tokens of text).
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// Where the Local API listens and what it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatewayOptions {
    /// The address to bind: loopback unless said otherwise. Any other
    /// address needs at least one client token.
    pub bind: IpAddr,
    /// The port (0: any free one).
    pub port: u16,
    /// The largest request body accepted (413 above it).
    pub max_body_bytes: usize,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: DEFAULT_PORT,
            max_body_bytes: DEFAULT_MAX_BODY,
        }
    }
}

/// Why the Local API could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// config.toml does not load.
    #[error("{0}")]
    Config(String),
    /// The database cannot be used.
    #[error("{0}")]
    Store(String),
    /// The address cannot be bound (in use, not permitted).
    #[error("cannot listen on {addr}: {message}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        message: String,
    },
    /// A non-loopback address without any client token.
    #[error(
        "refusing to listen on {addr} without a client token: that address is reachable from \
         other machines. Create one first (switchboard-cli tokens create NAME, or Settings → \
         Local API), or listen on 127.0.0.1"
    )]
    NoTokens {
        /// The address asked for.
        addr: String,
    },
}

/// A running Local API. Stop it with [`Gateway::stop`]; dropping it stops
/// every request too (they settle), without waiting.
#[derive(Debug)]
pub struct Gateway {
    state: Arc<State>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
    }
}

impl Gateway {
    /// Open the data directory's database and config, bind, and serve.
    pub async fn start(
        dir: DataDir,
        keys: KeyStore,
        options: GatewayOptions,
    ) -> Result<Self, GatewayError> {
        let max_body = options.max_body_bytes;
        let state = tokio::task::spawn_blocking(move || State::new(dir, keys, max_body))
            .await
            .map_err(|e| GatewayError::Store(e.to_string()))??;
        let wanted = SocketAddr::new(options.bind, options.port);
        if !options.bind.is_loopback() && state.tokens.count() == 0 {
            return Err(GatewayError::NoTokens {
                addr: wanted.to_string(),
            });
        }
        let listener = TcpListener::bind(wanted)
            .await
            .map_err(|e| GatewayError::Bind {
                addr: wanted.to_string(),
                message: e.to_string(),
            })?;
        let addr = listener.local_addr().map_err(|e| GatewayError::Bind {
            addr: wanted.to_string(),
            message: e.to_string(),
        })?;
        tokio::spawn(reload_loop(Arc::clone(&state)));
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&state)));
        Ok(Self {
            state,
            addr,
            accept: Some(accept),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to give an OpenAI SDK (`http://127.0.0.1:4141/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The counters.
    pub fn stats(&self) -> GatewayStats {
        self.state.stats()
    }

    /// Read the client tokens again now (after making or revoking one in
    /// this process; other processes' changes are seen within a second).
    pub async fn reload_tokens(&self) {
        let state = Arc::clone(&self.state);
        let _ = tokio::task::spawn_blocking(move || state.reload_tokens()).await;
    }

    /// Stop: no new connections, every running request stopped (each
    /// settles: ledger row, hold released, text kept), and wait at most
    /// `wait` for them and for the ledger writes.
    pub async fn stop(mut self, wait: Duration) {
        self.state.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + wait;
        if let Some(accept) = self.accept.take() {
            let _ = tokio::time::timeout_at(deadline, accept).await;
        }
        while self.state.stats.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let writer = self.state.writer.clone();
        let _ = tokio::time::timeout_at(
            deadline,
            tokio::task::spawn_blocking(move || writer.flush()),
        )
        .await;
    }
}

/// Re-read config.toml and the tokens every [`RELOAD_EVERY`].
async fn reload_loop(state: Arc<State>) {
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            () = tokio::time::sleep(RELOAD_EVERY) => {}
        }
        let s = Arc::clone(&state);
        let _ = tokio::task::spawn_blocking(move || {
            s.reload_config();
            let _ = s.reload_tokens();
        })
        .await;
    }
}

/// How long, after a stop, open connections get to finish.
const GRACE: Duration = Duration::from_secs(5);

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            () = state.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors and the like: let it pass.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let service = service_fn(move |req| handle(Arc::clone(&state), req));
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(GRACE, graceful.shutdown()).await;
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<GatewayBody>, Infallible> {
    let path = req.uri().path().to_owned();
    let path = path.strip_prefix("/v1").unwrap_or(&path);
    let dialect = if path.starts_with("/messages") {
        Dialect::Anthropic
    } else {
        Dialect::OpenAi
    };
    let answer = match (req.method(), path) {
        (&Method::POST, "/chat/completions") => chat(&state, req, Dialect::OpenAi).await,
        (&Method::POST, "/messages") => chat(&state, req, Dialect::Anthropic).await,
        (&Method::GET, "/models") => list_models(&state, &req),
        (method, path) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no such endpoint: {method} {path}. The Local API serves POST \
                 /v1/chat/completions, POST /v1/messages and GET /v1/models"
            ),
        )),
    };
    let response = answer.unwrap_or_else(|e| error_response(&e, dialect));
    let s = response.status();
    state
        .stats
        .answered(s.is_client_error() || s.is_server_error());
    Ok(response)
}

fn authorize(
    state: &State,
    req: &Request<Incoming>,
) -> Result<switchboard_engine::store::ClientToken, ApiError> {
    let token = state.tokens.check(req.headers()).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "a Switchboard client token is required: create one with `switchboard-cli tokens \
             create NAME` (or in Settings → Local API) and send it as the API key",
        )
    })?;
    state.used(&token);
    Ok(token)
}

fn list_models(
    state: &Arc<State>,
    req: &Request<Incoming>,
) -> Result<Response<GatewayBody>, ApiError> {
    authorize(state, req)?;
    let anthropic = req.headers().contains_key("anthropic-version");
    let body = state.generation().models(anthropic);
    Ok(json_response(StatusCode::OK, GatewayBody::full(body)))
}

fn json_response(status: StatusCode, body: GatewayBody) -> Response<GatewayBody> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn header(r: &mut Response<GatewayBody>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

fn error_response(e: &ApiError, dialect: Dialect) -> Response<GatewayBody> {
    let mut r = json_response(e.status, GatewayBody::full(e.body(dialect)));
    if let Some(wait) = e.retry_after {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        header(&mut r, "retry-after", &secs.to_string());
        header(&mut r, "retry-after-ms", &wait.as_millis().to_string());
    }
    if !e.attempts.is_empty() {
        let lines: Vec<(String, String)> = e
            .attempts
            .iter()
            .map(|a| (a.target.clone(), attempt_word(a)))
            .collect();
        header(&mut r, "x-switchboard-attempts", &attempts_header(&lines));
    }
    r
}

/// The `x-switchboard-*` headers of an answer.
fn answer_headers(
    r: &mut Response<GatewayBody>,
    target: &str,
    attempts: &[(String, String)],
    route: Option<&str>,
) {
    header(r, "x-switchboard-target", target);
    header(r, "x-switchboard-attempts", &attempts_header(attempts));
    if let Some(route) = route {
        header(r, "x-switchboard-route", route);
    }
}

fn sse_response(body: GatewayBody) -> Response<GatewayBody> {
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    r
}

async fn chat(
    state: &Arc<State>,
    req: Request<Incoming>,
    dialect: Dialect,
) -> Result<Response<GatewayBody>, ApiError> {
    let token = authorize(state, &req)?;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = read_limited(req.into_body(), declared, state.max_body).await?;
    let parsed = match dialect {
        Dialect::OpenAi => openai::parse(&body)?,
        Dialect::Anthropic => anthropic::parse(&body)?,
    };
    let generation = state.generation();
    let route = resolve::route_for(&generation, &parsed.names, &parsed.chat)?;
    if let Some(budget) = &token.budget
        && let Some(problem) = tokens::budget_problem(
            &generation.budgets,
            &token.name,
            token.tag.as_deref(),
            budget,
        )
    {
        let mut e = ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "budget_exceeded",
            format!(
                "token \"{}\" is bound to a budget it cannot spend under: {problem}",
                token.name
            ),
        );
        e.budgets.push(budget.clone());
        return Err(e);
    }
    state
        .keys
        .ensure(route.targets.iter().map(|t| &t.provider))
        .await;
    let route_name = route.name.clone();
    let format = StreamFormat {
        dialect,
        include_usage: parsed.include_usage,
        thinking: parsed.thinking,
    };
    let job = Job {
        route,
        spend: SpendContext {
            tags: token.tags(),
            ..SpendContext::default()
        },
        stream: parsed.stream.then_some(format),
        record_as: token.record_history.then(|| parsed.names.join(",")),
        chat: parsed.chat,
    };
    let mut running = Running::start(state, generation, job, state.shutdown.child_token());
    running.until_response().await;
    // No byte of a response before its crash record is committed.
    running.hold_written().await;
    let serving = running.output().serving.clone();
    if let Some(target) = serving {
        let attempts = std::mem::take(&mut running.output().attempts);
        let mut r = sse_response(GatewayBody::stream(running));
        answer_headers(&mut r, &target, &attempts, route_name.as_deref());
        return Ok(r);
    }
    let finished_with = running.output().finished.take();
    let Some(f) = finished_with else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the request ended inside Switchboard without an outcome",
        ));
    };
    finished(
        state,
        *f,
        format,
        parsed.stream,
        route_name.as_deref(),
        running,
    )
}

/// The response for a request that ended before streaming anything.
fn finished(
    state: &State,
    f: Finished,
    format: StreamFormat,
    stream: bool,
    route: Option<&str>,
    running: Running,
) -> Result<Response<GatewayBody>, ApiError> {
    if !f.outcome.is_ok() {
        if f.outcome.is_stopped() && state.shutdown.is_cancelled() {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the Local API is stopping",
            ));
        }
        return Err(ApiError::from_outcome(&f.outcome, f.budgets.clone()));
    }
    let r = &f.outcome.result;
    let target = format!("{}:{}", r.provider, r.model);
    let attempts: Vec<(String, String)> = f
        .outcome
        .attempts
        .iter()
        .map(|a| (a.target.clone(), attempt_word(a)))
        .collect();
    let mut response = if stream {
        // An answer with no token at all: its whole stream at once.
        let mut body = Vec::with_capacity(512);
        format.start(&target, r.usage, &mut body).end(&f, &mut body);
        sse_response(GatewayBody::full_of(body, running))
    } else {
        let body = match format.dialect {
            Dialect::OpenAi => openai::completion(&f),
            Dialect::Anthropic => anthropic::message(&f, format.thinking),
        };
        let mut r = json_response(StatusCode::OK, GatewayBody::full_of(body, running));
        if let Some(cost) = f.outcome.cost() {
            header(&mut r, "x-switchboard-cost", &cost.total.usd());
        }
        r
    };
    answer_headers(&mut response, &target, &attempts, route);
    Ok(response)
}
