//! Just enough HTTP/1.1, by hand: request parsing and response writing.
//!
//! A general-purpose server would hide exactly what the mock exists to
//! control: how a body is split into chunks and TCP writes, and cutting the
//! connection before the body is complete.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
};

use crate::sse::Step;

/// Longest request head (request line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// A parsed HTTP request.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// Path including the query string.
    pub(crate) target: String,
    /// Header names are lower-cased.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) http10: bool,
}

impl Request {
    /// The first value of header `name` (lower-case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The path without the query string.
    pub(crate) fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(&self.target, |(path, _)| path)
    }

    /// The query string, without `?`.
    pub(crate) fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, query)| query)
    }

    /// Whether the connection may serve another request after this one.
    pub(crate) fn keep_alive(&self) -> bool {
        let close = self
            .header("connection")
            .is_some_and(|value| value.eq_ignore_ascii_case("close"));
        !close && !self.http10
    }
}

/// Looks up a lower-case header name.
pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// Reads one request; `None` when the client closed the connection cleanly
/// between requests.
pub(crate) async fn read_request<R: AsyncBufRead + Unpin>(
    io: &mut R,
) -> io::Result<Option<Request>> {
    let mut budget = MAX_HEAD;
    let request_line = loop {
        match read_line(io, &mut budget).await? {
            None => return Ok(None),
            // Tolerate stray blank lines between requests (RFC 9112 §2.2).
            Some(line) if line.is_empty() => continue,
            Some(line) => break line,
        }
    };
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!("bad request line {request_line:?}")));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(invalid(format!("unsupported version {version:?}")));
    }

    let mut headers = Vec::new();
    loop {
        let line = read_line(io, &mut budget)
            .await?
            .ok_or_else(|| invalid("connection closed inside the request head"))?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }

    let body = read_body(io, &headers).await?;
    Ok(Some(Request {
        method: method.to_owned(),
        target: target.to_owned(),
        headers,
        body,
        http10: version == "HTTP/1.0",
    }))
}

/// Reads a CRLF- (or LF-) terminated line without its ending; `None` on EOF
/// before any byte.
async fn read_line<R: AsyncBufRead + Unpin>(
    io: &mut R,
    budget: &mut usize,
) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let limit = u64::try_from(*budget).unwrap_or(u64::MAX);
    let read = (&mut *io).take(limit).read_until(b'\n', &mut line).await?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(invalid("request head too long or truncated"));
    }
    *budget -= read;
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| invalid("request head is not UTF-8"))
}

async fn read_body<R: AsyncBufRead + Unpin>(
    io: &mut R,
    headers: &[(String, String)],
) -> io::Result<Vec<u8>> {
    let chunked = header(headers, "transfer-encoding")
        .is_some_and(|value| value.to_ascii_lowercase().contains("chunked"));
    if chunked {
        return read_chunked_body(io).await;
    }
    let Some(length) = header(headers, "content-length") else {
        return Ok(Vec::new());
    };
    let length: usize = length
        .parse()
        .map_err(|_| invalid(format!("bad content-length {length:?}")))?;
    read_exact(io, length).await
}

async fn read_chunked_body<R: AsyncBufRead + Unpin>(io: &mut R) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut budget = MAX_HEAD;
    loop {
        let line = read_line(io, &mut budget)
            .await?
            .ok_or_else(|| invalid("connection closed inside a chunked body"))?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid(format!("bad chunk size {size:?}")))?;
        if size == 0 {
            break;
        }
        body.extend(read_exact(io, size).await?);
        let mut crlf = [0; 2];
        io.read_exact(&mut crlf).await?;
        if crlf != *b"\r\n" {
            return Err(invalid("chunk data not followed by CRLF"));
        }
    }
    // Trailers, up to the blank line.
    while read_line(io, &mut budget)
        .await?
        .is_some_and(|line| !line.is_empty())
    {}
    Ok(body)
}

async fn read_exact<R: AsyncRead + Unpin>(io: &mut R, length: usize) -> io::Result<Vec<u8>> {
    if length > MAX_BODY {
        return Err(invalid(format!("body of {length} bytes is too large")));
    }
    let mut body = vec![0; length];
    io.read_exact(&mut body).await?;
    Ok(body)
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// What the server answers to one request.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A complete body with `content-length`.
    Json(JsonReply),
    /// A `text/event-stream` body in chunked transfer encoding.
    Stream {
        steps: Vec<Step>,
        /// Payload bytes per HTTP chunk; `None` for one chunk per event.
        split_every: Option<usize>,
        /// Counts the text and reasoning pieces written to the connection.
        sent: Arc<AtomicUsize>,
    },
    /// No answer at all: wait until the client hangs up.
    Hang,
}

