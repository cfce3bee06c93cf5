//! The compare view in the real window (Xvfb, mock providers), measured in
//! one run and printed (ratios and figures, not timed assertions):
//!
//! - render rate: six panes, each fed 3,000 tokens at about 2,000 tokens/s
//!   by a local mock; per pane, the time the provider took (the engine's
//!   total time of the attempt) over the time from the pane's request (once
//!   Send's budget check and the round's recording are done) to the moment
//!   the last token was drawn in the page. Goal: ≥ 0.99. Then its floor:
//!   `switchboard-floor` streaming the same answer at the same pace into
//!   six plain-text panes of a bare window, and the app's worst ratio as a
//!   share of the floor's.
//! - cold start: from the app process's start to an interactive compare
//!   view (the page says when it became usable). Goal: < 1 s.
//! - memory: the proportional set size (PSS) of every process of the app
//!   (the app and its WebKit processes) once idle after start, then after
//!   opening 50 saved conversations one after another. Goal: < 200 MB, flat.
//!   Then the floor, one window at a time: `switchboard-floor` (src/bin), a
//!   bare Tauri window with the app's tauri features and web view settings,
//!   with an empty page and with the UI in ui/dist when this crate was built
//!   (no backend), and how far the app after start is above each.
//!
//! It runs the binary in `$SWITCHBOARD_APP` (`make bench` builds the
//! release app and UI first and sets it to that app) and says which. The
//! floor embeds ui/dist as it was when this crate was built: run alone
//! after a debug UI build, it would show a debug UI beside a release app.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "benchmark binary"
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use switchboard_mock::{MockServer, MockUsage, Scenario};
use switchboard_tests::e2e::{App, Launch, app_binary};
use switchboard_tests::keychain::SecretService;
use switchboard_tests::{mock_models_config, seed_conversations};

const PANES: usize = 6;
const TOKENS: usize = 3000;
/// Two tokens a piece, a piece a millisecond: about 2,000 tokens/s.
const TOKENS_PER_PIECE: usize = 2;
const CONVERSATIONS: usize = 50;

/// Six models, two per wire protocol: `(provider id, model id)`.
fn models() -> Vec<(&'static str, String)> {
    (0..PANES)
        .map(|i| {
            let id = ["oa", "an", "gm"][i % 3];
            (id, format!("{id}-bench-{i}"))
        })
        .collect()
}

fn config(server: &MockServer) -> String {
    let models = models();
    let refs: Vec<(&str, &str)> = models.iter().map(|(p, m)| (*p, m.as_str())).collect();
    mock_models_config(server, &refs)
}

/// Processes of the app (the binary named `exe`) whose `SWITCHBOARD_HOME`
/// is `home`, with every process below them (WebKit's web and network
/// processes); the app's first.
fn app_processes(home: &Path, exe: &str) -> Vec<u32> {
    let want = format!("SWITCHBOARD_HOME={}", home.display());
    let mut parents: Vec<(u32, u32)> = Vec::new();
    let mut roots = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let ppid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        parents.push((pid, ppid));
        let exe_path = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        if exe_path.file_name().is_some_and(|n| n == exe)
            && std::fs::read(format!("/proc/{pid}/environ"))
                .unwrap_or_default()
                .split(|b| *b == 0)
                .any(|kv| kv == want.as_bytes())
        {
            roots.push(pid);
        }
    }
    let mut all = roots.clone();
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        all.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    all
}

/// `(pss_kb, pss_anon_kb)` of one process: all of it, and the part that is
/// the process's own data (heaps, JavaScript, wasm, graphics buffers) rather
/// than pages of the program and libraries it runs (shared with the other
/// processes that map them, and counted here in proportion).
fn memory_kb(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("Pss:"), field("Pss_Anon:"))
}

fn process_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// One process of the app: which one, its PSS and its own data (MB).
struct ProcessMemory {
    role: &'static str,
    pss: f64,
    data: f64,
}

