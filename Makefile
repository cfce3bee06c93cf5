# Switchboard's two entry points (see README.md):
#   make run    set up a Debian/Ubuntu machine, build and launch the app
#   make test   set up everything the tests need, then every check and test
SHELL := bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

APP := target/debug/switchboard

.PHONY: run test setup-app setup-test ui app screenshot fmt bench

run: setup-app ui app
	$(APP)

test: setup-test
	.ci/test

setup-app:
	.ci/setup app

setup-test:
	.ci/setup test

# The wasm UI, embedded into the app binary at build time.
ui:
	cd ui && trunk build --offline

app: ui
	cargo build -p switchboard-app --locked

# A PNG of the app window under a virtual display, without any desktop:
# artifacts/screenshots/app-window.png
screenshot: app
	mkdir -p artifacts/screenshots
	SWITCHBOARD_HOME=$${SWITCHBOARD_HOME:-$$(mktemp -d)} xvfb-run -a -s "-screen 0 1280x800x24" \
	  sh -c '$(APP) & pid=$$!; sleep $${WAIT:-6}; import -window root artifacts/screenshots/app-window.png; kill $$pid'
	@echo "saved artifacts/screenshots/app-window.png"

fmt:
	cargo fmt --all

# Engine overhead against a raw HTTP client to the same local mock, measured
# in one run (release build); prints ratios and overhead percentiles.
bench:
	cargo bench -p switchboard-tests --bench engine_overhead
