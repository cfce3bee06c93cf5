//! `ask`: one prompt to every target in parallel, streamed to the terminal
//! (labelled) or reported as one JSON array. A target is `provider:model`
//! or `@route`; both run through the engine's router, so policy, health and
//! the attempt trace apply to each (a target named directly is tried once,
//! even while cooling down; a route retries and falls back as configured).
//!
//! `--attach FILE` (repeatable) sends images (PNG, JPEG, WebP, GIF) and PDFs
//! with the prompt, before its text; a file that is none of these is a
//! usage error, and a target whose model does not take it (or whose
//! provider's size limits refuse it) fails with kind `unsupported` without
//! anything being sent to it. The files are stored once in the data
//! directory with the conversation (not with `--incognito`).
//!
//! Ctrl-C (SIGINT) or SIGTERM stops every target through the router's
//! cancellation token: each ends as `stopped`, its text so far is printed
//! and saved in history, its cost (estimated for what arrived) is in the
//! ledger, and the process exits 130 (SIGINT) or 143 (SIGTERM). A second
//! signal exits at once. Each answer's history row exists from the start
//! and is checkpointed while it streams, so even `kill -9` loses at most a
//! second of it (the next Switchboard process marks it `interrupted`).
//!
//! `--judge TARGET` then asks one more target which answer is best (or,
//! with `--merge`, to write one from the best parts). It sees the answers
//! as "Answer A", "Answer B"…; its cost goes to the ledger and the
//! conversation like any answer's, and its verdict is never a vote.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use clap::Args;
use serde_json::{Value, json};
use switchboard_engine::hooks::AttemptOutcome;
use switchboard_engine::routing::{
    Route, RouteAttempt, RouteEvent, RouteOutcome, RouteTarget, Router, RoutingConfig, StaticKeys,
};
use switchboard_engine::{
    Attachment, AttemptCost, AttemptResult, ChatRequest, Client, Config, ConversationId, DataDir,
    ErrorKind, KeyStore, Message, MessageId, ProviderConfig, ProviderError, Secret, Store,
    StoreError, StreamEvent, Usage, key_hint, provider_key, store,
};

use switchboard_engine::catalog::{list_models, save_live};
use switchboard_engine::judge;
use switchboard_engine::store::{DeferredSettles, NewJudgment};
use switchboard_protocol::JudgeTask;

use crate::UsageError;
use crate::output::{out, warning};

#[derive(Debug, Args)]
pub struct AskArgs {
    /// A target `provider:model`, or `@route` for a route from config.toml
    /// (repeat for several; they run in parallel).
    #[arg(short = 'm', long = "model", value_name = "TARGET")]
    targets: Vec<String>,
    /// System prompt.
    #[arg(long)]
    system: Option<String>,
    /// Most output tokens.
    #[arg(long)]
    max_tokens: Option<u32>,
    /// Sampling temperature.
    #[arg(long)]
    temperature: Option<f32>,
    /// Nucleus sampling.
    #[arg(long)]
    top_p: Option<f32>,
    /// Stop sequence (repeatable).
    #[arg(long = "stop")]
    stop: Vec<String>,
    /// Print one JSON array instead of streaming text.
    #[arg(long)]
    json: bool,
    /// Record nothing in history (the cost still counts against budgets).
    #[arg(long)]
    incognito: bool,
    /// Tag the conversation for spend attribution (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// An image (PNG, JPEG, WebP, GIF) or PDF to send with the prompt
    /// (repeatable; sent in this order, before the text).
    #[arg(long = "attach", value_name = "FILE")]
    attach: Vec<std::path::PathBuf>,
    /// After the answers, ask this target (`provider:model` or `@route`)
    /// which is best and why. It sees them as "Answer A", "Answer B"…,
    /// never by model; its cost is recorded like any answer's and its
    /// verdict is never counted as a vote.
    #[arg(long, value_name = "TARGET")]
    judge: Option<String>,
    /// With --judge: ask it to write one answer from the best parts of all
    /// of them instead of a verdict.
    #[arg(long, requires = "judge")]
    merge: bool,
    /// With --judge: the judge's instructions (the default asks for a
    /// verdict line and reasons).
    #[arg(long, value_name = "TEXT", requires = "judge")]
    judge_prompt: Option<String>,
    /// The prompt.
    prompt: String,
}