/// The app's processes (`exe` with `SWITCHBOARD_HOME` = `home`) by role:
/// the app itself, WebKit's web process(es) and its network process. With
/// `$SWITCHBOARD_BENCH_SMAPS` set to a directory, each process's
/// `/proc/PID/smaps` is copied there as `<label>-<role>-<pid>.smaps`, to
/// attribute the figures to mappings afterwards.
fn processes_memory(home: &Path, exe: &str, label: &str) -> Vec<ProcessMemory> {
    let smaps_dir = std::env::var_os("SWITCHBOARD_BENCH_SMAPS").map(PathBuf::from);
    let mut out = Vec::new();
    for (i, pid) in app_processes(home, exe).into_iter().enumerate() {
        let name = process_name(pid);
        let role = if i == 0 {
            "app"
        } else if name.starts_with("WebKitWebProces") {
            "web"
        } else if name.starts_with("WebKitNetworkPr") {
            "network"
        } else {
            "other"
        };
        if let Some(dir) = &smaps_dir {
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::copy(
                format!("/proc/{pid}/smaps"),
                dir.join(format!("{label}-{role}-{pid}.smaps")),
            );
        }
        let (pss, anon) = memory_kb(pid);
        out.push(ProcessMemory {
            role,
            pss: pss as f64 / 1024.0,
            data: anon as f64 / 1024.0,
        });
    }
    out
}

/// Total PSS (MB) of the app's processes, and a line per process.
fn memory(home: &Path, exe: &str, label: &str) -> (f64, String, Vec<ProcessMemory>) {
    let procs = processes_memory(home, exe, label);
    let total = procs.iter().map(|p| p.pss).sum();
    let parts: Vec<String> = procs
        .iter()
        .map(|p| format!("{} {:.0} MB [{:.0} MB data]", p.role, p.pss, p.data))
        .collect();
    (total, parts.join(", "), procs)
}

/// PSS of each role in `procs` (MB), several processes of one role summed.
fn by_role(procs: &[ProcessMemory], role: &str) -> (f64, f64) {
    procs
        .iter()
        .filter(|p| p.role == role)
        .fold((0.0, 0.0), |(pss, data), p| (pss + p.pss, data + p.data))
}

/// The floor: `switchboard-floor` (src/bin), a bare Tauri window with the
/// app's tauri features and web view settings, idle 3 s after its page is
/// up, measured as the app is; `page` is `empty`, `copy` (`page_copy`, a
/// static copy of the app's page after start) or `ui` (the app's built UI
/// with no backend). Prints its figures and how far `app` is above them.
async fn floor(page: &str, app: &[ProcessMemory], page_copy: &Path) -> anyhow::Result<()> {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_switchboard-floor"));
    let home = tempfile::tempdir()?;
    let launch = Launch::new(format!("bench-floor-{page}"))
        .binary(&binary)
        .data_dir(home.path())
        .env("SWITCHBOARD_FLOOR_PAGE", page)
        .env("SWITCHBOARD_FLOOR_FILE", page_copy.display().to_string())
        .ready_when(if page == "empty" {
            "#floor"
        } else {
            "#status-bar"
        });
    let window = App::launch(launch).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (total, detail, procs) = memory(home.path(), "switchboard-floor", &format!("floor-{page}"));
    window.close().await?;
    let what = match page {
        "ui" => "the app's UI (ui/dist) with no backend",
        "copy" => "a static copy of the app's page after start (no script, no wasm)",
        _ => "an empty page",
    };
    let app_total: f64 = app.iter().map(|p| p.pss).sum();
    let diff: Vec<String> = ["app", "web", "network"]
        .iter()
        .map(|role| {
            let (a, a_data) = by_role(app, role);
            let (f, f_data) = by_role(&procs, role);
            format!("{role} {:+.0} MB [{:+.0} MB data]", a - f, a_data - f_data)
        })
        .collect();
    println!("  floor, a bare Tauri window with {what}: {total:.0} MB ({detail})");
    println!(
        "    the app after start is {:+.0} MB above it ({})",
        app_total - total,
        diff.join(", ")
    );
    Ok(())
}

/// Milliseconds the process `pid` has been running.
fn process_age_ms(pid: u32) -> f64 {
    let ticks_per_s = 100.0; // USER_HZ on Linux
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let start: f64 = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .nth(19)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    (uptime - start / ticks_per_s) * 1000.0
}

/// The file name of the app's process (`SWITCHBOARD_APP` may name a copy).
fn exe_name(binary: &Path) -> &str {
    binary
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("switchboard")
}

/// Milliseconds since the Unix epoch, as the page's `performance.timeOrigin`.
fn wall_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

