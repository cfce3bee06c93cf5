# Switchboard's two entry points (see README.md):
#   make run    set up a Debian/Ubuntu machine, build and launch the app
#   make test   set up everything the tests need, then every check and test
#   make package   a .deb of the release build (target/package/)
#
# PROFILE=release (the default) builds the app and the wasm UI as users get
# them; PROFILE=debug builds faster, for development (`make dev` is
# `make run PROFILE=debug`). The tests use the debug build (.ci/test).
SHELL := bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

PROFILE ?= release
ifeq ($(filter $(PROFILE),debug release),)
$(error PROFILE must be debug or release, not "$(PROFILE)")
endif
PROFILE_FLAG := $(if $(filter release,$(PROFILE)),--release,)
APP := target/$(PROFILE)/switchboard

.PHONY: run dev test setup-app setup-test build ui app package screenshot screenshots fmt bench

# Builds (printing each phase's time, and the total), then opens the window.
run:
	@start=$$(date +%s); $(MAKE) --no-print-directory build && \
	  echo "==> ready in $$(( $$(date +%s) - start ))s: starting $(APP)" && exec $(APP)

dev:
	$(MAKE) --no-print-directory run PROFILE=debug

build: setup-app ui app

test: setup-test
	.ci/test

setup-app:
	.ci/setup app

setup-test:
	.ci/setup test

# The wasm UI (ui/dist), embedded into the app binary at build time. Built by
# ui/build, a workspace tool that calls wasm-bindgen as a library; its own
# binary is cached in target/debug after the first run.
ui:
	.ci/timed "build ui ($(PROFILE))" cargo run --locked -p switchboard-uibuild -- $(PROFILE_FLAG)

# The app and the CLI together: the same dependency features as the app
# alone, so `make package` after `make run` only adds the CLI.
app: ui
	.ci/timed "build app and cli ($(PROFILE))" cargo build -p switchboard-app -p switchboard-cli --locked $(PROFILE_FLAG)

# target/package/switchboard_<version>_<arch>.deb from release binaries, by
# src-tauri/packaging/build-deb (dpkg-deb; no tauri-cli). Not part of `run`.
package: setup-app
	$(MAKE) --no-print-directory ui app PROFILE=release
	.ci/timed "package (.deb)" src-tauri/packaging/build-deb target/release target/package

# A PNG of the app window under a virtual display, without any desktop:
# artifacts/screenshots/app-window.png
screenshot: app
	mkdir -p artifacts/screenshots
	SWITCHBOARD_HOME=$${SWITCHBOARD_HOME:-$$(mktemp -d)} xvfb-run -a -s "-screen 0 1280x800x24" \
	  sh -c '$(APP) & pid=$$!; sleep $${WAIT:-6}; import -window root artifacts/screenshots/app-window.png; kill $$pid'
	@echo "saved artifacts/screenshots/app-window.png"

# The README's pictures (tests/screenshots/), taken by the end-to-end test
# of the main views and the deciding tests (diff, blind, leaderboard)
# from the current UI. Those run the app under Xvfb through WebKitWebDriver
# with a keyring: what setup-test installs.
screenshots: setup-test
	$(MAKE) --no-print-directory app PROFILE=debug
	SWITCHBOARD_README_SCREENSHOTS=1 cargo test --locked -p switchboard-tests --test e2e_screenshots --test e2e_decide

fmt:
	cargo fmt --all

# Engine overhead against a raw HTTP client to the same local mock, measured
# in one run (release build); prints ratios and overhead percentiles. Then
# the Local API under load, directly vs through it. Then the compare view in
# the window: render rate, cold start, memory, of the release build (built
# first, so the app measured and the memory floor's UI are the same build
# of ui/dist, as users get them). Then history at scale: search,
# listing, opening and import on a generated database of a million messages
# (made once, kept in target/bench-history).
bench:
	$(MAKE) --no-print-directory ui app PROFILE=release
	cargo bench -p switchboard-tests --bench engine_overhead --bench gateway_load
	SWITCHBOARD_APP=$(CURDIR)/target/release/switchboard \
	  cargo bench -p switchboard-tests --bench compare_ui
	cargo bench -p switchboard-tests --bench history_scale