/// A complete JSON response.
#[derive(Debug, Clone)]
pub(crate) struct JsonReply {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// Wait this long before answering.
    pub(crate) delay: Duration,
    pub(crate) retry_after_s: Option<u64>,
    /// Extra response headers.
    pub(crate) headers: Vec<(String, String)>,
    /// Close the connection after this many body bytes.
    pub(crate) cut_at: Option<usize>,
}

impl JsonReply {
    /// An immediate response with `body`.
    pub(crate) fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            body: body.into(),
            delay: Duration::ZERO,
            retry_after_s: None,
            headers: Vec::new(),
            cut_at: None,
        }
    }

    /// Answers after `delay`.
    pub(crate) fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Adds a `retry-after` header.
    pub(crate) fn retry_after(mut self, seconds: Option<u64>) -> Self {
        self.retry_after_s = seconds;
        self
    }
}

impl From<JsonReply> for Reply {
    fn from(reply: JsonReply) -> Self {
        Self::Json(reply)
    }
}

/// Whether the connection can serve another request after a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    KeepAlive,
    Close,
}

/// Sends `reply` on `io`.
pub(crate) async fn write_reply<S>(io: &mut S, reply: Reply, keep_alive: bool) -> io::Result<Next>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let next = if keep_alive {
        Next::KeepAlive
    } else {
        Next::Close
    };
    match reply {
        Reply::Json(reply) => write_json(io, reply, next).await,
        Reply::Stream {
            steps,
            split_every,
            sent,
        } => write_stream(io, steps, split_every, &sent, next).await,
        Reply::Hang => {
            wait_for_hangup(io).await;
            Ok(Next::Close)
        }
    }
}

async fn write_json<S>(io: &mut S, reply: JsonReply, next: Next) -> io::Result<Next>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // A zero sleep still waits for the timer's next tick (about a
    // millisecond): a fast upstream answers at once.
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut head = status_line(reply.status);
    head.push_str("content-type: application/json\r\n");
    head.push_str(&format!("content-length: {}\r\n", reply.body.len()));
    if let Some(seconds) = reply.retry_after_s {
        head.push_str(&format!("retry-after: {seconds}\r\n"));
    }
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    end_head(&mut head, next);

    let mut bytes = head.into_bytes();
    let body_end = reply
        .cut_at
        .unwrap_or(reply.body.len())
        .min(reply.body.len());
    bytes.extend_from_slice(&reply.body[..body_end]);
    io.write_all(&bytes).await?;
    io.flush().await?;
    if reply.cut_at.is_some() {
        io.shutdown().await?;
        return Ok(Next::Close);
    }
    Ok(next)
}

async fn write_stream<S>(
    io: &mut S,
    steps: Vec<Step>,
    split_every: Option<usize>,
    sent: &AtomicUsize,
    next: Next,
) -> io::Result<Next>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = status_line(200);
    head.push_str("content-type: text/event-stream\r\n");
    head.push_str("cache-control: no-cache\r\n");
    head.push_str("transfer-encoding: chunked\r\n");
    end_head(&mut head, next);
    io.write_all(head.as_bytes()).await?;
    io.flush().await?;

    let mut body = ChunkedBody::new(split_every);
    let mut piece_next = false;
    for step in steps {
        match step {
            Step::Piece => piece_next = true,
            Step::Data(bytes) => {
                body.write(io, &bytes).await?;
                // Comments (OpenRouter's keep-alives) may come between the
                // marker and the piece's own event.
                // (With a split wire the piece's last bytes may still wait
                // in the split buffer: counted as written all the same.)
                if piece_next && !bytes.starts_with(b":") {
                    piece_next = false;
                    sent.fetch_add(1, Ordering::SeqCst);
                }
            }
            Step::Sleep(duration) => {
                body.flush(io).await?;
                tokio::time::sleep(duration).await;
            }
            Step::Stall => {
                body.flush(io).await?;
                wait_for_hangup(io).await;
                return Ok(Next::Close);
            }
            Step::Cut => {
                body.flush(io).await?;
                io.shutdown().await?;
                return Ok(Next::Close);
            }
        }
    }
    body.flush(io).await?;
    io.write_all(b"0\r\n\r\n").await?;
    io.flush().await?;
    Ok(next)
}

