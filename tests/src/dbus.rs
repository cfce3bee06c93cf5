//! A private D-Bus session bus on which nothing can be activated.
//!
//! A WebKitGTK app given no session bus makes one itself (`dbus-launch
//! --autolaunch`, a daemon outside any process group the test owns), and a
//! bus with the standard service directories starts whatever its clients
//! ask for: the document and desktop portals (with a FUSE mount), the
//! accessibility bus, gnome-keyring. None of those belong to the test and all
//! of them outlived it. This bus lists no service directory, so the only
//! services on it are the ones a test starts itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::bail;

use crate::process::Group;

/// Write the configuration of a session bus listening on `<dir>/bus`, with
/// no activatable services; returns its path.
pub fn write_config(dir: &Path) -> anyhow::Result<PathBuf> {
    let config = dir.join("session-bus.conf");
    let socket = dir.join("bus");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
            socket.display()
        ),
    )?;
    Ok(config)
}

/// A running private session bus; dropping it stops the daemon.
#[derive(Debug)]
pub struct PrivateBus {
    address: String,
    _daemon: Group,
}

impl PrivateBus {
    /// Start a bus whose socket and configuration live in `dir`.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let config = write_config(dir)?;
        let mut cmd = Command::new("dbus-daemon");
        cmd.arg("--nofork")
            .arg("--nopidfile")
            .arg(format!("--config-file={}", config.display()))
            .arg("--print-address=1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut daemon = Group::spawn("dbus-daemon", &mut cmd)?;
        let address = daemon.first_line()?;
        if address.is_empty() {
            bail!("dbus-daemon did not print its address (is the dbus package installed?)");
        }
        Ok(Self {
            address,
            _daemon: daemon,
        })
    }

    /// The marker its processes carry (see [`crate::process`]).
    pub fn marker(&self) -> &str {
        self._daemon.marker()
    }

    /// Its address, for `DBUS_SESSION_BUS_ADDRESS`.
    pub fn address(&self) -> &str {
        &self.address
    }
}