/// Read the files given with `--attach`, typed from their bytes.
fn read_attachments(paths: &[std::path::PathBuf]) -> Result<Vec<Attachment>, UsageError> {
    paths
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path)
                .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
            let name = path.file_name().and_then(|n| n.to_str());
            Attachment::from_bytes(bytes, name).map_err(|e| UsageError(format!("--attach: {e}")))
        })
        .collect()
}

/// One target, resolved: a route, or a single target named directly.
struct Target {
    label: String,
    route: Route,
}

fn parse_target(config: &Config, routing: &RoutingConfig, raw: &str) -> Result<Target, UsageError> {
    if let Some(name) = raw.strip_prefix('@') {
        let route = routing.route(name).ok_or_else(|| {
            let known: Vec<String> = routing.routes.keys().map(|k| format!("@{k}")).collect();
            UsageError(if known.is_empty() {
                format!(
                    "unknown route {raw:?}: {} defines no [routes.<name>]",
                    config.path.display()
                )
            } else {
                format!("unknown route {raw:?} (known: {})", known.join(", "))
            })
        })?;
        return Ok(Target {
            label: raw.to_owned(),
            route: route.clone(),
        });
    }
    let Some((provider_id, model)) = raw
        .split_once(':')
        .filter(|(p, m)| !p.is_empty() && !m.is_empty())
    else {
        return Err(UsageError(format!(
            "target {raw:?} is not provider:model (e.g. openai:gpt-6-luna) or @route"
        )));
    };
    let provider = config.provider(provider_id).ok_or_else(|| {
        let mut known: Vec<String> = config.providers.keys().cloned().collect();
        known.extend(switchboard_engine::provider::presets().keys().filter(|k| *k != "custom").cloned());
        known.sort();
        known.dedup();
        UsageError(format!(
            "unknown provider {provider_id:?} in target {raw:?}; configure it in {} or use one of: {}",
            config.path.display(),
            known.join(", ")
        ))
    })?;
    Ok(Target {
        label: raw.to_owned(),
        route: routing.single(RouteTarget::new(provider, model)),
    })
}

/// The key for `provider` (see [`provider_key`]).
pub async fn key_for(provider: &ProviderConfig) -> Result<Option<Secret>, ProviderError> {
    provider_key(&KeyStore::new(), provider).await
}

/// How `ask` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every target ran to its end; true when every one answered.
    Ran(bool),
    /// A signal stopped it: exit with this code (128 + the signal).
    Signalled(u8),
}

/// Exit code after SIGINT (Ctrl-C): 128 + 2, as shells report it.
pub const EXIT_SIGINT: u8 = 130;
/// Exit code after SIGTERM: 128 + 15.
pub const EXIT_SIGTERM: u8 = 143;

/// The signals that stop `ask`, listened to from the moment they are
/// installed (before that, SIGINT ends the process as usual).
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Option<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Some(Self {
                interrupt: signal(SignalKind::interrupt()).ok()?,
                terminate: signal(SignalKind::terminate()).ok()?,
            })
        }
        #[cfg(not(unix))]
        Some(Self {})
    }

    /// The next signal, as the exit code it calls for.
    async fn next(&mut self) -> Option<u8> {
        #[cfg(unix)]
        {
            tokio::select! {
                got = self.interrupt.recv() => got.map(|()| EXIT_SIGINT),
                got = self.terminate.recv() => got.map(|()| EXIT_SIGTERM),
            }
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c().await.ok().map(|()| EXIT_SIGINT)
    }
}

/// Cancel `cancel` on the first signal, remembering its exit code in
/// `got`; exit at once on a second one.
async fn watch_signals(mut signals: Signals, cancel: CancellationToken, got: Arc<AtomicU8>) {
    while let Some(code) = signals.next().await {
        if got.load(Ordering::SeqCst) != 0 {
            note("stopped again: exiting without waiting");
            std::process::exit(i32::from(code));
        }
        got.store(code, Ordering::SeqCst);
        cancel.cancel();
        note("stopping every target; what arrived is kept and billed (again to exit at once)");
    }
}

