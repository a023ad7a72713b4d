#!/usr/bin/env bash
# The Debian packages 平安马甲 needs, in one place for `make run`, `make test`, `make deploy-check`,
# `make faults` and `.ci/run`.
#
#   scripts/debian-packages.sh run|test|deploy|faults|bench|ci
#
# As root, the missing packages of that purpose are installed (apt-get). Otherwise the one
# `apt-get install` line is printed and the script exits 0: the tests that need a missing package
# are then skipped with the reason shown by pytest (-ra), never an import error.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# run: a CJK TrueType font embedded in posters and cards (without it a non-embedded font is used).
RUN_PACKAGES=(fonts-wqy-zenhei)
# test: zbar decodes QR codes, poppler-utils (pdftotext, pdffonts, pdfinfo, pdftoppm) reads PDFs
# back, Debian's chromium runs the browser tests (driven by Playwright; never `playwright install`),
# redis-server for the shared rate-limit storage test, LibreOffice (calc, headless) to render the
# self-evaluation table as the finance office's spreadsheet program would.
TEST_PACKAGES=(fonts-wqy-zenhei libzbar0 poppler-utils chromium redis-server libreoffice-calc-nogui)
# deploy: what the deployment check (and a real server) runs: nginx, openssl for the self-signed
# certificate, PostgreSQL's client tools for pg_dump / pg_restore, Redis for the rate limits.
DEPLOY_PACKAGES=(nginx openssl python3-venv postgresql-client redis-server)
# faults: a throwaway PostgreSQL cluster (initdb, pg_ctl) the fault tests start and restart.
FAULTS_PACKAGES=(postgresql)
# bench: wrk drives the scan-throughput benchmark (bench/scan_throughput.py), nginx sits in front of
# the district soak's two web instances (bench/district.py); not needed by the tests.
BENCH_PACKAGES=(wrk nginx redis-server)

purpose="${1:-test}"
case "$purpose" in
  run) wanted=("${RUN_PACKAGES[@]}") ;;
  test) wanted=("${TEST_PACKAGES[@]}") ;;
  deploy) wanted=("${DEPLOY_PACKAGES[@]}") ;;
  faults) wanted=("${FAULTS_PACKAGES[@]}") ;;
  bench) wanted=("${BENCH_PACKAGES[@]}") ;;
  ci) wanted=("${TEST_PACKAGES[@]}" "${DEPLOY_PACKAGES[@]}" "${FAULTS_PACKAGES[@]}") ;;
  list) echo "${TEST_PACKAGES[*]} ${DEPLOY_PACKAGES[*]} ${FAULTS_PACKAGES[*]}" | tr ' ' '\n' | sort -u | tr '\n' ' '; echo; exit 0 ;;
  *) echo "usage: $0 run|test|deploy|faults|bench|ci|list" >&2; exit 2 ;;
esac

# npm (axe-core for the accessibility tests) only when no Node.js is on the machine at all: a
# Node.js installed some other way must not be replaced by Debian's.
if [ "$purpose" = test ] || [ "$purpose" = ci ]; then
  command -v npm >/dev/null || wanted+=(nodejs npm)
fi

missing=()
for pkg in "${wanted[@]}"; do
  case " ${missing[*]-} " in *" $pkg "*) continue ;; esac
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "Installing Debian packages: ${missing[*]}"
  apt-get update -qq
  # policy-rc.d: installing nginx / redis must not start the system's own services here.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "Missing Debian packages for '$purpose' (the tests that need them are skipped):"
  echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}"
fi
