#!/usr/bin/env bash
# Debian's Chromium, which the browser tests drive headless by its path (Playwright's own
# browser download is never used). Installed once, with apt-get (as root, or through sudo).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "the browser tests need Chromium: install your system's chromium package" >&2
  exit 1
fi
run() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
echo "installing Debian's chromium for the browser tests (once)"
run apt-get update -qq
run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
chromium --version
