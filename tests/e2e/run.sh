#!/usr/bin/env bash
# End-to-end tests: the dashboard in Chromium against `rollcall serve`, then the desktop window
# (Tauri, WebKitGTK) under Xvfb through WebKitWebDriver. Installs what is missing first. Expects
# target/debug/rollcall built with the desktop feature and the UI embedded (`cargo build` after
# `npm run build` in ui/); ROLLCALL_BIN chooses another binary. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

apt_install() {
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y "$@" || { apt-get update && apt-get install -y "$@"; }
  else
    sudo apt-get install -y "$@" || { sudo apt-get update && sudo apt-get install -y "$@"; }
  fi
}

[ -x /usr/bin/chromium ] || apt_install chromium
command -v WebKitWebDriver >/dev/null || apt_install webkit2gtk-driver
command -v xvfb-run >/dev/null || apt_install xvfb xauth
[ -d tests/e2e/node_modules/playwright-core ] || (cd tests/e2e && npm ci --no-audit --no-fund)

bin="${ROLLCALL_BIN:-target/debug/rollcall}"
[ -x "$bin" ] || { echo "error: $bin is missing: run cargo build first" >&2; exit 1; }

status=0
echo "== e2e: dashboard in Chromium"
node --test --test-reporter=spec tests/e2e/browser.test.mjs || status=1
echo "== e2e: tunnel (fake cloudflared) in Chromium"
node --test --test-reporter=spec tests/e2e/tunnel.test.mjs || status=1
echo "== e2e: webinar list paging in Chromium"
node --test --test-reporter=spec tests/e2e/paging.test.mjs || status=1
echo "== e2e: platform hookup in Chromium"
node --test --test-reporter=spec tests/e2e/subscriptions.test.mjs || status=1
echo "== e2e: failing disk in Chromium"
node --test --test-reporter=spec tests/e2e/disk.test.mjs || status=1
echo "== e2e: desktop window under Xvfb"
xvfb-run -a -s "-screen 0 1280x800x24" node --test --test-reporter=spec tests/e2e/desktop.test.mjs || status=1
echo "screenshots: tests/e2e/artifacts/"
exit "$status"
