//! A raw HTTP/1.1 client on a plain `TcpStream`: it sees the bytes exactly as
//! the mock put them on the wire, HTTP chunks included.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_mock::Protocol;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long a test waits for a whole response before giving up.
pub const PATIENCE: Duration = Duration::from_secs(3);

/// A request to send.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl RawRequest {
    pub fn new(method: &'static str, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// A generation request in `protocol`'s own shape.
    pub fn generate(protocol: Protocol, model: &str, stream: bool) -> Self {
        let messages = json!([{ "role": "user", "content": "Say hello" }]);
        match protocol {
            Protocol::OpenAi => Self::new("POST", "/v1/chat/completions").json(json!({
                "model": model,
                "messages": messages,
                "stream": stream,
                "stream_options": { "include_usage": true },
            })),
            Protocol::Anthropic => Self::new("POST", "/v1/messages")
                .header("anthropic-version", "2023-06-01")
                .json(json!({
                    "model": model,
                    "max_tokens": 64,
                    "messages": messages,
                    "stream": stream,
                })),
            Protocol::Gemini => {
                let path = if stream {
                    format!("/v1beta/models/{model}:streamGenerateContent?alt=sse")
                } else {
                    format!("/v1beta/models/{model}:generateContent")
                };
                Self::new("POST", path).json(json!({
                    "contents": [{ "role": "user", "parts": [{ "text": "Say hello" }] }],
                }))
            }
        }
    }

    /// Adds `key` where `protocol` expects it.
    pub fn key(self, protocol: Protocol, key: &str) -> Self {
        match protocol {
            Protocol::OpenAi => self.header("Authorization", &format!("Bearer {key}")),
            Protocol::Anthropic => self.header("X-Api-Key", key),
            Protocol::Gemini => self.header("x-goog-api-key", key),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let body = self.body.as_ref().map(Value::to_string).unwrap_or_default();
        let mut head = format!("{} {} HTTP/1.1\r\nhost: mock\r\n", self.method, self.path);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if self.body.is_some() {
            head.push_str("content-type: application/json\r\n");
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        bytes
    }
}

/// A response as read off the wire.
#[derive(Debug, Default)]
pub struct RawResponse {
    pub status: u16,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body payload, de-chunked.
    pub body: Vec<u8>,
    /// Payload sizes of the HTTP chunks received (empty for content-length).
    pub chunks: Vec<usize>,
    /// The body ended properly: the zero-length chunk, or `content-length` bytes.
    pub complete: bool,
    /// Reading stopped because the time limit passed.
    pub timed_out: bool,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone())
            .unwrap_or_else(|error| panic!("body is not UTF-8: {error}"))
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {}", self.text()))
    }

    /// The SSE events of the body.
    pub fn events(&self) -> Vec<SseEvent> {
        parse_sse(&self.text())
    }
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|error| panic!("data is not JSON ({error}): {}", self.data))
    }
}

/// Parses SSE text (LF or CRLF); comment lines are skipped.
pub fn parse_sse(text: &str) -> Vec<SseEvent> {
    let mut events = Vec::new();
    let mut event = None;
    let mut data: Option<String> = None;
    for line in text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
    {
        if line.is_empty() {
            if let Some(data) = data.take() {
                events.push(SseEvent {
                    event: event.take(),
                    data,
                });
            }
            event = None;
        } else if let Some(name) = line.strip_prefix("event: ") {
            event = Some(name.to_owned());
        } else if let Some(value) = line.strip_prefix("data: ") {
            data = Some(match data {
                Some(previous) => format!("{previous}\n{value}"),
                None => value.to_owned(),
            });
        }
    }
    events
}

/// One client connection.
#[derive(Debug)]
pub struct RawClient {
    io: BufReader<TcpStream>,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self {
            io: BufReader::new(TcpStream::connect(addr).await?),
        })
    }

    /// Sends `request` and reads the whole response.
    pub async fn request(&mut self, request: &RawRequest) -> io::Result<RawResponse> {
        self.send(request).await?;
        self.response(PATIENCE).await
    }

    pub async fn send(&mut self, request: &RawRequest) -> io::Result<()> {
        self.send_bytes(&request.to_bytes()).await
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.get_mut().write_all(bytes).await
    }

    /// Reads a response, returning what arrived if `limit` passes first.
    pub async fn response(&mut self, limit: Duration) -> io::Result<RawResponse> {
        let mut response = RawResponse::default();
        match tokio::time::timeout(limit, self.read_into(&mut response)).await {
            Ok(result) => result.map(|()| response),
            Err(_) => {
                response.timed_out = true;
                Ok(response)
            }
        }
    }

    /// Whether the server has closed the connection (waiting up to `limit`).
    pub async fn is_closed(&mut self, limit: Duration) -> bool {
        let mut scratch = [0; 64];
        matches!(
            tokio::time::timeout(limit, self.io.read(&mut scratch)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    async fn read_into(&mut self, response: &mut RawResponse) -> io::Result<()> {
        let status_line = self.line().await?;
        response.status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').ok_or_else(|| invalid(line.clone()))?;
            response
                .headers
                .push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        if response.header("transfer-encoding") == Some("chunked") {
            self.read_chunks(response).await
        } else if let Some(length) = response.header("content-length") {
            let length: usize = length.parse().map_err(|_| invalid("bad content-length"))?;
            let mut limited = (&mut self.io).take(u64::try_from(length).unwrap_or(u64::MAX));
            limited.read_to_end(&mut response.body).await?;
            response.complete = response.body.len() == length;
            Ok(())
        } else {
            self.io.read_to_end(&mut response.body).await.map(drop)
        }
    }

    /// Reads chunks until the zero-length chunk or EOF.
    async fn read_chunks(&mut self, response: &mut RawResponse) -> io::Result<()> {
        loop {
            let Ok(size_line) = self.line().await else {
                return Ok(()); // EOF: incomplete body
            };
            let size = usize::from_str_radix(&size_line, 16)
                .map_err(|_| invalid(format!("bad chunk size {size_line:?}")))?;
            if size == 0 {
                self.line().await?;
                response.complete = true;
                return Ok(());
            }
            let mut payload = vec![0; size + 2];
            if self.io.read_exact(&mut payload).await.is_err() {
                return Ok(());
            }
            if !payload.ends_with(b"\r\n") {
                return Err(invalid("chunk without trailing CRLF"));
            }
            payload.truncate(size);
            response.chunks.push(size);
            response.body.extend_from_slice(&payload);
        }
    }

    /// A CRLF-terminated line; an error on EOF.
    async fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.io.read_line(&mut line).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        line.strip_suffix("\r\n")
            .map(str::to_owned)
            .ok_or_else(|| invalid(format!("line without CRLF: {line:?}")))
    }
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}
