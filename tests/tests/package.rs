//! The `.deb`: built by the same script as `make package`
//! (`src-tauri/packaging/build-deb`), from the binaries of this test's build
//! profile, or `$SWITCHBOARD_DEB` when set (e.g. the release package
//! `make package` made). apt simulates installing it; it is unpacked into
//! a temporary root, never installed, and the packaged CLI and app are run
//! from there.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use switchboard_mock::{MockServer, Scenario};
use switchboard_tests::e2e::{App, Launch};

const MAX_BYTES: u64 = 15 * 1000 * 1000;

struct Package {
    deb: PathBuf,
    root: PathBuf,
}

/// Build (or take) the package and unpack it, once for every test here.
fn package() -> &'static Package {
    static PACKAGE: OnceLock<Package> = OnceLock::new();
    PACKAGE.get_or_init(|| {
        let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("package-test");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        let deb = match std::env::var_os("SWITCHBOARD_DEB") {
            Some(deb) => PathBuf::from(deb),
            None => {
                let script =
                    switchboard_tests::workspace_root().join("src-tauri/packaging/build-deb");
                let bins = switchboard_tests::bin_dir().unwrap();
                let out = Command::new(script).arg(&bins).arg(&work).output().unwrap();
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "build-deb failed: {stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                PathBuf::from(stdout.lines().last().unwrap().trim())
            }
        };
        let root = work.join("root");
        let out = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&root)
            .output()
            .unwrap();
        assert!(out.status.success(), "dpkg-deb -x: {out:?}");
        Package { deb, root }
    })
}

fn control(deb: &Path) -> BTreeMap<String, String> {
    let out = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut fields = BTreeMap::new();
    let mut last = String::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        if line.starts_with(' ') {
            fields.entry(last.clone()).and_modify(|v: &mut String| {
                v.push('\n');
                v.push_str(line);
            });
        } else if let Some((k, v)) = line.split_once(": ") {
            last = k.to_owned();
            fields.insert(k.to_owned(), v.to_owned());
        }
    }
    fields
}

