#!/usr/bin/env bash
# Peers for the Pithos/Swift compatibility tests (issue 11), each in its own
# environment under /opt/nefeli-peers, never in the repo's .venv:
#
#   /opt/nefeli-peers/kamaki       kamaki 0.16 (the Pithos command-line client)
#                                  in a Python 2.7 virtualenv: kamaki runs on
#                                  nothing newer.  The interpreter is the
#                                  CPython 2.7 that pyenv built on these
#                                  machines; virtualenv itself is kept beside
#                                  it (py27-tools) so pyenv's site-packages
#                                  stay untouched.
#   /opt/nefeli-peers/swift-2.38.* the swift sdist from PyPI, unpacked: its
#                                  test/functional suite runs against blockd.
#   /opt/nefeli-peers/swift-func   a Python 3 venv with swift (from that
#                                  sdist) and what its functional tests import.
#
# Idempotent: each part is skipped when its stamp file is there.
set -euo pipefail

PEERS=/opt/nefeli-peers
KAMAKI_VERSION=0.16
SWIFT_SPEC='swift==2.38.*'
mkdir -p "$PEERS"

find_python27() {
    local p
    for p in "${NEFELI_PYTHON27:-}" /root/.pyenv/versions/2.7*/bin/python2.7 "$(command -v python2.7 || true)"; do
        if [ -n "$p" ] && [ -x "$p" ]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

install_kamaki() {
    local env="$PEERS/kamaki" tools="$PEERS/py27-tools" py27
    if [ -x "$env/bin/kamaki" ] && [ -e "$env/.nefeli-$KAMAKI_VERSION" ]; then
        echo "compat.sh: kamaki $KAMAKI_VERSION present"
        return 0
    fi
    if ! py27="$(find_python27)"; then
        echo "compat.sh: no CPython 2.7 found (looked under /root/.pyenv/versions and on PATH); kamaki not installed" >&2
        return 1
    fi
    # virtualenv 20.21 is the last release that makes Python 2.7 environments.
    if [ ! -e "$tools/.nefeli-ok" ]; then
        rm -rf "$tools"
        "$py27" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
            --target "$tools" 'virtualenv<20.22'
        touch "$tools/.nefeli-ok"
    fi
    rm -rf "$env"
    PYTHONPATH="$tools" "$py27" -m virtualenv --quiet --no-download "$env"
    "$env/bin/pip" install --quiet --disable-pip-version-check "kamaki==$KAMAKI_VERSION"
    "$env/bin/kamaki" --version >/dev/null 2>&1 || "$env/bin/python" -c 'import kamaki'
    touch "$env/.nefeli-$KAMAKI_VERSION"
    echo "compat.sh: installed kamaki $KAMAKI_VERSION into $env"
}

install_swift_functional() {
    local env="$PEERS/swift-func" dl src
    if [ -x "$env/bin/python" ] && [ -e "$env/.nefeli-ok" ] && ls -d "$PEERS"/swift-2.38.*/test/functional >/dev/null 2>&1; then
        echo "compat.sh: swift functional suite present"
        return 0
    fi
    dl="$(mktemp -d)"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: -d "$dl" "$SWIFT_SPEC"
    rm -rf "$PEERS"/swift-2.38.*
    tar -xzf "$dl"/swift-*.tar.gz -C "$PEERS"
    rm -rf "$dl"
    src="$(ls -d "$PEERS"/swift-2.38.* | sort -V | tail -1)"
    rm -rf "$env"
    python3 -m venv "$env"
    "$env/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
    # swift itself (the functional tests import swift.common.*) and the test runner.
    "$env/bin/pip" install --quiet --disable-pip-version-check "$src" \
        pytest==8.4.2 pytest-subtests==0.14.2 python-swiftclient==4.11.0 requests mock
    (cd "$src" && SWIFT_TEST_CONFIG_FILE=/dev/null "$env/bin/python" -c 'import test.functional.swift_test_client')
    touch "$env/.nefeli-ok"
    echo "compat.sh: unpacked $(basename "$src") and its functional-test venv $env"
}

install_kamaki
install_swift_functional