pub async fn run(args: AskArgs) -> Result<Ended, UsageError> {
    // From here on a signal stops the targets instead of killing the
    // process, so what they streamed is saved and billed.
    let cancel = CancellationToken::new();
    let signalled = Arc::new(AtomicU8::new(0));
    if let Some(signals) = Signals::install() {
        tokio::spawn(watch_signals(
            signals,
            cancel.clone(),
            Arc::clone(&signalled),
        ));
    }
    if args.targets.is_empty() {
        return Err(UsageError(
            "give at least one target: -m provider:model or -m @route".into(),
        ));
    }
    let attachments = read_attachments(&args.attach)?;
    if args.prompt.trim().is_empty() && attachments.is_empty() {
        return Err(UsageError("the prompt is empty".into()));
    }
    let dir = DataDir::resolve().map_err(|e| UsageError(e.to_string()))?;
    let config = Config::load(&dir.config_file()).map_err(|e| UsageError(e.to_string()))?;
    for w in &config.warnings {
        warning(&format!("{}: {w}", config.path.display()));
    }
    let routing = RoutingConfig::from_config(&config).map_err(|e| UsageError(e.to_string()))?;
    for w in &routing.warnings {
        warning(w);
    }
    let targets = args
        .targets
        .iter()
        .map(|t| parse_target(&config, &routing, t))
        .collect::<Result<Vec<_>, _>>()?;
    let judge = match &args.judge {
        Some(_) if targets.len() < 2 => {
            return Err(UsageError(
                "--judge compares answers: give at least two targets".into(),
            ));
        }
        Some(raw) => Some(parse_target(&config, &routing, raw)?),
        None => None,
    };
    let mut catalog = config.catalog();
    catalog.load_live_cache(&crate::models::cache_dir(&dir));
    let client = Client::new();

    // Every provider any target may use, looked up once, off the async
    // threads (the keychain blocks).
    let providers: Vec<&ProviderConfig> = {
        let mut seen = HashSet::new();
        targets
            .iter()
            .chain(&judge)
            .flat_map(|t| &t.route.targets)
            .map(|rt| &rt.provider)
            .filter(|p| seen.insert(p.id.clone()))
            .collect()
    };
    let mut keys = StaticKeys::new();
    let mut keyless: HashSet<String> = HashSet::new();
    for p in &providers {
        let key = key_for(p).await;
        if matches!(key, Ok(None)) {
            keyless.insert(p.id.clone());
        }
        keys.insert(&p.id, key);
    }

    // Providers whose model list carries prices (OpenRouter): fetch it once
    // when a target's price is unknown and a key is at hand.
    let pairs: BTreeSet<(String, String)> = targets
        .iter()
        .chain(&judge)
        .flat_map(|t| &t.route.targets)
        .map(|rt| (rt.provider.id.clone(), rt.model.clone()))
        .collect();
    let mut fetched = HashSet::new();
    for (pid, model) in &pairs {
        let Some(provider) = providers.iter().find(|p| p.id == *pid) else {
            continue;
        };
        if provider.live_prices
            && !fetched.contains(pid)
            && catalog.price(provider, model).is_none()
            && let Ok(key) = keys_lookup(&keys, provider)
            && let Ok(models) = list_models(&client, provider, key.as_ref()).await
        {
            fetched.insert(pid.clone());
            if let Err(e) = save_live(&crate::models::cache_dir(&dir), pid, &models) {
                warning(&format!("could not cache the model list of {pid}: {e}"));
            }
            catalog.add_live(pid, models);
        }
    }

    // History, health and the spend ledger live in the data directory's
    // database, shared with the app and with other CLI runs.
    let store = Store::open(&dir).map_err(|e| UsageError(e.to_string()))?;
    let gate = store
        .budget_gate(&config)
        .map_err(|e| UsageError(e.to_string()))?;
    let router = Router::new(catalog, store.health(), Arc::clone(&gate), Arc::new(keys))
        .with_policy(routing.policy.clone())
        .with_client(client);
    let recorder = store.recorder(args.incognito);
    let record_error = |e: StoreError| warning(&format!("not saved to history: {e}"));
    let title = match attachments.first() {
        Some(a) if args.prompt.trim().is_empty() => a.display_name(),
        _ => store::title_of(&args.prompt),
    };
    let conversation = recorder
        .start_conversation(&title, &args.tags)
        .map_err(record_error)
        .ok();
    // The files are stored once in the data directory (nothing incognito).
    let stored: Result<Vec<store::AttachmentRef>, StoreError> = if recorder.is_incognito() {
        Ok(Vec::new())
    } else {
        attachments
            .iter()
            .map(|a| {
                store
                    .put_attachment(a)
                    .map(|_| store::AttachmentRef::from(a))
            })
            .collect()
    };
    let question = match (conversation, stored) {
        (Some(c), Ok(refs)) => recorder
            .add_user_message_with(c, None, &args.prompt, &refs)
            .map_err(record_error)
            .ok(),
        (_, Err(e)) => {
            record_error(e);
            None
        }
        (None, _) => None,
    };
    let spend = recorder.spend_context(
        conversation.unwrap_or(ConversationId(0)),
        "",
        "",
        None,
        &args.tags,
    );
    // Each answer's row exists before its request is sent, and is
    // checkpointed while it streams (a crash leaves it `interrupted`).
    let answers: Vec<Option<MessageId>> = targets
        .iter()
        .enumerate()
        .map(|(pane, t)| {
            let (c, q) = (conversation?, question?);
            let pane = u32::try_from(pane).unwrap_or(u32::MAX);
            recorder
                .begin_answer(c, q, pane, &t.label)
                .map_err(record_error)
                .ok()
        })
        .collect();

    let multi = targets.len() > 1;
    let streaming_text = !args.json;
    let runs = targets.iter().zip(&answers).map(|(t, answer)| {
        let router = &router;
        let args = &args;
        let keyless = &keyless;
        let cancel = &cancel;
        let spend = switchboard_engine::hooks::SpendContext {
            message: (*answer).filter(|_| !recorder.is_incognito()).map(|m| m.0),
            ..spend.clone()
        };
        let attachments = &attachments;
        async move {
            let mut request = ChatRequest::new("", &args.prompt);
            request.messages = vec![Message::user_with(&args.prompt, attachments.clone())];
            request.system = args.system.clone();
            request.params.max_tokens = args.max_tokens;
            request.params.temperature = args.temperature;
            request.params.top_p = args.top_p;
            request.params.stop = args.stop.clone();
            let mut printer = LinePrinter::new(if multi { Some(t.label.clone()) } else { None });
            let routed = !t.route.is_explicit();
            let outcome = router
                .run_until(&t.route, &request, &spend, cancel, |ev| match ev {
                    RouteEvent::Stream { event, .. } => {
                        if streaming_text && let StreamEvent::TextDelta(text) = &event.event {
                            printer.push(text);
                        }
                    }
                    RouteEvent::Waiting {
                        target,
                        error,
                        wait,
                    } if streaming_text => {
                        let asked = if error.retry_after.is_some() {
                            " (as its Retry-After asks)"
                        } else {
                            ""
                        };
                        note(&format!(
                            "{}: retrying {target} in {:.0} ms{asked}",
                            t.label,
                            wait.as_secs_f64() * 1000.0
                        ));
                    }
                    RouteEvent::Finished(a) if streaming_text && routed => {
                        if let Some(line) = attempt_note(a) {
                            note(&format!("{}: {line}", t.label));
                        }
                    }
                    RouteEvent::Sending { .. }
                    | RouteEvent::Waiting { .. }
                    | RouteEvent::Finished(_) => {}
                })
                .await;
            if streaming_text {
                printer.flush();
            }
            with_key_hints(outcome, keyless)
        }
    });
    let outcomes: Vec<RouteOutcome> = futures::future::join_all(runs).await;
    // Every stream has ended: writing history here blocks nothing. Each
    // answer's row, where it has one, for the judge's labels.
    let mut rows: Vec<Option<MessageId>> = Vec::with_capacity(targets.len());
    for (pane, ((t, o), answer)) in targets.iter().zip(&outcomes).zip(&answers).enumerate() {
        let pane = u32::try_from(pane).unwrap_or(u32::MAX);
        let trace = o.trace();
        let written = match (answer, conversation, question) {
            // A row that could not be finished is still the answer's (the
            // next start marks it interrupted).
            (Some(id), _, _) => {
                let answer = store::Answer {
                    pane: pane.into(),
                    target: &t.label,
                    result: &o.result,
                    trace: &trace,
                };
                if let Err(e) = recorder.finish_answer(*id, &answer) {
                    record_error(e);
                }
                Some(*id)
            }
            (None, Some(c), Some(q)) => recorder
                .add_answer(c, q, pane, &t.label, &o.result, &trace)
                .map_err(record_error)
                .ok(),
            _ => None,
        };
        rows.push(written);
    }
    let judged = match &judge {
        Some(j) if signalled.load(Ordering::SeqCst) == 0 => {
            let candidates: Vec<(&str, Option<MessageId>)> = targets
                .iter()
                .zip(&rows)
                .map(|(t, row)| (t.label.as_str(), *row))
                .collect();
            // Its ledger rows are written with its verdict, in one
            // transaction (or through the gate when no verdict is kept).
            let deferred = Arc::new(DeferredSettles::new(Arc::clone(&gate)));
            let judge_router = router.clone().with_budget(Arc::clone(&deferred) as _);
            let run = JudgeRun {
                judge: j,
                router: &judge_router,
                cancel: &cancel,
                spend: &spend,
                streaming_text,
            };
            let judged = run.judge(&args, &candidates, &outcomes).await;
            if let (Some(j), Some(q), false) = (&judged, question, recorder.is_incognito()) {
                let mut result = j.outcome.result.clone();
                // The judgment costs what all its billed attempts did.
                result.cost = j.outcome.cost();
                let new = NewJudgment {
                    round: q,
                    task: j.task,
                    prompt: &j.prompt,
                    target: &j.label,
                    result: &result,
                    labels: &j.rows,
                };
                if let Err(e) = store.record_judged(&new, &deferred) {
                    record_error(e);
                }
            }
            judged
        }
        _ => None,
    };
    let all_ok = outcomes.iter().all(RouteOutcome::is_ok)
        && judged.as_ref().is_none_or(|j| j.outcome.is_ok());
    if args.json {
        let array: Vec<Value> = targets
            .iter()
            .zip(&outcomes)
            .map(|(t, o)| outcome_json(&t.label, o))
            .collect();
        // With a judge, an object: the answers as without one, and the judge.
        let doc = match &judged {
            Some(j) => {
                let mut verdict = outcome_json(&j.label, &j.outcome);
                verdict["task"] = json!(j.task.as_str());
                verdict["answers"] = json!(
                    j.answers
                        .iter()
                        .map(|(letter, target)| json!({ "label": letter, "target": target }))
                        .collect::<Vec<_>>()
                );
                json!({ "answers": array, "judge": verdict })
            }
            None => Value::Array(array),
        };
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        ));
    } else {
        if !multi {
            out("\n");
        }
        for (t, o) in targets.iter().zip(&outcomes) {
            out(&summary(&t.label, o));
        }
        if let Some(j) = &judged {
            for (letter, target) in &j.answers {
                out(&format!("Answer {letter} = {target}\n"));
            }
            out(&summary(&format!("judge {}", j.label), &j.outcome));
        }
    }
    match signalled.load(Ordering::SeqCst) {
        0 => Ok(Ended::Ran(all_ok)),
        code => Ok(Ended::Signalled(code)),
    }
}

