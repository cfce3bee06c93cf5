//! A real Secret Service for tests: a private D-Bus session bus with
//! gnome-keyring-daemon serving `org.freedesktop.secrets`, its login keyring
//! created and unlocked in a temporary directory.
//!
//! It never uses the session bus of the person running the tests, so their
//! keyring is untouched, and it works on machines with no D-Bus session. The
//! bus activates nothing (see [`crate::dbus`]), so the keyring is all that
//! runs on it, and both stop with the guard.

use std::io::Write;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::process::Group;

/// Started by `sh`, which exits (stopping both daemons) when its stdin
/// closes: that happens when the guard is dropped, or when the test process
/// ends without dropping it.
const SUPERVISOR: &str = r#"
bus="unix:path=$SB_DIR/bus"
dbus-daemon --config-file="$SB_DIR/session-bus.conf" --nofork --nopidfile 2>"$SB_DIR/bus.log" &
bus_pid=$!
i=0
while [ ! -S "$SB_DIR/bus" ]; do
  i=$((i + 1)); [ "$i" -gt 400 ] && { echo "dbus-daemon did not start"; exit 1; }
  sleep 0.05
done
printf '%s' "$SB_PASSWORD" | DBUS_SESSION_BUS_ADDRESS="$bus" \
  gnome-keyring-daemon --foreground --unlock --components=secrets >"$SB_DIR/keyring.log" 2>&1 &
keyring_pid=$!
echo "ready $bus"
read -r _ || true
kill "$keyring_pid" "$bus_pid" 2>/dev/null
wait
"#;

/// A running private Secret Service. Dropping it stops the daemons.
#[derive(Debug)]
pub struct SecretService {
    address: String,
    // Field order matters: closing stdin first lets the supervisor stop the
    // daemons itself; the group kill is the fallback.
    stdin: ChildStdin,
    _supervisor: Group,
    dir: tempfile::TempDir,
}

impl SecretService {
    /// Start the bus and the keyring and wait until the Secret Service answers.
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("switchboard-keyring-")
            .tempdir()?;
        let home = dir.path();
        for sub in ["data", "config", "runtime"] {
            std::fs::create_dir_all(home.join(sub))?;
        }
        // A bus that starts nothing by itself: the keyring is the only
        // service on it, and it goes with the bus.
        crate::dbus::write_config(home)?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(SUPERVISOR)
            .env("SB_DIR", home)
            .env("SB_PASSWORD", "switchboard-test-keyring")
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_RUNTIME_DIR", home.join("runtime"))
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut supervisor = Group::spawn("dbus-daemon + gnome-keyring-daemon", &mut cmd)?;
        let stdin = supervisor.child_mut().stdin.take().context("no stdin")?;
        let line = supervisor.first_line()?;
        let Some(address) = line.strip_prefix("ready ").map(str::to_owned) else {
            bail!(
                "the private D-Bus session did not start: {line:?} (is the dbus package installed?)"
            );
        };
        let service = Self {
            address,
            stdin,
            _supervisor: supervisor,
            dir,
        };
        service.wait_until_served(Duration::from_secs(20))?;
        Ok(service)
    }

    /// The marker of its processes (the bus and the keyring), to check that
    /// none survives it ([`crate::process::marked`]).
    pub fn marker(&self) -> String {
        self._supervisor.marker().to_owned()
    }

    /// The address of the private session bus (`DBUS_SESSION_BUS_ADDRESS`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Environment a child process needs to use this Secret Service.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("DBUS_SESSION_BUS_ADDRESS", self.address.clone())]
    }

    fn wait_until_served(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let out = Command::new("dbus-send")
                .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .output()
                .context("dbus-send is missing (package dbus-bin)")?;
            if String::from_utf8_lossy(&out.stdout).contains("boolean true") {
                return Ok(());
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.path().join("keyring.log"))
                    .unwrap_or_default();
                bail!("gnome-keyring-daemon did not serve org.freedesktop.secrets: {log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One Secret Service for the whole test process, installed as this
/// process's session bus so in-process keychain code (the `keyring` crate)
/// reaches it.
///
/// Call it at the start of every test that uses the keychain in-process,
/// before anything reads the environment concurrently.
pub fn for_this_process() -> anyhow::Result<&'static SecretService> {
    static SERVICE: OnceLock<Result<SecretService, String>> = OnceLock::new();
    let service = SERVICE.get_or_init(|| {
        let service = SecretService::start().map_err(|e| format!("{e:#}"))?;
        // The keyring crate reads the bus address from the environment. This
        // runs once, inside `get_or_init`, while every other test thread that
        // needs the keychain is blocked on the same lock.
        set_bus_address(service.address());
        Ok(service)
    });
    service.as_ref().map_err(|e| anyhow::anyhow!("{e}"))
}

#[allow(unsafe_code)]
fn set_bus_address(address: &str) {
    // SAFETY: called once from `for_this_process` before any thread of this
    // test binary talks to D-Bus; see there.
    unsafe { std::env::set_var("DBUS_SESSION_BUS_ADDRESS", address) };
}

impl Drop for SecretService {
    fn drop(&mut self) {
        let _ = self.stdin.write_all(b"stop\n");
    }
}
