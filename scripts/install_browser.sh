#!/bin/sh
# Debian's browsers for the browser tests: chromium and chromium-driver (tests/test_web_e2e.py,
# tests/test_web_studio.py) and firefox-esr (tests/test_web_firefox.py). Installs only what is
# missing, and does nothing when all are there; where one cannot be installed (not Debian, no sudo,
# not in the distribution) it says so and the tests that need it skip with that reason instead of
# failing the rest.
CHROMIUM=""
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then CHROMIUM="chromium chromium-driver"; fi
FIREFOX=""
if [ ! -x /usr/bin/firefox-esr ] && ! command -v firefox >/dev/null 2>&1; then FIREFOX="firefox-esr"; fi
if [ -z "$CHROMIUM$FIREFOX" ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
UPDATED=false
if command -v apt-get >/dev/null 2>&1 && $SUDO apt-get update -qq; then UPDATED=true; fi

# get BROWSER TESTS PACKAGE...: installs the packages, then says BROWSER's version
get() {
  browser=$1 tests=$2
  shift 2
  if $UPDATED && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null; then
    echo "installed $("$browser" --version 2>/dev/null)"
  else
    echo "warning: could not install Debian's $*; $tests will skip" >&2
  fi
}
# shellcheck disable=SC2086 # the package lists split into words
if [ -n "$CHROMIUM" ]; then get /usr/bin/chromium "the Chromium tests" $CHROMIUM; fi
if [ -n "$FIREFOX" ]; then get /usr/bin/firefox-esr "the Firefox test" $FIREFOX; fi
exit 0
