//! The listening server, its shared script and request log.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::http::{self, Next, Reply};
use crate::routes;
use crate::scenario::Scenario;
use crate::sse::to_json;

/// The wire protocols the mock speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OpenAI chat completions (and every OpenAI-compatible server).
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini `generateContent`.
    Gemini,
}

/// A mock provider listening on `127.0.0.1`, speaking all three protocols.
///
/// Dropping it stops the server and every connection it holds open.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl MockServer {
    /// Binds `127.0.0.1` on a free port and starts serving. Must be called
    /// inside a Tokio runtime.
    pub async fn start() -> io::Result<MockServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(MockServer { addr, shared, task })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL as each vendor's SDK writes it: `http://127.0.0.1:PORT/v1` for
    /// OpenAI, `http://127.0.0.1:PORT` for Anthropic and Gemini.
    pub fn base_url(&self, protocol: Protocol) -> String {
        match protocol {
            Protocol::OpenAi => format!("http://{}/v1", self.addr),
            Protocol::Anthropic | Protocol::Gemini => format!("http://{}", self.addr),
        }
    }

    /// Sets the behaviour for requests naming `model`, in any protocol,
    /// replacing a previous scenario for that model.
    pub fn script(&self, model: &str, scenario: Scenario) {
        self.shared
            .lock()
            .scenarios
            .insert(model.to_owned(), scenario);
    }

    /// Stop (or resume) keeping every request for [`MockServer::requests`]:
    /// a load benchmark sends hundreds of thousands. Hits and pieces are
    /// still counted.
    pub fn set_recording(&self, on: bool) {
        self.shared.lock().unrecorded = !on;
    }

    /// Every request received, in order of arrival.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// How many generation requests named `model` (whatever their outcome).
    pub fn hits(&self, model: &str) -> usize {
        self.shared.lock().hits.get(model).copied().unwrap_or(0)
    }

    /// For each streamed request naming `model`, in order of arrival: how
    /// many text and reasoning pieces the server has written to the
    /// connection so far. A client that hangs up mid-stream has received
    /// at most that many (one written just as it hung up may be lost).
    pub fn pieces_sent(&self, model: &str) -> Vec<usize> {
        self.shared
            .lock()
            .pieces
            .get(model)
            .map(|v| v.iter().map(|n| n.load(Ordering::SeqCst)).collect())
            .unwrap_or_default()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        // The accept task owns the connection tasks: aborting it ends them all.
        self.task.abort();
    }
}

/// A request as the server received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Request target: the path including the query string.
    pub path: String,
    /// Headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body, when it is JSON.
    pub body: Option<serde_json::Value>,
    /// The body exactly as received.
    pub raw_body: Vec<u8>,
    /// When the request was fully received.
    pub at: Instant,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        http::header(&self.headers, name)
    }
}

/// State shared by the handle and the connection tasks.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    scenarios: HashMap<String, Scenario>,
    requests: Vec<RecordedRequest>,
    hits: HashMap<String, usize>,
    pieces: HashMap<String, Vec<Arc<AtomicUsize>>>,
    /// Requests are not kept (see [`MockServer::set_recording`]).
    unrecorded: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take the server down with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        let mut state = self.lock();
        if !state.unrecorded {
            state.requests.push(request);
        }
    }

    /// A counter of the pieces a new stream for `model` writes.
    pub(crate) fn track_pieces(&self, model: &str) -> Arc<AtomicUsize> {
        let counter = Arc::new(AtomicUsize::new(0));
        self.lock()
            .pieces
            .entry(model.to_owned())
            .or_default()
            .push(Arc::clone(&counter));
        counter
    }

    /// Count a request for `model`; how many there have been, this one included.
    pub(crate) fn hit(&self, model: &str) -> usize {
        let mut state = self.lock();
        let n = state.hits.entry(model.to_owned()).or_default();
        *n += 1;
        *n
    }

    pub(crate) fn scenario(&self, model: &str) -> Option<Scenario> {
        self.lock().scenarios.get(model).cloned()
    }

    /// Scripted model names, sorted.
    pub(crate) fn models(&self) -> Vec<String> {
        let mut models: Vec<String> = self.lock().scenarios.keys().cloned().collect();
        models.sort();
        models
    }

    /// Every key some scenario requires.
    pub(crate) fn required_keys(&self) -> Vec<String> {
        self.lock()
            .scenarios
            .values()
            .filter_map(|scenario| scenario.required_key.clone())
            .collect()
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    connections.spawn(serve(stream, Arc::clone(&shared)));
                }
            }
            // Reap finished connections so long benchmarks do not pile them up.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Serves requests on one connection until either side closes it.
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    // Each write is a deliberate unit (an event or a split piece): send it now.
    let _ = stream.set_nodelay(true);
    let mut io = BufReader::new(stream);
    loop {
        let request = match http::read_request(&mut io).await {
            Ok(Some(request)) => request,
            Ok(None) => return,
            Err(error) => {
                let body = serde_json::json!({ "error": { "message": error.to_string() } });
                let reply = Reply::Json(http::JsonReply::new(400, to_json(&body)));
                let _ = http::write_reply(&mut io, reply, false).await;
                return;
            }
        };
        let reply = routes::handle(&shared, &request, Instant::now());
        match http::write_reply(&mut io, reply, request.keep_alive()).await {
            Ok(Next::KeepAlive) => {}
            Ok(Next::Close) | Err(_) => return,
        }
    }
}
