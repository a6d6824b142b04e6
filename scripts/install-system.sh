#!/usr/bin/env bash
# Debian packages the browser tests need: headless Chromium and its WebDriver.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null \
  && [ -d /usr/share/datasets/fashion-mnist ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver dataset-fashion-mnist >/dev/null
