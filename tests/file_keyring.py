"""A keyring backend for tests that run `ccs` as a subprocess: entries in a JSON file named by
$CCS_TEST_KEYRING. Subprocesses pick it through keyring's own PYTHON_KEYRING_BACKEND (the `keyring`
fixture in conftest sets both); nothing is installed, so no user's keyring changes."""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class FileKeyring(KeyringBackend):
    priority = 1

    @property
    def _path(self) -> Path:
        return Path(os.environ["CCS_TEST_KEYRING"])

    def _entries(self) -> dict:
        try:
            return json.loads(self._path.read_text())
        except FileNotFoundError:
            return {}

    def get_password(self, service, username):
        return self._entries().get(f"{service}/{username}")

    def set_password(self, service, username, password):
        self._path.write_text(json.dumps({**self._entries(), f"{service}/{username}": password}))

    def delete_password(self, service, username):
        entries = self._entries()
        if entries.pop(f"{service}/{username}", None) is None:
            raise PasswordDeleteError(username)
        self._path.write_text(json.dumps(entries))
