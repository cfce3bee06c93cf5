// Which source a build came from, as one short phrase. Shared by `build.rs`
// (which computes it once per build) and the engine's unit tests (which check
// the rules below without running a build).

/// The build phrase for the version line: `git abc1234, 2026-12-02`.
///
/// `archive` is the text of `build-stamp.txt`: `git archive` (and so any
/// release tarball made from a tag) replaces its `$Format:...$` placeholder
/// with the commit's short hash and date, so a tarball without `.git` still
/// knows its commit. In a checkout the placeholder is still there and
/// `git_log` (the output of `git log -1 --format='%h %cs'`) is used instead.
/// With neither, the build says so rather than guessing.
pub fn describe(archive: &str, git_log: Option<&str>) -> String {
    let from = |text: &str| {
        let mut words = text.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(hash), Some(date), None)
                if hash.len() >= 7
                    && hash.bytes().all(|b| b.is_ascii_hexdigit())
                    && date.len() == 10
                    && date.bytes().all(|b| b.is_ascii_digit() || b == b'-') =>
            {
                Some(format!("git {hash}, {date}"))
            }
            _ => None,
        }
    };
    if !archive.contains("$Format:")
        && let Some(found) = from(archive)
    {
        return found;
    }
    git_log
        .and_then(from)
        .unwrap_or_else(|| "unknown commit".to_owned())
}
