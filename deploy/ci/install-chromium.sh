#!/usr/bin/env bash
# Debian's Chromium for the browser test (driven by playwright; no browser download).
# Idempotent: installs only what is missing. Needs root (CI runs as root).
set -euo pipefail

if command -v chromium >/dev/null; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-chromium: chromium is missing; run this script as root (sudo $0)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q </dev/null
apt-get install -y -q --no-install-recommends chromium fonts-liberation </dev/null
