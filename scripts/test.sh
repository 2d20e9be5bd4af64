#!/usr/bin/env bash
# Set up and run the whole test suite: `./scripts/test.sh [pytest args]`.
# With DATABASE_URL=postgres://... it runs against PostgreSQL, otherwise SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
# .ci/run sets ARBITER_SKIP_SETUP=1 for the suites it runs side by side, after setting up once.
[ "${ARBITER_SKIP_SETUP:-0}" = 1 ] || ./scripts/setup.sh

# The browser tests drive Debian's chromium (Playwright cannot download browsers here).
if [ ! -x /usr/bin/chromium ] && [ "${ARBITER_SKIP_SETUP:-0}" != 1 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "==> installing chromium for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || echo "!! chromium could not be installed: browser tests will be skipped"
  else
    echo "!! /usr/bin/chromium is missing (apt-get install chromium): browser tests will be skipped"
  fi
fi

export ARBITER_DATA_DIR="${ARBITER_DATA_DIR:-$(mktemp -d -t arbiter-test-XXXXXX)}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest "$@"
