//! `keyprobe ID`: looks up a provider key the way Switchboard does and
//! prints where it came from or the error, never the key. The keychain tests
//! run it in environments the test process itself cannot be put in (no D-Bus
//! session at all).

use std::process::ExitCode;

use switchboard_engine::KeyStore;

fn main() -> ExitCode {
    let id = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "openai".to_owned());
    let store = KeyStore::with_service("switchboard-keyprobe");
    #[allow(clippy::print_stdout)]
    match store.get(&id) {
        Ok(Some((secret, source))) => {
            println!("found {source:?} key ending {}", secret.last4());
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!("no key");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("error: {e}");
            ExitCode::from(3)
        }
    }
}