/// The app's render rate; returns its worst pane's ratio.
async fn render_rate(binary: &Path) -> anyhow::Result<f64> {
    let server = MockServer::start().await?;
    for (_, model) in models() {
        let pieces: Vec<String> = (0..TOKENS / TOKENS_PER_PIECE)
            .map(|i| format!("t{} t{} ", 2 * i, 2 * i + 1))
            .collect();
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        server.script(
            &model,
            Scenario::default()
                .with_text(&refs)
                .with_gap(Duration::from_millis(1))
                .with_usage(MockUsage {
                    input: 10,
                    cached_input: 0,
                    output: TOKENS as u64,
                    reasoning: 0,
                }),
        );
    }
    let home = tempfile::tempdir()?;
    std::fs::write(home.path().join("config.toml"), config(&server))?;
    // A keychain that answers, as on a desktop: without one, every key
    // lookup waits on a D-Bus that is not there, which is not the view's
    // time.
    let keyring = SecretService::start()?;
    let mut launch = Launch::new("bench-render").data_dir(home.path());
    for (k, v) in keyring.env() {
        launch = launch.env(k, v);
    }
    let app = App::launch(launch).await?;
    let app_worst = std::cell::Cell::new(f64::NAN);
    let result = app
        .check(async {
            for _ in 2..PANES {
                app.click("#add-pane").await?;
            }
            for (i, (_, model)) in models().iter().enumerate() {
                app.pick_model(i + 1, model).await?;
            }
            app.type_into("#composer", "Go\u{E007}").await?;
            for i in 1..=PANES {
                app.wait_for(&format!(
                    ".pane:nth-of-type({i}) .answer-card[data-drawn-ms][data-status=\"done\"]"
                ))
                .await?;
            }
            let v = app
                .client()
                .execute(
                    "return [...document.querySelectorAll('.answer-card')].map(c => ({ \
                       drawn: Number(c.dataset.drawnMs), total: Number(c.dataset.totalMs), \
                       first: Number(c.dataset.firstMs), ttft: Number(c.dataset.ttftMs), \
                       sent: Number(c.dataset.sentAt), \
                       last: c.querySelector('.answer-text').textContent.trim().split(' ').pop() }))",
                    vec![],
                )
                .await?;
            println!(
                "render rate: {PANES} panes x {TOKENS} tokens at ~2,000 tokens/s ({})",
                binary.display()
            );
            let origin = app
                .client()
                .execute("return performance.timeOrigin", vec![])
                .await?
                .as_f64()
                .unwrap_or(f64::NAN);
            let requests = server.requests();
            let (now, now_wall) = (std::time::Instant::now(), wall_ms());
            let mut worst = f64::MAX;
            for (i, card) in v.as_array().into_iter().flatten().enumerate() {
                let (drawn, total) = (card["drawn"].as_f64(), card["total"].as_f64());
                let (Some(drawn), Some(total)) = (drawn, total) else {
                    println!("  pane {}: no figures ({card})", i + 1);
                    continue;
                };
                let ratio = total / drawn;
                worst = worst.min(ratio);
                // Where the difference goes: the request's way to the
                // provider (the mock's arrival time, on the wall clock as the
                // page's send is), and from the provider's end to the screen.
                let model = &models()[i].1;
                let reached = requests
                    .iter()
                    .find(|r| {
                        r.path.contains(model.as_str())
                            || r.body.as_ref().is_some_and(|b| b["model"] == model.as_str())
                    })
                    .map_or(f64::NAN, |r| {
                        let arrival = now_wall - now.duration_since(r.at).as_secs_f64() * 1000.0;
                        arrival - (origin + card["sent"].as_f64().unwrap_or(f64::NAN))
                    });
                let (first, ttft) = (
                    card["first"].as_f64().unwrap_or(f64::NAN),
                    card["ttft"].as_f64().unwrap_or(f64::NAN),
                );
                println!(
                    "  pane {}: provider {:.0} ms, on screen after {:.0} ms, ratio {:.3} \
                     (request at the provider {:.0} ms after the send, last token on screen \
                     {:.0} ms after the provider's end; first token: provider {:.0} ms, on \
                     screen {:.0} ms){}",
                    i + 1,
                    total,
                    drawn,
                    ratio,
                    reached,
                    drawn - reached - total,
                    ttft,
                    first,
                    if card["last"] == format!("t{}", TOKENS - 1).as_str() {
                        ""
                    } else {
                        " (LAST TOKEN MISSING)"
                    }
                );
            }
            println!("  worst ratio {worst:.3} (goal >= 0.99)");
            app_worst.set(worst);
            Ok(())
        })
        .await;
    app.close().await?;
    result.map(|()| app_worst.get())
}

