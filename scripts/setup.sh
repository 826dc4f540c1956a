#!/usr/bin/env bash
# Installs the C libraries uso links against (Debian packages). Safe to re-run.
set -euo pipefail
packages=(libdnnl-dev libopenblas-dev libpng-dev libjpeg62-turbo-dev libwebp-dev pkg-config)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
