#!/usr/bin/env bash
# Prints the path of a Python 3.10 interpreter (Rasa 3.6 needs >=3.8,<3.11).
# Order: $PYTHON, python3.10 on PATH, pyenv's versions folder, common prefixes.
# A candidate counts only if it actually runs and reports 3.10 (a pyenv shim
# for a version that is not selected fails, and is skipped).
set -u
is310() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; }

if [ -n "${PYTHON:-}" ]; then
  if is310 "$PYTHON"; then command -v "$PYTHON"; exit 0; fi
  echo "PYTHON=$PYTHON is not a working Python 3.10" >&2; exit 1
fi
candidates=()
command -v python3.10 >/dev/null 2>&1 && candidates+=("$(command -v python3.10)")
pyenv_root="${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}"
for p in $(ls -d "$pyenv_root"/versions/3.10*/bin/python3.10 2>/dev/null | sort -rV); do candidates+=("$p"); done
candidates+=(/usr/local/bin/python3.10 /usr/bin/python3.10 /opt/homebrew/bin/python3.10)
for c in "${candidates[@]}"; do
  if is310 "$c"; then echo "$c"; exit 0; fi
done
cat >&2 <<'MSG'
No Python 3.10 found. Rasa 3.6 needs Python 3.10 (not 3.11 or newer). Install one of:
  pyenv:          pyenv install 3.10.13
  Debian/Ubuntu:  apt-get install python3.10 python3.10-venv   (deadsnakes PPA on Ubuntu)
  macOS:          brew install python@3.10
or point to one:  make run PYTHON=/path/to/python3.10
MSG
exit 1
