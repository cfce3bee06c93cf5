//! One Markdown block (or a whole text) to sanitized HTML. Model output is
//! untrusted: raw HTML in it is shown as text, links get no `href` (nothing
//! can navigate the app; the address is shown on hover), images are not
//! loaded (the CSP would block remote ones anyway) but named, and code
//! blocks are highlighted here from escaped text. An unclosed code fence
//! (a block still streaming) renders as the code block it will be.

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd, html};

/// Escape text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

/// [`escape`] appending to `out`: the one HTML escape of the UI's crates
/// (the diff's HTML uses it too).
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

/// Render `markdown` to sanitized HTML.
pub fn render(markdown: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut events: Vec<Event> = Vec::new();
    let mut code: Option<(String, String)> = None; // (language, text)
    for event in Parser::new_ext(markdown, options) {
        if let Some((_, text)) = code.as_mut() {
            match event {
                Event::Text(t) => {
                    text.push_str(&t);
                    continue;
                }
                Event::End(TagEnd::CodeBlock) => {
                    let (lang, text) = code.take().unwrap_or_default();
                    events.push(Event::Html(code_block(&lang, &text).into()));
                    continue;
                }
                _ => continue,
            }
        }
        match event {
            // Raw HTML from the model is text, not markup.
            Event::Html(raw) | Event::InlineHtml(raw) => events.push(Event::Text(raw)),
            Event::Start(Tag::CodeBlock(kind)) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => info
                        .split(|c: char| c.is_whitespace() || c == ',')
                        .next()
                        .unwrap_or("")
                        .to_owned(),
                    CodeBlockKind::Indented => String::new(),
                };
                code = Some((lang, String::new()));
            }
            Event::Start(Tag::Link { dest_url, .. }) => events.push(Event::Html(
                format!("<a class=\"md-link\" title=\"{}\">", escape(&dest_url)).into(),
            )),
            Event::End(TagEnd::Link) => events.push(Event::Html("</a>".into())),
            Event::Start(Tag::Image { dest_url, .. }) => events.push(Event::Html(
                format!(
                    "<span class=\"md-image\" title=\"{}\">[image: ",
                    escape(&dest_url)
                )
                .into(),
            )),
            Event::End(TagEnd::Image) => events.push(Event::Html("]</span>".into())),
            other => events.push(other),
        }
    }
    if let Some((lang, text)) = code.take() {
        // An unfinished fence while streaming.
        events.push(Event::Html(code_block(&lang, &text).into()));
    }
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, events.into_iter());
    // Every `<table>` here is a Markdown table (the model's own HTML was
    // escaped above). `cellpadding="0"` changes nothing on screen (the
    // stylesheet pads the cells), but without it WebKit gives each table's
    // cells a style of their own (the attribute's default of 1 px), which
    // its style cache keeps after the table is gone: about 3.5 KB for each
    // table drawn and replaced (measured with WebKitGTK 2.50, see the
    // README's Benchmarks), for as long as the window is open.
    if out.contains("<table>") {
        out = out.replace("<table>", "<table cellpadding=\"0\">");
    }
    out
}

fn code_block(lang: &str, text: &str) -> String {
    let label = if lang.is_empty() {
        "text".to_owned()
    } else {
        escape(lang)
    };
    format!(
        "<div class=\"code-block\"><div class=\"code-head\"><span class=\"code-lang\">{label}</span>\
         <button class=\"copy-btn\" type=\"button\">Copy</button></div>\
         <pre><code>{}</code></pre></div>",
        highlight(lang, text)
    )
}

