#!/usr/bin/env bash
# Regenerates the development page's screenshots in docs/ (devpage-grants.png, devpage-mint.png,
# devpage-inspect.png): the end-to-end test drives the real `portvakt serve` (development mode,
# examples/nais.yaml, examples/policy.toml) in headless Chromium and, with PORTVAKT_SCREENSHOTS
# set, saves each panel as Chromium renders it after minting a token and inspecting it.
#
# Needs chromium and chromium-driver (Debian: apt-get install -y chromium chromium-driver).
set -euo pipefail
cd "$(dirname "$0")/.."

PORTVAKT_SCREENSHOTS="$PWD/docs" cargo test -p portvakt-cli --test devpage \
  the_development_page_in_headless_chromium -- --exact
ls -l docs/devpage-*.png
