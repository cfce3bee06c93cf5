//! Helper processes started in their own process group, so that dropping the
//! guard stops the whole tree (WebKitWebDriver → the app).
//!
//! A process group is not enough on its own: a daemon that forks and calls
//! `setsid` (as D-Bus-activated services and `dbus-launch` do) leaves it and
//! would outlive the test. So every group also carries a marker in its
//! environment, which its descendants inherit whatever group they move to,
//! and the guard stops every process that still carries it.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The environment variable that marks every process a [`Group`] started.
pub const MARKER_ENV: &str = "SWITCHBOARD_TEST_GROUP";

/// A child process and everything it starts; all stopped on drop.
#[derive(Debug)]
pub struct Group {
    name: &'static str,
    child: Child,
    marker: String,
}

impl Group {
    /// Spawn `cmd` as the leader of a new process group.
    pub fn spawn(name: &'static str, cmd: &mut Command) -> anyhow::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let marker = format!(
            "{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let child = cmd
            .env(MARKER_ENV, &marker)
            .process_group(0)
            .spawn()
            .with_context(|| {
                format!("could not start {name}: is it installed? (run `.ci/setup test`)")
            })?;
        Ok(Self {
            name,
            child,
            marker,
        })
    }

    /// The marker every process of this group carries ([`MARKER_ENV`]).
    pub fn marker(&self) -> &str {
        &self.marker
    }

    /// The child itself (e.g. to read its stdout).
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The first line the child writes to its stdout (which must be piped),
    /// trimmed: how Xvfb and dbus-daemon say where they listen.
    pub fn first_line(&mut self) -> anyhow::Result<String> {
        let stdout = self
            .child
            .stdout
            .take()
            .with_context(|| format!("{} has no stdout", self.name))?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        Ok(line.trim().to_owned())
    }

    /// Fail if the process has already exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!("{} exited early with {status}", self.name);
        }
        Ok(())
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop_group();
        // Whatever left the group (daemons) but still carries the marker.
        kill_marked(&self.marker);
    }
}

impl Group {
    fn stop_group(&mut self) {
        let Ok(raw) = i32::try_from(self.child.id()) else {
            return;
        };
        let pgid = Pid::from_raw(raw);
        let _ = killpg(pgid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                // The leader is gone; make sure the rest of the group is too.
                let _ = killpg(pgid, Signal::SIGKILL);
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// The processes whose environment has `MARKER_ENV=marker` (as they were
/// started; a process cannot take the marker off its initial environment).
pub fn marked(marker: &str) -> Vec<i32> {
    let needle = format!("{MARKER_ENV}={marker}");
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
        })
        .filter_map(|pid| i32::try_from(pid).ok())
        .collect()
}

/// The command line of process `pid` (arguments joined by spaces), or
/// `None` once it has gone.
pub fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(args.join(" "))
}

/// Every running process carrying one of `markers`, as `(pid, command line)`.
pub fn running(markers: &[String]) -> Vec<(i32, String)> {
    markers
        .iter()
        .flat_map(|m| marked(m))
        .filter_map(|pid| Some((pid, cmdline(pid)?)))
        .collect()
}

fn kill_marked(marker: &str) {
    // A few rounds: a dying parent may still fork, and SIGKILL is not
    // instant.
    for _ in 0..5 {
        let pids = marked(marker);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Wait until something accepts connections on `port`.
pub async fn wait_for_port(port: u16, timeout: Duration, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("{what} did not listen on port {port} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