fn keywords(lang: &str) -> &'static [&'static str] {
    match lang.to_ascii_lowercase().as_str() {
        "rust" | "rs" => &[
            "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
            "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
            "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true",
            "type", "unsafe", "use", "where", "while",
        ],
        "python" | "py" => &[
            "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
            "elif", "else", "except", "False", "finally", "for", "from", "if", "import", "in",
            "is", "lambda", "None", "not", "or", "pass", "raise", "return", "True", "try", "while",
            "with", "yield",
        ],
        "js" | "javascript" | "ts" | "typescript" | "jsx" | "tsx" => &[
            "async",
            "await",
            "break",
            "case",
            "catch",
            "class",
            "const",
            "continue",
            "default",
            "else",
            "export",
            "extends",
            "false",
            "finally",
            "for",
            "function",
            "if",
            "import",
            "in",
            "instanceof",
            "interface",
            "let",
            "new",
            "null",
            "return",
            "switch",
            "this",
            "throw",
            "true",
            "try",
            "type",
            "typeof",
            "undefined",
            "var",
            "while",
        ],
        "go" => &[
            "break",
            "case",
            "chan",
            "const",
            "continue",
            "default",
            "defer",
            "else",
            "false",
            "for",
            "func",
            "go",
            "if",
            "import",
            "interface",
            "map",
            "nil",
            "package",
            "range",
            "return",
            "select",
            "struct",
            "switch",
            "true",
            "type",
            "var",
        ],
        "c" | "cpp" | "c++" | "java" | "cs" | "csharp" => &[
            "bool",
            "break",
            "case",
            "char",
            "class",
            "const",
            "continue",
            "default",
            "do",
            "double",
            "else",
            "enum",
            "false",
            "float",
            "for",
            "if",
            "int",
            "long",
            "namespace",
            "new",
            "null",
            "private",
            "public",
            "return",
            "static",
            "struct",
            "switch",
            "this",
            "true",
            "void",
            "while",
        ],
        "sh" | "bash" | "shell" | "zsh" => &[
            "case", "do", "done", "echo", "elif", "else", "esac", "export", "fi", "for",
            "function", "if", "in", "local", "then", "while",
        ],
        "sql" => &[
            "AND", "AS", "BY", "CREATE", "DELETE", "FROM", "GROUP", "INSERT", "INTO", "JOIN",
            "LIMIT", "NOT", "NULL", "ON", "OR", "ORDER", "SELECT", "SET", "TABLE", "UPDATE",
            "VALUES", "WHERE", "select", "from", "where", "insert", "update", "delete", "create",
            "table", "join", "order", "group", "by", "limit",
        ],
        "json" => &["true", "false", "null"],
        _ => &[],
    }
}

fn hash_comments(lang: &str) -> bool {
    matches!(
        lang.to_ascii_lowercase().as_str(),
        "python" | "py" | "sh" | "bash" | "shell" | "zsh" | "toml" | "yaml" | "yml" | "ruby" | "rb"
    )
}