/// The render rate's floor, right after the app's: `switchboard-floor`
/// streaming the same answer at the same pace into six plain-text panes of
/// a bare window (see its `stream` module), the ratio a page can reach here
/// with nothing of the app in between. Prints it and the app's against it.
async fn render_floor(app_worst: f64) -> anyhow::Result<()> {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_switchboard-floor"));
    let home = tempfile::tempdir()?;
    let launch = Launch::new("bench-floor-stream")
        .binary(&binary)
        .data_dir(home.path())
        .env("SWITCHBOARD_FLOOR_PAGE", "stream")
        .ready_when("#floor-stream");
    let window = App::launch(launch).await?;
    let result = window
        .check(async {
            for i in 1..=PANES {
                window
                    .wait_for(&format!(".pane:nth-of-type({i})[data-status=\"done\"]"))
                    .await?;
            }
            let v = window
                .client()
                .execute(
                    "return [...document.querySelectorAll('.pane')].map(p => ({ \
                       drawn: Number(p.dataset.drawnMs), total: Number(p.dataset.totalMs), \
                       last: p.querySelector('.text').textContent.trim().split(' ').pop() }))",
                    vec![],
                )
                .await?;
            println!(
                "  floor, a bare Tauri window streaming the same answers into six plain-text \
                 panes:"
            );
            let mut worst = f64::MAX;
            for (i, pane) in v.as_array().into_iter().flatten().enumerate() {
                let (Some(drawn), Some(total)) = (pane["drawn"].as_f64(), pane["total"].as_f64())
                else {
                    println!("    pane {}: no figures ({pane})", i + 1);
                    continue;
                };
                worst = worst.min(total / drawn);
                println!(
                    "    pane {}: stream {total:.0} ms, on screen after {drawn:.0} ms, ratio {:.3}{}",
                    i + 1,
                    total / drawn,
                    if pane["last"] == format!("t{}", TOKENS - 1).as_str() {
                        ""
                    } else {
                        " (LAST TOKEN MISSING)"
                    }
                );
            }
            println!(
                "    worst ratio {worst:.3}; the app's worst is {:.3} of it",
                app_worst / worst
            );
            Ok(())
        })
        .await;
    window.close().await?;
    result
}

/// Three cold starts of `binary` (its process named `exe`): from the
/// process's start to the moment `since_ready` (a script returning how many
/// ms ago the page became ready) says, once `ready` is on the page.
async fn start_times(
    binary: &Path,
    exe: &str,
    ready: &str,
    since_ready: &str,
) -> anyhow::Result<Vec<f64>> {
    let mut samples = Vec::new();
    for run in 0..3 {
        let home = tempfile::tempdir()?;
        let window = App::launch(
            Launch::new(format!("bench-start-{exe}-{run}"))
                .binary(binary)
                .data_dir(home.path())
                .ready_when(ready),
        )
        .await?;
        let result = window
            .check(async {
                let since_ready = window
                    .client()
                    .execute(since_ready, vec![])
                    .await?
                    .as_f64()
                    .unwrap_or(f64::NAN);
                let root = app_processes(home.path(), exe).first().copied();
                samples.push(root.map_or(f64::NAN, process_age_ms) - since_ready);
                Ok(())
            })
            .await;
        window.close().await?;
        result?;
    }
    Ok(samples)
}

async fn cold_start(binary: &Path) -> anyhow::Result<()> {
    let samples = start_times(
        binary,
        exe_name(binary),
        "#compare[data-ready-ms] #composer",
        "return Date.now() - (performance.timeOrigin + \
           Number(document.querySelector('#compare').dataset.readyMs))",
    )
    .await?;
    let shown: Vec<String> = samples.iter().map(|s| format!("{s:.0} ms")).collect();
    println!(
        "cold start to an interactive compare view ({}): {} (goal < 1 s; 10 ms resolution)",
        binary.display(),
        shown.join(", ")
    );
    // The floor: the bare window from its process's start to its empty
    // page's document being ready.
    let floor_samples = start_times(
        &PathBuf::from(env!("CARGO_BIN_EXE_switchboard-floor")),
        "switchboard-floor",
        "#floor",
        "return Date.now() - (performance.timeOrigin + \
           performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd)",
    )
    .await?;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let shown: Vec<String> = floor_samples.iter().map(|s| format!("{s:.0} ms")).collect();
    println!(
        "  floor, a bare Tauri window to its empty page: {}; the app takes {:.2}x as long",
        shown.join(", "),
        mean(&samples) / mean(&floor_samples)
    );
    Ok(())
}

/// 50 conversations of three rounds, three panes each, with Markdown
/// answers, written as the app would.
fn seed(home: &Path) -> anyhow::Result<()> {
    let body = "## Heading\n\nSome **bold** text and `code`.\n\n```rust\nfn main() { println!(\"hi\"); }\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- one\n- two\n\n".repeat(8);
    seed_conversations(home, CONVERSATIONS, 3, 3, |_, r, pane| {
        format!("Answer {r} from pane {pane}.\n\n{body}")
    })
}

