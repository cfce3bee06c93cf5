//! A mock LLM provider for tests and benchmarks: real HTTP/1.1 on loopback,
//! speaking the OpenAI chat completions, Anthropic Messages and Gemini
//! `generateContent` wire protocols.
//!
//! [`MockServer`] listens on `127.0.0.1`; [`MockServer::script`] gives each
//! model name a [`Scenario`]: the text and reasoning it streams, the usage it
//! reports, its timing, how its bytes are framed on the wire ([`Wire`]) and how
//! it fails ([`Fault`]). The same scenario answers in whichever protocol the
//! request speaks, so one test suite can run against all three. Every request
//! is recorded ([`MockServer::requests`]), its body byte for byte, so tests
//! can assert what a client sent. Images and PDFs in a request are checked
//! as the real providers check them (base64 that decodes, a declared media
//! type that matches the bytes, the protocol's part shapes), and refused
//! with a 400 otherwise; [`samples`] makes files to send.
//!
//! The HTTP layer is written by hand on a `TcpListener`, so the mock controls
//! how bodies are split into chunks and TCP writes (splitting UTF-8 characters
//! and SSE lines), and can cut a connection mid-body.
//!
//! # Endpoints
//!
//! | Protocol  | Generate                                              | Models                                  |
//! |-----------|-------------------------------------------------------|-----------------------------------------|
//! | OpenAI    | `POST /v1/chat/completions`                           | `GET /v1/models`                        |
//! | Anthropic | `POST /v1/messages`                                   | `GET /v1/models` with `anthropic-version` |
//! | Gemini    | `POST /v1beta/models/{model}:streamGenerateContent?alt=sse`, `:generateContent` | `GET /v1beta/models` |
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use switchboard_mock::{Fault, MockServer, Protocol, Scenario};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let server = MockServer::start().await?;
//! server.script("fast", Scenario::default().with_text(&["Hi", " there"]));
//! server.script(
//!     "flaky",
//!     Scenario::default()
//!         .with_ttft(Duration::from_millis(20))
//!         .with_fault(Fault::Status { code: 429, retry_after_s: Some(1) }),
//! );
//!
//! // Point the client under test at the server...
//! let openai_base = server.base_url(Protocol::OpenAi);
//! assert!(openai_base.ends_with("/v1"));
//! // ...run it, then check what it sent.
//! assert_eq!(server.hits("fast"), 0);
//! assert!(server.requests().is_empty());
//! # Ok(())
//! # }
//! ```

mod anthropic;
mod attachments;
mod gemini;
mod http;
mod openai;
mod routes;
pub mod samples;
mod scenario;
mod server;
mod sse;

pub use scenario::{Fault, Finish, MockUsage, OpenAiUsage, Scenario, Wire};
pub use server::{MockServer, Protocol, RecordedRequest};