/// What a judge said, and which answer each of its labels stood for.
struct Judged {
    label: String,
    task: JudgeTask,
    prompt: String,
    /// `("A", target)`…, to print.
    answers: Vec<(String, String)>,
    /// `("A", answer message id)`… of the answers in history, to record.
    rows: Vec<(String, i64)>,
    outcome: RouteOutcome,
}

/// The judge and what it runs with.
struct JudgeRun<'a> {
    judge: &'a Target,
    router: &'a Router,
    cancel: &'a CancellationToken,
    spend: &'a switchboard_engine::hooks::SpendContext,
    streaming_text: bool,
}

impl JudgeRun<'_> {
    /// Ask the judge about the answers that have text (`None`, with a
    /// warning, when fewer than two have). `answers`: each target's label
    /// and its answer's row in history, if any.
    async fn judge(
        &self,
        args: &AskArgs,
        answers: &[(&str, Option<MessageId>)],
        outcomes: &[RouteOutcome],
    ) -> Option<Judged> {
        let answered: Vec<(&str, Option<MessageId>, &str)> = answers
            .iter()
            .zip(outcomes)
            .filter(|(_, o)| !o.result.text.trim().is_empty())
            .map(|((l, row), o)| (*l, *row, o.result.text.as_str()))
            .collect();
        if answered.len() < 2 {
            warning("--judge: fewer than two answers have text; nothing to judge");
            return None;
        }
        let task = if args.merge {
            JudgeTask::Merge
        } else {
            JudgeTask::Verdict
        };
        let prompt = args
            .judge_prompt
            .clone()
            .unwrap_or_else(|| judge::default_prompt(task).to_owned());
        let texts: Vec<&str> = answered.iter().map(|(_, _, t)| *t).collect();
        let request = ChatRequest::new("", judge::judge_message(&prompt, &args.prompt, &texts));
        let spend = switchboard_engine::hooks::SpendContext {
            message: None,
            ..self.spend.clone()
        };
        let label = self.judge.label.clone();
        let mut printer = LinePrinter::new(Some(format!("judge {label}")));
        let outcome = self
            .router
            .run_until(&self.judge.route, &request, &spend, self.cancel, |ev| {
                if self.streaming_text
                    && let RouteEvent::Stream { event, .. } = ev
                    && let StreamEvent::TextDelta(text) = &event.event
                {
                    printer.push(text);
                }
            })
            .await;
        if self.streaming_text {
            printer.flush();
        }
        Some(Judged {
            label,
            task,
            prompt,
            answers: judge::labelled(answered.iter().map(|(l, _, _)| (*l).to_owned())).collect(),
            rows: judge::labelled(answered.iter().map(|(_, row, _)| *row))
                .filter_map(|(letter, row)| Some((letter, row?.0)))
                .collect(),
            outcome,
        })
    }
}

