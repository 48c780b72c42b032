#!/usr/bin/env bash
# vncdotool (a VNC client, PyPI only) in its own venv; the tests run
# /opt/nefeli-peers/vncdotool/bin/vncdotool. Idempotent.
set -euo pipefail
VERSION=1.4.2
venv=/opt/nefeli-peers/vncdotool
if [ -x "$venv/bin/vncdotool" ] && "$venv/bin/python" -m pip show vncdotool 2>/dev/null | grep -q "^Version: $VERSION\$"; then
    echo "vncdotool $VERSION present"
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "vncdotool==$VERSION" "cryptography==50.0.2"
echo "vncdotool $VERSION installed in $venv"
