//! WebKitGTK settings for what the window shows: one local page that never
//! navigates, whose every file is embedded in the binary. WebKit's defaults
//! are a web browser's, and they cost memory here for nothing (measured with
//! `cargo bench --bench compare_ui -- memory`, see the README):
//!
//! - the cache model: a browser keeps decoded pages, resources and DNS
//!   answers for the next site; [`CacheModel::DocumentViewer`] is WebKit's
//!   model for a single local document and keeps (almost) nothing;
//! - the back/forward page cache: a browser keeps whole pages alive for
//!   the Back button; this page never leaves, so there is nothing to keep;
//! - accelerated compositing, only where the GL is emulated on the CPU: with
//!   no GPU render node (a VM, a remote desktop, a headless display) Mesa's
//!   software rasterizer (llvmpipe) stands in for the GPU, and every layer
//!   of the page becomes a texture in ordinary RAM painted twice, once by
//!   WebKit and once by the emulated GPU. Painting straight into the window
//!   is then cheaper in memory and CPU alike (about 90 MB less for the web
//!   process here). With a GPU, WebKit's default (composite on the GPU) is
//!   kept: that is what scrolls six streaming panes smoothly.
//! - GTK's own GL, on the same machines ([`before_gtk`]): GTK probes GLX for
//!   GL widgets the app does not have, which starts a second software
//!   rasterizer in the app and in the web process (about 7 MB here).
//! - WebKit's DMA-BUF renderer, on the same machines ([`before_gtk`]): it
//!   hands composited frames from the web process to the window as GPU
//!   buffers; with compositing off (above) there are none to hand over, yet
//!   setting it up costs the app about 3.5 MB (GL state and more of Mesa's
//!   pages).
//! - EGL in the app's own process, on the same machines ([`before_gtk`]):
//!   WebKit opens an EGL display in the app before it starts its web
//!   process, which loads Mesa's software driver and the LLVM it is built
//!   on (about 8 MB of relocated data of the app's own, plus LLVM's code).
//!   With compositing off the app process draws nothing with GL: it is
//!   given no EGL driver, and WebKit goes on without one there. The web
//!   process, which cannot start without EGL, keeps Mesa.

use tauri::webview::PlatformWebview;
use webkit2gtk::{CacheModel, HardwareAccelerationPolicy, SettingsExt, WebContextExt, WebViewExt};

/// Whether the page should be composited on a GPU: not when the only GL
/// there is runs on the CPU.
fn gpu_compositing() -> bool {
    // Mesa's own switch to its software rasterizer.
    if std::env::var("LIBGL_ALWAYS_SOFTWARE").is_ok_and(|v| !v.is_empty() && v != "0") {
        return false;
    }
    has_render_node()
}

/// A DRM render node (`/dev/dri/renderD128`, ...) is how a GPU, whatever its
/// driver, is offered to unprivileged programs; without one, GL is software.
fn has_render_node() -> bool {
    std::fs::read_dir("/dev/dri").is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    })
}

/// Apply the settings above to the window's web view (on the main thread,
/// right after the view is made; WebKit passes them on to its web process).
pub fn tune(webview: PlatformWebview) {
    let view = webview.inner();
    if let Some(context) = view.context() {
        context.set_cache_model(CacheModel::DocumentViewer);
    }
    if let Some(settings) = WebViewExt::settings(&view) {
        settings.set_enable_page_cache(false);
        if !gpu_compositing() {
            settings.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
        }
    }
}

/// Before GTK starts, on a machine without a GPU (each unless the user set
/// the variable):
///
/// - GTK's own GL is turned off (`GDK_GL=disable`). GTK probes GLX when it
///   opens the display, to pick visuals for GL widgets the app does not
///   have; with no GPU that probe starts Mesa's software rasterizer
///   (llvmpipe) in the app and again in the web process, which inherits
///   the environment. WebKit's own GL (the EGL display it always sets up)
///   is not affected, and the page is painted as before.
/// - WebKit's DMA-BUF renderer is turned off
///   (`WEBKIT_DISABLE_DMABUF_RENDERER=1`): it only carries composited
///   frames, and [`tune`] turns compositing off on the same machines.
///
/// - EGL gets no driver in this process: the GL vendor library (libglvnd)
///   reads its list of drivers once, at its first call; that first call is
///   made here with the list pointed at nothing, then the variable is
///   removed again, so the web process WebKit starts later (which needs
///   EGL) finds Mesa as usual.
///
/// Called first thing in [`crate::run`], while the process still has a
/// single thread.
pub fn before_gtk() {
    if gpu_compositing() {
        return;
    }
    for (key, value) in [
        ("GDK_GL", "disable"),
        ("WEBKIT_DISABLE_DMABUF_RENDERER", "1"),
    ] {
        if std::env::var_os(key).is_none() {
            set_env(key, value);
        }
    }
    if EGL_VENDOR_VARS
        .iter()
        .all(|k| std::env::var_os(k).is_none())
    {
        set_env(EGL_VENDOR_VARS[0], "/dev/null");
        egl::load_vendors();
        remove_env(EGL_VENDOR_VARS[0]);
    }
}

/// libglvnd's choice of EGL drivers: a list of files, or folders of them.
const EGL_VENDOR_VARS: [&str; 2] = [
    "__EGL_VENDOR_LIBRARY_FILENAMES",
    "__EGL_VENDOR_LIBRARY_DIRS",
];

#[allow(unsafe_code)]
mod egl {
    use std::ffi::{c_char, c_void};

    /// `EGL_EXTENSIONS`.
    const EXTENSIONS: i32 = 0x3055;

    #[link(name = "EGL")]
    unsafe extern "C" {
        fn eglQueryString(display: *mut c_void, name: i32) -> *const c_char;
    }

    /// Make libglvnd load its list of EGL drivers now (its first call does).
    pub fn load_vendors() {
        // SAFETY: EGL_NO_DISPLAY (null) with EGL_EXTENSIONS is the
        // documented query of client extensions; it reads no memory of
        // ours and returns a static string (or null), not kept here.
        unsafe { eglQueryString(std::ptr::null_mut(), EXTENSIONS) };
    }
}

#[allow(unsafe_code)]
fn set_env(key: &str, value: &str) {
    // SAFETY: only called from `before_gtk`, which `run` calls before
    // anything (GTK, WebKit, the engine's runtime) has started a thread,
    // so nothing can read the environment concurrently.
    unsafe { std::env::set_var(key, value) };
}

#[allow(unsafe_code)]
fn remove_env(key: &str) {
    // SAFETY: as for `set_env`.
    unsafe { std::env::remove_var(key) };
}
