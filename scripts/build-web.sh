#!/usr/bin/env bash
# Build the web app (services/gateway/webapp) when its sources changed; a no-op otherwise.
# Installs Node.js and npm with apt-get when they are missing (as root).
set -euo pipefail
cd "$(dirname "$0")/../services/gateway/webapp"

if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Node.js and npm"
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "The web app needs Node.js 20+ and npm (https://nodejs.org)." >&2
    exit 1
  fi
fi

# dependencies: exactly the lock file, reinstalled when it changes
stamp=node_modules/.lectern-lock
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "==> installing the web app's packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

# the build: redone when any source is newer than the last build
if [ ! -f dist/index.html ] ||
   [ -n "$(find src index.html package-lock.json vite.config.* public -newer dist/index.html \
           -print -quit 2>/dev/null)" ]; then
  echo "==> building the web app"
  npm run build --silent
fi
