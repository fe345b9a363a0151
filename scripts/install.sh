#!/usr/bin/env bash
# Install everything ASPIRE web needs on a fresh Debian/Ubuntu machine: system packages (OSMesa for
# offscreen MuJoCo rendering, Redis, and with --test Chromium for browser tests) and a Python virtual
# environment in .venv with the pinned requirements. Safe to run again: it skips what is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# bubblewrap, libseccomp2 and util-linux (prlimit) contain the sandboxed robot programs.
packages=(python3 python3-venv python3-dev build-essential libosmesa6 libgl1 redis-server bubblewrap libseccomp2 util-linux)
[ $want_test = 1 ] && packages+=(chromium fonts-dejavu-core)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip wheel
  # torch first and pinned: anything that pulls it unpinned gets a multi-GB CUDA build.
  .venv/bin/python -m pip install -q --disable-pip-version-check "$(grep -E '^torch==' requirements.txt)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt
  echo "$want" > "$stamp"
fi