fn keys_lookup(
    keys: &StaticKeys,
    provider: &ProviderConfig,
) -> Result<Option<Secret>, ProviderError> {
    use switchboard_engine::routing::KeyResolver;
    keys.key(provider)
}

/// A local server that wants a key after all: say how to give it one.
fn with_key_hints(mut o: RouteOutcome, keyless: &HashSet<String>) -> RouteOutcome {
    let hint = |e: &mut ProviderError| {
        if e.kind == ErrorKind::Auth && keyless.contains(&e.provider) && e.status.is_some() {
            e.message = format!("{} (no key was sent: {})", e.message, key_hint(&e.provider));
        }
    };
    if let Some(e) = o.result.error.as_mut() {
        hint(e);
    }
    for a in &mut o.attempts {
        if let Some(e) = a.error.as_mut() {
            hint(e);
            if let AttemptOutcome::Error { message, .. } = &mut a.record.outcome {
                message.clone_from(&e.message);
            }
        }
    }
    o
}

/// A line on stderr about what the router did (text mode only; stdout
/// keeps the answer).
fn note(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "switchboard-cli: {message}");
}

fn error_words(e: &ProviderError) -> String {
    let status = e.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
    format!("{}{status}: {}", e.kind, e.message)
}

/// What to say about a finished attempt on stderr, if anything.
fn attempt_note(a: &RouteAttempt) -> Option<String> {
    match &a.record.outcome {
        AttemptOutcome::Ok => None,
        AttemptOutcome::Stopped => Some(format!("{}: stopped", a.target)),
        AttemptOutcome::Error { kind, message } => Some(match &a.error {
            Some(e) => format!("{}: {}", a.target, error_words(e)),
            None => format!("{}: {kind}: {message}", a.target),
        }),
        AttemptOutcome::Skipped { kind, reason } => {
            Some(format!("{}: skipped ({kind}): {reason}", a.target))
        }
    }
}