/// The payload of a chunked body, split into chunks of `split_every` bytes
/// across event boundaries, or one chunk per write when unsplit.
#[derive(Debug)]
struct ChunkedBody {
    split_every: Option<usize>,
    pending: Vec<u8>,
}

impl ChunkedBody {
    fn new(split_every: Option<usize>) -> Self {
        Self {
            split_every: split_every.filter(|size| *size > 0),
            pending: Vec::new(),
        }
    }

    async fn write<W: AsyncWrite + Unpin>(&mut self, io: &mut W, bytes: &[u8]) -> io::Result<()> {
        let Some(size) = self.split_every else {
            return write_chunk(io, bytes).await;
        };
        self.pending.extend_from_slice(bytes);
        while self.pending.len() >= size {
            let rest = self.pending.split_off(size);
            let piece = std::mem::replace(&mut self.pending, rest);
            write_chunk(io, &piece).await?;
            // Give the client a chance to read this piece on its own.
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    /// Sends what is held back, before a pause or the end of the body.
    async fn flush<W: AsyncWrite + Unpin>(&mut self, io: &mut W) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let piece = std::mem::take(&mut self.pending);
        write_chunk(io, &piece).await
    }
}

async fn write_chunk<W: AsyncWrite + Unpin>(io: &mut W, payload: &[u8]) -> io::Result<()> {
    if payload.is_empty() {
        // A zero-length chunk would end the body.
        return Ok(());
    }
    let mut chunk = format!("{:x}\r\n", payload.len()).into_bytes();
    chunk.extend_from_slice(payload);
    chunk.extend_from_slice(b"\r\n");
    io.write_all(&chunk).await?;
    io.flush().await
}

/// Reads and discards until the client closes the connection (or it fails).
async fn wait_for_hangup<R: AsyncRead + Unpin>(io: &mut R) {
    let mut scratch = [0; 1024];
    while matches!(io.read(&mut scratch).await, Ok(read) if read > 0) {}
}

fn status_line(status: u16) -> String {
    format!("HTTP/1.1 {status} {}\r\n", reason(status))
}

fn end_head(head: &mut String, next: Next) {
    if next == Next::Close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Site Overloaded",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(raw: &[u8]) -> io::Result<Option<Request>> {
        let mut reader = tokio::io::BufReader::new(raw);
        read_request(&mut reader).await
    }

    #[tokio::test]
    async fn parses_a_content_length_request() {
        let raw = b"POST /v1/messages?beta=true HTTP/1.1\r\nHost: x\r\nX-Api-Key: k\r\ncontent-length: 2\r\n\r\n{}";
        let request = parse(raw).await.unwrap().unwrap();
        assert_eq!(request.method, "POST");
        assert_eq!(request.path(), "/v1/messages");
        assert_eq!(request.query(), "beta=true");
        assert_eq!(request.header("x-api-key"), Some("k"));
        assert_eq!(request.body, b"{}");
        assert!(request.keep_alive());
    }

    #[tokio::test]
    async fn parses_a_chunked_request_body() {
        let raw = b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\n{\"a\r\n4\r\n\":1}\r\n0\r\nx-trailer: y\r\n\r\n";
        let request = parse(raw).await.unwrap().unwrap();
        assert_eq!(request.body, b"{\"a\":1}");
    }

    #[tokio::test]
    async fn clean_eof_between_requests_is_not_an_error() {
        assert!(parse(b"").await.unwrap().is_none());
        assert!(parse(b"GET / HTTP/1.1\r\nhost").await.is_err());
    }

    #[tokio::test]
    async fn split_body_crosses_event_boundaries_and_flushes_the_rest() {
        let mut out = Vec::new();
        let mut body = ChunkedBody::new(Some(4));
        body.write(&mut out, b"abcdef").await.unwrap();
        body.write(&mut out, b"gh").await.unwrap();
        body.write(&mut out, b"ij").await.unwrap();
        body.flush(&mut out).await.unwrap();
        assert_eq!(out, b"4\r\nabcd\r\n4\r\nefgh\r\n2\r\nij\r\n");
    }
}
