//! Writing to the terminal. Everything goes through here so that output
//! errors (a closed pipe) are ignored in one place instead of panicking.

use std::io::Write;

/// Write `text` to stdout as is.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Write one line to stderr, prefixed with the program name.
pub fn error_line(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "switchboard-cli: {message}");
}

/// Write a warning line to stderr.
pub fn warning(message: &str) {
    let _ = writeln!(
        std::io::stderr().lock(),
        "switchboard-cli: warning: {message}"
    );
}
