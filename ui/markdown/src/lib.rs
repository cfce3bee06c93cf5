//! Model output as sanitized HTML, for the compare view: [`render`] turns
//! Markdown into HTML where every tag is one this crate wrote (raw HTML is
//! text, links cannot navigate, images are not loaded), and
//! [`BlockSplitter`] cuts a streaming answer into final blocks, rendered
//! once, and the growing last block, re-rendered as it grows.
//!
//! It is plain Rust (no DOM), so `cargo test` runs its tests on the host;
//! the wasm UI uses it as is.
//!
//! ```
//! use switchboard_markdown::{BlockSplitter, render};
//! let mut blocks = BlockSplitter::new();
//! let text = "# Plan\n\n<script>alert(1)</script>\n\n```rust\nfn main() {}";
//! let done: Vec<String> = blocks.advance(text).into_iter().map(|r| render(&text[r])).collect();
//! assert_eq!(done, ["<h1>Plan</h1>\n", "&lt;script&gt;alert(1)&lt;/script&gt;\n"]);
//! // The unfinished fence already renders as a code block.
//! assert!(render(blocks.tail(text)).contains("<pre><code>"));
//! ```

mod blocks;
mod render;

pub use blocks::{BlockSplitter, split_all};
pub use render::{escape, escape_into, highlight, render};