/// Streams text to stdout; with a label, whole lines prefixed `label │ `.
struct LinePrinter {
    label: Option<String>,
    partial: String,
}

impl LinePrinter {
    fn new(label: Option<String>) -> Self {
        Self {
            label,
            partial: String::new(),
        }
    }

    fn push(&mut self, text: &str) {
        let Some(label) = &self.label else {
            out(text);
            return;
        };
        self.partial.push_str(text);
        while let Some(pos) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=pos).collect();
            out(&format!("{label} │ {line}"));
        }
    }

    fn flush(&mut self) {
        if let Some(label) = &self.label
            && !self.partial.is_empty()
        {
            out(&format!(
                "{label} │ {}\n",
                std::mem::take(&mut self.partial)
            ));
        }
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

fn error_json(e: &ProviderError) -> Value {
    json!({
        "kind": e.kind.as_str(),
        "message": e.message,
        "status": e.status,
        "retry_after_s": e.retry_after.map(|d| d.as_secs_f64()),
    })
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cached_input_tokens": u.cached_input_tokens,
        "cache_write_tokens": u.cache_write_tokens,
        "cache_write_1h_tokens": u.cache_write_1h_tokens,
        "reasoning_tokens": u.reasoning_tokens,
    })
}

fn attempt_json(a: &RouteAttempt) -> Value {
    let r = &a.record;
    let (outcome, error, skip) = match &r.outcome {
        AttemptOutcome::Ok => ("ok", Value::Null, Value::Null),
        AttemptOutcome::Stopped => (
            "stopped",
            a.error.as_ref().map_or(Value::Null, error_json),
            Value::Null,
        ),
        AttemptOutcome::Error { kind, message } => (
            "error",
            a.error
                .as_ref()
                .map_or_else(|| json!({ "kind": kind, "message": message }), error_json),
            Value::Null,
        ),
        AttemptOutcome::Skipped { kind, reason } => (
            "skipped",
            Value::Null,
            json!({ "kind": kind, "reason": reason }),
        ),
    };
    json!({
        "target": a.target,
        "provider": r.provider,
        "model": r.model,
        "outcome": outcome,
        "error": error,
        "skip": skip,
        "retry": a.retry,
        "waited_ms": ms(a.waited),
        "probe": a.probe,
        "started_unix_ms": r.started_unix_ms,
        "ttft_ms": r.ttft_ms,
        "thinking_ms": r.thinking_ms,
        "total_ms": r.total_ms,
        "usage": usage_json(&r.usage),
        "cost_usd": r.cost.map(|c| c.total.as_f64()),
        "cost_nanos": r.cost.map(|c| c.total.nanos()),
        "cost_estimated": r.cost.is_some_and(|c| c.estimated()),
    })
}

