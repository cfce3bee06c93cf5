//! Generated history for import tests and the history-at-scale benchmark:
//! text whose words follow a Zipf distribution (a few words in most
//! messages, a long tail in very few, like real prose), and ChatGPT data
//! exports of any size in the vendor's format.

use serde_json::{Value, json};

use crate::Rng;

/// The most frequent words of English, in rank order: the head of the
/// distribution, so stopwords behave as in real messages.
const HEAD: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "as", "was", "with", "be",
    "by", "on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have",
    "an", "had", "they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there",
    "been", "if", "more", "when", "will", "would", "who", "so", "no", "she", "other", "its", "may",
    "these", "what", "them", "than", "some", "him", "time", "into", "only", "do", "could", "new",
    "about", "two", "then", "first", "also", "any", "my", "now", "such", "like", "our", "over",
    "man", "me", "even", "most", "made", "after", "did", "many", "before", "must", "through",
    "back", "years", "where", "much", "your", "way", "well", "down", "should", "because", "each",
    "just", "those", "people", "how", "too", "little", "state", "good", "very", "make", "world",
    "still", "own", "see", "men", "work", "long", "get", "here", "between", "both", "life",
    "being", "under", "never", "day", "same", "another", "know", "while", "last", "might", "us",
    "great", "old", "year", "off", "come", "since", "against", "go", "came", "right", "used",
    "take", "three",
];

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ru", "ten", "sa", "vor", "el", "qui", "dan", "po", "zi", "ber", "ul", "fen",
    "ga", "tro", "ni", "has", "pel", "yo", "cam", "dre", "su", "wix", "ob", "len", "ta",
];

/// A vocabulary with Zipf-distributed frequencies.
#[derive(Debug, Clone)]
pub struct Zipf {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Zipf {
    /// `size` words; the word of rank `r` (1-based) has weight `1 / r^s`.
    pub fn new(size: usize, s: f64) -> Self {
        let mut words: Vec<String> = HEAD.iter().map(|w| (*w).to_owned()).collect();
        let mut i = 0usize;
        while words.len() < size {
            // Distinct made-up words: syllables spelled from the index.
            let mut n = i;
            let mut w = String::new();
            loop {
                w.push_str(SYLLABLES[n % SYLLABLES.len()]);
                n /= SYLLABLES.len();
                if n == 0 {
                    break;
                }
            }
            if w.len() > 2 && !HEAD.contains(&w.as_str()) {
                words.push(w);
            }
            i += 1;
        }
        words.truncate(size);
        let mut total = 0.0;
        let cumulative = (1..=words.len())
            .map(|r| {
                total += 1.0 / (r as f64).powf(s);
                total
            })
            .collect();
        Self { words, cumulative }
    }

    /// The word of rank `r` (0-based).
    pub fn word(&self, r: usize) -> &str {
        &self.words[r.min(self.words.len() - 1)]
    }

    /// How many words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Never empty.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// One word drawn by frequency.
    pub fn draw(&self, rng: &mut Rng) -> &str {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let u = rng.below(1 << 53) as f64 / (1u64 << 53) as f64 * total;
        let i = self.cumulative.partition_point(|c| *c < u);
        self.word(i)
    }

    /// A sentence of `n` words.
    pub fn text(&self, rng: &mut Rng, n: usize) -> String {
        let mut out = String::with_capacity(n * 6);
        for i in 0..n {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(self.draw(rng));
        }
        out
    }
}

/// A ChatGPT data export (`conversations.json`) of `n` conversations of
/// four messages (a prompt, an answer, a follow-up, an answer), with
/// Zipf-distributed words; conversation `i` alone contains `marker<i>`.
pub fn chatgpt_export(n: usize, seed: u64) -> String {
    let vocab = Zipf::new(5_000, 1.07);
    let mut rng = Rng::seeded(seed);
    let mut items: Vec<Value> = Vec::with_capacity(n);
    for i in 0..n {
        let t = 1_700_000_000.0 + i as f64 * 600.0;
        let ids: Vec<String> = (0..4).map(|k| format!("gen{i}-m{k}")).collect();
        let mut mapping = serde_json::Map::new();
        mapping.insert(
            format!("gen{i}-root"),
            json!({"id": format!("gen{i}-root"), "message": null, "parent": null,
                   "children": [ids[0]]}),
        );
        for k in 0..4 {
            let role = if k % 2 == 0 { "user" } else { "assistant" };
            let mut text = vocab.text(&mut rng, if k % 2 == 0 { 12 } else { 40 });
            if k == 0 {
                text.push_str(&format!(" marker{i}"));
            }
            let parent = if k == 0 {
                format!("gen{i}-root")
            } else {
                ids[k - 1].clone()
            };
            mapping.insert(
                ids[k].clone(),
                json!({"id": ids[k], "parent": parent,
                       "children": ids.get(k + 1).into_iter().collect::<Vec<_>>(),
                       "message": {"id": ids[k], "author": {"role": role, "name": null},
                           "create_time": t + k as f64 * 5.0,
                           "content": {"content_type": "text", "parts": [text]},
                           "status": "finished_successfully", "recipient": "all",
                           "metadata": {"model_slug": "gpt-4o"}}}),
            );
        }
        items.push(json!({
            "title": format!("Generated conversation {i}"),
            "create_time": t, "update_time": t + 15.0,
            "mapping": mapping, "current_node": ids[3],
            "conversation_id": format!("generated-{i}"), "id": format!("generated-{i}"),
            "default_model_slug": "gpt-4o",
        }));
    }
    Value::Array(items).to_string()
}
