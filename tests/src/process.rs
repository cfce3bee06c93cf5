//! Helper processes started in their own process group, so that dropping the
//! guard stops the whole tree (WebKitWebDriver → the app).

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// A child process and everything it starts; all stopped on drop.
#[derive(Debug)]
pub struct Group {
    name: &'static str,
    child: Child,
}

impl Group {
    /// Spawn `cmd` as the leader of a new process group.
    pub fn spawn(name: &'static str, cmd: &mut Command) -> anyhow::Result<Self> {
        let child = cmd.process_group(0).spawn().with_context(|| {
            format!("could not start {name}: is it installed? (run `.ci/setup test`)")
        })?;
        Ok(Self { name, child })
    }

    /// The child itself (e.g. to read its stdout).
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
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