/// `ok`, `stopped` or `error`.
fn outcome_word(r: &AttemptResult) -> &'static str {
    if r.is_ok() {
        "ok"
    } else if r.is_stopped() {
        "stopped"
    } else {
        "error"
    }
}

fn outcome_json(label: &str, o: &RouteOutcome) -> Value {
    let r = &o.result;
    // The answer costs what all its billed attempts did, as in the ledger.
    let total = o.cost();
    let cost = total.map(|c| c.total.as_f64());
    json!({
        "target": label,
        "outcome": outcome_word(r),
        "route": o.route,
        "provider": r.provider,
        "model": r.model,
        "text": r.text,
        "reasoning": if r.reasoning.is_empty() { Value::Null } else { Value::String(r.reasoning.clone()) },
        "finish_reason": r.finish_reason,
        "usage": usage_json(&r.usage),
        "cost_usd": cost,
        "cost_nanos": total.map(|c| c.total.nanos()),
        "cost_estimated": total.is_some_and(|c| c.estimated()),
        "cost_source": total.map(|c| c.source),
        "price_known": total.is_some() || r.billed.is_none(),
        "ttft_ms": r.timing.ttft.map(ms),
        "first_token_ms": r.timing.first_token.map(ms),
        "thinking_ms": r.timing.thinking.map(ms),
        "total_ms": ms(r.timing.total),
        "tokens_per_s": r.timing.tokens_per_s.map(|t| (t * 10.0).round() / 10.0),
        "error": r.error.as_ref().map(error_json),
        "next_target": o.next_target,
        "attempts": o.attempts.iter().map(attempt_json).collect::<Vec<_>>(),
    })
}

