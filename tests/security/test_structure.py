"""Structure (issue 10, item 19): the app's plumbing does not reach into the domain layer."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from crypto import DataCipher, DataKeyMismatch
from services.errors import DomainError
from services.pii import PersonalDataCipher

ROOT = Path(__file__).resolve().parents[2]


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", ["extensions.py", "crypto.py"])
def test_plumbing_imports_nothing_from_services(module):
    bad = {m for m in _imported_modules(ROOT / module) if m == "services" or m.startswith("services.")}
    assert not bad, f"{module} imports {sorted(bad)} (even inside a function)"


def test_importing_extensions_loads_no_domain_module():
    out = subprocess.run([sys.executable, "-c", "import sys, extensions, crypto; "
                          "print(sorted(m for m in sys.modules if m.split('.')[0] in ('services', 'web', 'models')))"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_services_cipher_is_the_crypto_cipher_with_the_domain_refusal():
    from cryptography.fernet import Fernet

    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    plain, domain = DataCipher(key_a), PersonalDataCipher(key_a)
    token = plain.encrypt("310104199001011234")
    assert domain.decrypt(token) == "310104199001011234"
    assert plain.blind_index("x") == domain.blind_index("x")  # same key derivation: stored hashes still match
    with pytest.raises(DataKeyMismatch):
        DataCipher(key_b).decrypt(token)
    with pytest.raises(DomainError) as exc:
        PersonalDataCipher(key_b).decrypt(token)
    assert exc.value.code == "data_key_mismatch"