/// Escaped `code` with spans for keywords, strings, comments and numbers.
pub fn highlight(lang: &str, code: &str) -> String {
    let kw = keywords(lang);
    let hash = hash_comments(lang);
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len() * 2);
    let span = |out: &mut String, class: &str, text: &str| {
        out.push_str("<span class=\"");
        out.push_str(class);
        out.push_str("\">");
        out.push_str(&escape(text));
        out.push_str("</span>");
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let rest_starts = |p: &str| {
            p.chars()
                .enumerate()
                .all(|(k, pc)| chars.get(i + k) == Some(&pc))
        };
        if rest_starts("//") && !hash || (hash && c == '#') {
            let end = chars[i..]
                .iter()
                .position(|&x| x == '\n')
                .map_or(chars.len(), |p| i + p);
            span(
                &mut out,
                "hl-com",
                &chars[i..end].iter().collect::<String>(),
            );
            i = end;
        } else if rest_starts("/*") && !hash {
            let mut end = i + 2;
            while end < chars.len() && !(chars[end] == '*' && chars.get(end + 1) == Some(&'/')) {
                end += 1;
            }
            let end = (end + 2).min(chars.len());
            span(
                &mut out,
                "hl-com",
                &chars[i..end].iter().collect::<String>(),
            );
            i = end;
        } else if c == '"' || c == '\'' || c == '`' {
            let mut end = i + 1;
            while end < chars.len() && chars[end] != c && chars[end] != '\n' {
                if chars[end] == '\\' {
                    end += 1;
                }
                end += 1;
            }
            let end = (end + 1).min(chars.len());
            span(
                &mut out,
                "hl-str",
                &chars[i..end].iter().collect::<String>(),
            );
            i = end;
        } else if c.is_ascii_digit()
            && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_'))
        {
            let end = chars[i..]
                .iter()
                .position(|x| !(x.is_ascii_alphanumeric() || *x == '.' || *x == '_'))
                .map_or(chars.len(), |p| i + p);
            span(
                &mut out,
                "hl-num",
                &chars[i..end].iter().collect::<String>(),
            );
            i = end;
        } else if c.is_alphabetic() || c == '_' {
            let end = chars[i..]
                .iter()
                .position(|x| !(x.is_alphanumeric() || *x == '_'))
                .map_or(chars.len(), |p| i + p);
            let word: String = chars[i..end].iter().collect();
            if kw.contains(&word.as_str()) {
                span(&mut out, "hl-kw", &word);
            } else {
                out.push_str(&escape(&word));
            }
            i = end;
        } else {
            out.push_str(&escape(&c.to_string()));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every tag of `html` with its attribute names: `(name, [attrs])`.
    fn tags(html: &str) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        let mut rest = html;
        while let Some(i) = rest.find('<') {
            let Some(j) = rest[i..].find('>') else { break };
            let inner = rest[i + 1..i + j].trim_end_matches('/');
            let name_end = inner.find(char::is_whitespace).unwrap_or(inner.len());
            let name = inner[..name_end].trim_start_matches('/').to_owned();
            let mut attrs = Vec::new();
            let mut a = inner[name_end..].trim_start();
            while !a.is_empty() {
                let end = a
                    .find(|c: char| c == '=' || c.is_whitespace())
                    .unwrap_or(a.len());
                attrs.push(a[..end].to_owned());
                a = &a[end..];
                if let Some(v) = a.strip_prefix("=\"") {
                    a = v.find('"').map_or("", |q| &v[q + 1..]);
                }
                a = a.trim_start();
            }
            out.push((name, attrs));
            rest = &rest[i + j + 1..];
        }
        out
    }

    const HOSTILE: &str = "<script>alert(1)</script>\n\n\
        Inline <img src=x onerror=alert(2)> and <a href=\"javascript:alert(3)\">x</a>.\n\n\
        [click](javascript:alert(4) \"t\") [site](https://example.com/\"><b>) <https://auto.example>\n\n\
        ![remote](https://tracker.example/p.png)\n\n\
        ```\"><script>x</script>\nlet a = \"</code><script>\";\n```\n\n\
        <!-- comment --> <style>body{display:none}</style> <iframe src=//e></iframe>\n\n\
        | a | b |\n|:-:|--:|\n| <b>1</b> | `2` |\n\n- [x] done\n- [ ] todo\n\n3. three\n";

    #[test]
    fn only_tags_this_module_writes_come_out_and_none_can_navigate_or_load() {
        let html = render(HOSTILE);
        let allowed_tags = [
            "p", "a", "span", "div", "button", "pre", "code", "table", "thead", "tbody", "tr",
            "th", "td", "ul", "ol", "li", "input", "em", "strong", "h1", "h2", "h3", "del",
        ];
        let allowed_attrs = [
            "class",
            "title",
            "type",
            "start",
            "style",
            "disabled",
            "checked",
            "cellpadding",
        ];
        for (name, attrs) in tags(&html) {
            assert!(
                allowed_tags.contains(&name.as_str()),
                "tag {name} in {html}"
            );
            for a in attrs {
                assert!(
                    allowed_attrs.contains(&a.as_str()),
                    "attribute {a} on {name}"
                );
            }
        }
        for bad in ["<script", "<img", "<iframe", "<style", "<a href"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
        // The hostile parts are still there, as text.
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(html.contains("[image: remote]"), "{html}");
        assert!(
            html.contains("title=\"javascript:alert(4)\""),
            "the address shows on hover only: {html}"
        );
    }

    #[test]
    fn attribute_values_and_code_are_escaped() {
        let html = render("[x](https://e.com/\"onmouseover=alert(1))\n\n```a\"b\n<b>&</b>\n```\n");
        assert!(!html.contains("\"onmouseover"), "{html}");
        assert!(html.contains("&quot;onmouseover"), "{html}");
        assert!(
            html.contains("<span class=\"code-lang\">a&quot;b</span>"),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;&amp;&lt;/b&gt;"), "{html}");
    }

    #[test]
    fn tables_lists_and_unfinished_fences_render_as_they_stream() {
        let table = render("| a | b |\n|---|---|\n| 1 |");
        assert!(
            table.contains("<table cellpadding=\"0\">") && table.contains("<td>1</td>"),
            "{table}"
        );
        let list = render("- one\n- tw");
        assert!(list.contains("<li>tw</li>"), "{list}");
        let fence = render("```rust\nfn main() {\n    let x");
        assert!(
            fence.contains("<span class=\"code-lang\">rust</span>"),
            "{fence}"
        );
        assert!(
            fence.contains("<span class=\"hl-kw\">let</span> x"),
            "{fence}"
        );
        assert!(render("3. three\n").contains("<ol start=\"3\">"));
    }

    #[test]
    fn highlighting_marks_keywords_strings_comments_and_numbers() {
        let h = highlight("rust", "let s = \"<x>\"; // done\nfn f() -> u8 { 42 }");
        assert!(h.contains("<span class=\"hl-kw\">let</span>"), "{h}");
        assert!(
            h.contains("<span class=\"hl-str\">&quot;&lt;x&gt;&quot;</span>"),
            "{h}"
        );
        assert!(h.contains("<span class=\"hl-com\">// done</span>"), "{h}");
        assert!(h.contains("<span class=\"hl-num\">42</span>"), "{h}");
        assert_eq!(escape("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
    }
}