/// The width and height a PNG's header declares.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn the_package_is_small_declares_its_libraries_and_installs_app_cli_entry_and_icons() {
    let p = package();
    let size = std::fs::metadata(&p.deb).unwrap().len();
    assert!(
        size <= MAX_BYTES,
        "{} is {size} bytes, over 15 MB",
        p.deb.display()
    );
    let name = p.deb.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(&format!("switchboard_{}_", switchboard_engine::VERSION)),
        "{name}"
    );

    let fields = control(&p.deb);
    assert_eq!(fields["Package"], "switchboard");
    assert_eq!(fields["Version"], switchboard_engine::VERSION);
    let arch = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .unwrap();
    assert_eq!(
        fields["Architecture"],
        String::from_utf8_lossy(&arch.stdout).trim()
    );
    assert!(
        fields["Installed-Size"].parse::<u64>().unwrap() > 1000,
        "{fields:?}"
    );
    assert!(
        fields["Description"].contains("switchboard-cli"),
        "{fields:?}"
    );
    // Derived from what the binaries link: the web view, GTK, and libdbus
    // (the Secret Service is spoken over D-Bus), each with a minimum version.
    let depends: Vec<&str> = fields["Depends"].split(", ").collect();
    let dep = |lib: &str| {
        let found = depends.iter().find(|d| d.split(' ').next() == Some(lib));
        *found.unwrap_or_else(|| panic!("Depends lacks {lib}: {depends:?}"))
    };
    for lib in ["libwebkit2gtk-4.1-0", "libgtk-3-0", "libdbus-1-3", "libc6"] {
        assert!(dep(lib).contains("(>= "), "{}", dep(lib));
    }
    // Named, with whatever minimum their shlibs files give (none for JSC).
    dep("libjavascriptcoregtk-4.1-0");
    dep("libsoup-3.0-0");
    assert!(fields["Recommends"].contains("gnome-keyring"), "{fields:?}");
    // apt would install it here, its dependencies resolved (a simulation:
    // nothing is changed, and it needs no root).
    let apt = Command::new("apt-get")
        .args(["--simulate", "install"])
        .arg(&p.deb)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&apt.stdout);
    assert!(
        apt.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&apt.stderr)
    );
    let inst = format!("Inst switchboard ({} ", switchboard_engine::VERSION);
    assert!(said.contains(&inst), "{said}");

    for bin in ["switchboard", "switchboard-cli"] {
        let path = p.root.join("usr/bin").join(bin);
        let meta = std::fs::metadata(&path).unwrap();
        assert!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0);
        // Every library it needs is found on this system.
        let ldd = Command::new("ldd").arg(&path).output().unwrap();
        let ldd = String::from_utf8_lossy(&ldd.stdout);
        assert!(!ldd.contains("not found"), "{bin}: {ldd}");
    }

    let entry =
        std::fs::read_to_string(p.root.join("usr/share/applications/switchboard.desktop")).unwrap();
    for line in [
        "[Desktop Entry]",
        "Type=Application",
        "Name=Switchboard",
        "Exec=switchboard",
        "Icon=switchboard",
        "Terminal=false",
    ] {
        assert!(
            entry.lines().any(|l| l == line),
            "desktop entry lacks {line}:\n{entry}"
        );
    }
    for size in [32, 128, 256, 512] {
        let icon = p.root.join(format!(
            "usr/share/icons/hicolor/{size}x{size}/apps/switchboard.png"
        ));
        assert_eq!(png_size(&icon), (size, size), "{}", icon.display());
    }
    assert!(p.root.join("usr/share/doc/switchboard/copyright").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_packaged_cli_reports_its_version_and_asks_a_provider() -> anyhow::Result<()> {
    let cli = package().root.join("usr/bin/switchboard-cli");
    let out = Command::new(&cli).arg("--version").output()?;
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8(out.stdout)?.trim().to_owned();
    if std::env::var_os("SWITCHBOARD_DEB").is_some() {
        // A package built elsewhere (`make package` at another commit)
        // carries its own build: the same version number, a git stamp.
        let prefix = format!("switchboard-cli {} (git ", switchboard_engine::VERSION);
        assert!(line.starts_with(&prefix), "{line}");
    } else {
        assert_eq!(
            line,
            format!("switchboard-cli {}", switchboard_engine::VERSION_LINE)
        );
    }

    let server = MockServer::start().await?;
    server.script(
        "oa-model",
        Scenario::default().with_text(&["Packaged ", "answer."]),
    );
    let home = tempfile::tempdir()?;
    std::fs::write(
        home.path().join("config.toml"),
        switchboard_tests::mock_providers_config(&server),
    )?;
    let out = tokio::process::Command::new(&cli)
        .args([
            "ask",
            "--json",
            "-m",
            "oa:oa-model",
            "Hello from the package",
        ])
        .env("SWITCHBOARD_HOME", home.path())
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("DISPLAY")
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: serde_json::Value = serde_json::from_str(&stdout)?;
    assert_eq!(answers[0]["text"], "Packaged answer.", "{stdout}");
    assert!(answers[0]["error"].is_null(), "{stdout}");
    // It wrote to the data directory it was given.
    assert!(home.path().join("switchboard.sqlite3").is_file());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_packaged_app_opens_its_compare_view_and_shows_the_cli_version() -> anyhow::Result<()> {
    let root = &package().root;
    let app = App::launch(Launch::new("package").binary(root.join("usr/bin/switchboard"))).await?;
    app.check(async {
        app.wait_for("#compare").await?;
        app.wait_for("#compare .pane").await?;
        let about = app.about().await?;
        let cli = Command::new(root.join("usr/bin/switchboard-cli"))
            .arg("--version")
            .output()?;
        assert_eq!(
            format!("switchboard-cli {}", about.version),
            String::from_utf8(cli.stdout)?.trim()
        );
        Ok(())
    })
    .await?;
    app.close().await
}
