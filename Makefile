# The README's two commands. Both set up a fresh machine themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test setup sshd lint bench

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'

# Debian's OpenSSH server for the SFTP tests (needs root and apt; skipped when already there).
sshd:
	@if [ ! -x /usr/sbin/sshd ]; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y openssh-server; \
	fi
	@mkdir -p /run/sshd 2>/dev/null || true

# Main job on the embedded default: emulator + embedded SFTP + bundled sample exports.
demo: setup
	$(BIN)/aep-migrate run

test: setup sshd
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