async fn idle_memory(binary: &Path) -> anyhow::Result<()> {
    let home = tempfile::tempdir()?;
    seed(home.path())?;
    let app = App::launch(Launch::new("bench-memory").data_dir(home.path())).await?;
    let mut at_start = Vec::new();
    let page_copy = home.path().join("page-at-start.html");
    let result = app
        .check(async {
            app.wait_for("#compare #composer").await?;
            app.wait_for("#history-list .history-item").await?;
            tokio::time::sleep(Duration::from_secs(3)).await;
            let (start, detail, procs) = memory(home.path(), exe_name(binary), "start");
            at_start = procs;
            // The page as it stands, for the floor to show without its code.
            let copy = app.client().execute(STATIC_COPY, vec![]).await?;
            std::fs::write(&page_copy, copy.as_str().unwrap_or_default())?;
            println!("idle memory ({}):", binary.display());
            println!("  after start: {start:.0} MB ({detail})");
            // Opening the first conversations fills what the page keeps
            // for any of them (compiled code, fonts, heaps grown to their
            // working size); a leak shows as growth after that.
            let mut after_first = None;
            for i in 0..CONVERSATIONS {
                // Open the i-th conversation of the list from the sidebar.
                app.client()
                    .execute(
                        "const s = document.querySelector('#history-scroll'); \
                         s.scrollTop = arguments[0] * 50; s.dispatchEvent(new Event('scroll'));",
                        vec![Value::from(i)],
                    )
                    .await?;
                let css = format!(
                    "#history-list .history-item[data-conversation=\"{}\"] .history-open",
                    CONVERSATIONS - i
                );
                // Clicked from the page: a coordinate click can land on the
                // next row while the virtualized list settles.
                app.wait_for(&css).await?;
                app.client()
                    .execute(
                        "document.querySelector(arguments[0]).click()",
                        vec![Value::from(css.as_str())],
                    )
                    .await?;
                app.wait_for_content("#conversation-title", |t| {
                    t == format!("Conversation {}", CONVERSATIONS - 1 - i)
                })
                .await?;
                app.wait_for(".pane:nth-of-type(3) .answer-card[data-status=\"done\"]")
                    .await?;
                if (i + 1) % 10 == 0 {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    let (now, _, _) =
                        memory(home.path(), exe_name(binary), &format!("open{}", i + 1));
                    // What the page holds: elements in the document (the
                    // views of earlier conversations must be gone).
                    let nodes = app
                        .client()
                        .execute("return document.getElementsByTagName('*').length", vec![])
                        .await?;
                    println!(
                        "  after opening {} conversations: {now:.0} MB, {nodes} elements in the page",
                        i + 1
                    );
                    after_first.get_or_insert(now);
                }
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
            let (end, detail, _) = memory(home.path(), exe_name(binary), "idle50");
            println!(
                "  idle after {CONVERSATIONS}: {end:.0} MB ({detail}); growth {:+.0} MB \
                 (goal < 200 MB, flat)",
                end - start
            );
            if let Some(first) = after_first {
                println!(
                    "  from the 10th to the {CONVERSATIONS}th conversation: {:+.0} MB \
                     (what grows once the page has shown a few)",
                    end - first
                );
            }
            Ok(())
        })
        .await;
    app.close().await?;
    result?;
    // One window at a time: PSS shares WebKit's pages among the processes
    // that map them, so the floor is measured once the app is gone.
    floor("empty", &at_start, &page_copy).await?;
    floor("copy", &at_start, &page_copy).await?;
    floor("ui", &at_start, &page_copy).await
}

/// The page's document as it is, made static: its elements, with its
/// stylesheets' rules inlined, and no script, wasm or preload left.
const STATIC_COPY: &str = "\
    const doc = document.documentElement.cloneNode(true); \
    doc.querySelectorAll('script, link').forEach(e => e.remove()); \
    const style = document.createElement('style'); \
    style.textContent = [...document.styleSheets] \
      .map(s => [...s.cssRules].map(r => r.cssText).join('\\n')).join('\\n'); \
    doc.querySelector('head').appendChild(style); \
    return '<!doctype html>' + doc.outerHTML;";

fn main() -> anyhow::Result<()> {
    let binary: PathBuf = app_binary()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // `cargo bench --bench compare_ui -- render start memory`: only those.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    rt.block_on(async {
        if run("render") {
            let worst = render_rate(&binary).await?;
            render_floor(worst).await?;
        }
        if run("start") {
            cold_start(&binary).await?;
        }
        if run("memory") {
            idle_memory(&binary).await?;
        }
        Ok(())
    })
}