/// The summary of one target: one line for a target named directly; for a
/// route, the line of the target that answered (or ended it), then every
/// attempt in order, and the target to retry on after a cut answer.
fn summary(label: &str, o: &RouteOutcome) -> String {
    let r = &o.result;
    let cost = o.cost();
    if o.route.is_none() {
        return format!("{}\n", summary_line(label, r, cost));
    }
    let mut text = format!(
        "{}\n",
        summary_line(&format!("{label} → {}:{}", r.provider, r.model), r, cost)
    );
    if o.attempts.len() > 1 {
        for (i, a) in o.attempts.iter().enumerate() {
            let retry = if a.retry > 0 {
                format!(" (retry {} after {:.0} ms)", a.retry, ms(a.waited))
            } else {
                String::new()
            };
            let probe = if a.probe { " (probe)" } else { "" };
            let what = match &a.record.outcome {
                AttemptOutcome::Ok => format!("ok · {:.0} ms", a.record.total_ms),
                AttemptOutcome::Stopped => format!("stopped · {:.0} ms", a.record.total_ms),
                AttemptOutcome::Error { .. } => format!(
                    "{} · {:.0} ms",
                    attempt_note(a)
                        .unwrap_or_default()
                        .trim_start_matches(&format!("{}: ", a.target)),
                    a.record.total_ms
                ),
                AttemptOutcome::Skipped { kind, reason } => format!("skipped ({kind}): {reason}"),
            };
            text.push_str(&format!(
                "   {}. {}{retry}{probe}: {what}\n",
                i + 1,
                a.target
            ));
        }
    }
    if let Some(next) = &o.next_target {
        text.push_str(&format!(
            "   the answer was cut after it started; to retry on the next target: -m {next}\n"
        ));
    }
    text
}

/// `cost` is the whole answer's (every billed attempt).
fn summary_line(label: &str, r: &AttemptResult, cost: Option<AttemptCost>) -> String {
    let mut parts = vec![format!("── {label}")];
    if r.is_stopped() {
        parts.push("stopped".into());
    } else if let Some(e) = &r.error {
        let status = e.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
        parts.push(format!("error {}{status}: {}", e.kind, e.message));
        if let Some(ra) = e.retry_after {
            parts.push(format!("retry after {} s", ra.as_secs_f64()));
        }
    }
    if let Some(t) = r.timing.thinking {
        parts.push(format!("thought {:.0} ms", ms(t)));
    }
    if let Some(t) = r.timing.ttft {
        parts.push(format!("{:.0} ms to first token", ms(t)));
    }
    if let Some(tps) = r.timing.tokens_per_s {
        parts.push(format!("{tps:.1} tok/s"));
    }
    parts.push(format!("{:.2} s", r.timing.total.as_secs_f64()));
    let tok = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |n| n.to_string());
    if !r.usage.is_empty() {
        let reasoning = r
            .usage
            .reasoning_tokens
            .filter(|n| *n > 0)
            .map(|n| format!(" ({n} reasoning)"))
            .unwrap_or_default();
        parts.push(format!(
            "{} in / {} out tokens{reasoning}",
            tok(r.usage.input_tokens),
            tok(r.usage.output_tokens)
        ));
    }
    match cost {
        Some(c) if c.estimated() => parts.push(format!("{} est.", c.total)),
        Some(c) => parts.push(c.total.to_string()),
        None if r.billed.is_some() => parts.push("cost unknown (no price for this model)".into()),
        None => parts.push("no cost".into()),
    }
    parts.join(" · ")
}
