//! The render rate's floor: six panes of plain text streamed the way the
//! app streams them, with nothing of the app in between. Each pane gets the
//! benchmark's answer (3,000 tokens, two a piece, the mock's one-millisecond
//! sleep between pieces, on a tokio runtime as the mock's are); every
//! [`TICK`] one script carries every pane's new text and readouts into the
//! page, as the app's stream hub does over its channel (a Tauri channel
//! message is such a script), and a pane's end goes out at once. The page
//! appends the text to one text node per pane, rewrites a readout line
//! and keeps each pane at its bottom, once per animation frame.
//!
//! Per pane it records, as the app's answer cards do, the time the stream
//! took (`data-total-ms`, from its first piece's start to its last) and
//! the time from the start message to the frame that drew the last text
//! (`data-drawn-ms`). The benchmark's ratio of the two is what this window,
//! this WebKit and this machine allow a page at that pace: no Markdown, no
//! HTTP, no engine.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tauri::WebviewWindow;
use tokio::sync::Notify;

const PANES: usize = 6;
const TOKENS: usize = 3000;
const TOKENS_PER_PIECE: usize = 2;
/// The mock's sleep between two pieces.
const GAP: Duration = Duration::from_millis(1);
/// The app's stream hub sends at most this often (its `FLUSH_EVERY`).
const TICK: Duration = Duration::from_millis(16);
/// Let the window settle after its load before the panes start.
const SETTLE: Duration = Duration::from_millis(1500);

/// What a pane produced since the last message.
#[derive(Default)]
struct Feed {
    text: String,
    tokens: usize,
    started: Option<Instant>,
    /// The stream's time once it ended, until sent.
    total_ms: Option<f64>,
    ended: bool,
}

/// Start streaming into `webview`'s panes (once its page has loaded).
pub fn start(webview: WebviewWindow) {
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(SETTLE).await;
        run(&webview).await;
    });
}

async fn run(webview: &WebviewWindow) {
    let feeds: Arc<Mutex<Vec<Feed>>> =
        Arc::new(Mutex::new((0..PANES).map(|_| Feed::default()).collect()));
    let ended = Arc::new(Notify::new());
    if webview.eval("floorStart()").is_err() {
        return;
    }
    for pane in 0..PANES {
        let (feeds, ended) = (Arc::clone(&feeds), Arc::clone(&ended));
        tauri::async_runtime::spawn(async move {
            let started = Instant::now();
            lock(&feeds)[pane].started = Some(started);
            for piece in 0..TOKENS / TOKENS_PER_PIECE {
                if piece > 0 {
                    tokio::time::sleep(GAP).await;
                }
                let mut all = lock(&feeds);
                let feed = &mut all[pane];
                feed.text
                    .push_str(&format!("t{} t{} ", 2 * piece, 2 * piece + 1));
                feed.tokens += TOKENS_PER_PIECE;
            }
            let mut all = lock(&feeds);
            all[pane].total_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
            drop(all);
            ended.notify_one();
        });
    }
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = ended.notified() => {}
        }
        let (message, finished) = {
            let mut all = lock(&feeds);
            let message = message(&mut all);
            (message, all.iter().all(|f| f.ended))
        };
        if let Some(message) = message
            && webview.eval(format!("floorUpdate({message})")).is_err()
        {
            return;
        }
        if finished {
            return;
        }
    }
}

/// The script's argument: `[[pane, text, tokens, elapsed ms, total ms or
/// null], ...]` for every pane with news, or `None` when none has any.
fn message(feeds: &mut [Feed]) -> Option<String> {
    let updates: Vec<serde_json::Value> = feeds
        .iter_mut()
        .enumerate()
        .filter(|(_, f)| !f.ended && (!f.text.is_empty() || f.total_ms.is_some()))
        .map(|(i, f)| {
            let elapsed = f
                .started
                .map_or(0.0, |s| s.elapsed().as_secs_f64() * 1000.0);
            let total = f.total_ms.take();
            f.ended = total.is_some();
            serde_json::json!([i, std::mem::take(&mut f.text), f.tokens, elapsed, total])
        })
        .collect();
    (!updates.is_empty()).then(|| serde_json::Value::from(updates).to_string())
}

fn lock(feeds: &Mutex<Vec<Feed>>) -> std::sync::MutexGuard<'_, Vec<Feed>> {
    feeds.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Six panes beside a sidebar's width, in the app's font and spacing; the
/// script draws what [`run`] sends once per animation frame.
pub const STREAM_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>floor</title><style>
* { box-sizing: border-box; }
html, body { margin: 0; height: 100%; font: 14px/1.5 system-ui, "Noto Sans", "DejaVu Sans", sans-serif; }
body { display: grid; grid-template-columns: 240px 1fr; }
.panes { display: grid; grid-template-columns: repeat(6, minmax(0, 1fr)); gap: 1px; background: #d0d4dc; min-height: 0; height: 100vh; }
.pane { display: flex; flex-direction: column; min-width: 0; min-height: 0; background: #fff; }
.pane-body { flex: 1; overflow-y: auto; padding: 10px; }
.text { margin: 0; padding: 10px 12px; overflow-wrap: anywhere; }
.readout { padding: 4px 12px; font-size: 12px; color: #667; font-variant-numeric: tabular-nums; }
</style></head><body id="floor-stream"><aside></aside><main class="panes">
<section class="pane"><div class="pane-body"><p class="text"></p><div class="readout"></div></div></section>
<section class="pane"><div class="pane-body"><p class="text"></p><div class="readout"></div></div></section>
<section class="pane"><div class="pane-body"><p class="text"></p><div class="readout"></div></div></section>
<section class="pane"><div class="pane-body"><p class="text"></p><div class="readout"></div></div></section>
<section class="pane"><div class="pane-body"><p class="text"></p><div class="readout"></div></div></section>
<section class="pane"><div class="pane-body"><p class="text"></p><div class="readout"></div></div></section>
</main><script>
"use strict";
const panes = [...document.querySelectorAll(".pane")].map((pane) => ({
  pane,
  body: pane.querySelector(".pane-body"),
  text: pane.querySelector(".text").appendChild(document.createTextNode("")),
  readout: pane.querySelector(".readout"),
  pending: "", tokens: 0, elapsed: 0, total: null, shown: null, done: false,
}));
let started = null;
let scheduled = false;
window.floorStart = () => { started = performance.now(); };
window.floorUpdate = (updates) => {
  for (const [i, text, tokens, elapsed, total] of updates) {
    const p = panes[i];
    p.pending += text;
    p.tokens = tokens;
    p.elapsed = elapsed;
    if (total !== null) p.total = total;
  }
  if (!scheduled) { scheduled = true; requestAnimationFrame(frame); }
};
function frame() {
  scheduled = false;
  const now = performance.now();
  for (const p of panes) {
    if (p.pending) { p.text.appendData(p.pending); p.pending = ""; p.shown = now; }
    p.readout.textContent = `${p.tokens} tokens · ${(p.elapsed / 1000).toFixed(2)} s`;
  }
  for (const p of panes) p.body.scrollTop = p.body.scrollHeight;
  for (const p of panes) {
    if (p.total !== null && !p.done) {
      p.done = true;
      p.pane.dataset.totalMs = p.total.toFixed(1);
      p.pane.dataset.drawnMs = (p.shown - started).toFixed(1);
      p.pane.dataset.status = "done";
    }
  }
}
</script></body></html>"#;
