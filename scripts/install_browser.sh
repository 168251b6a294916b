#!/bin/sh
# Debian's Chromium and ChromeDriver for the browser tests (tests/test_web_e2e.py). Does nothing when
# both are there; where they cannot be installed (not Debian, no sudo) it says so and the browser
# tests skip with that reason instead of failing the rest.
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if command -v apt-get >/dev/null 2>&1 \
  && $SUDO apt-get update -qq \
  && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; then
  echo "installed $(/usr/bin/chromium --version 2>/dev/null)"
else
  echo "warning: could not install Debian's chromium and chromium-driver; the browser tests will skip" >&2
fi
exit 0
