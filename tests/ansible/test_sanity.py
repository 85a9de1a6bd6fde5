"""`ansible-test sanity` on the collection, as Ansible collections run it in their CI.

Only ``validate-modules`` runs here (the check that found the author format and the licence header
rule; the others, compile, pep8, yamllint, ansible-doc, pass with the same setup and cost a venv
each: run them all with ``ansible-test sanity --python 3.X`` in the collection's directory).

ansible-test bootstraps pip in its venvs with a script it downloads from ci-files.testing.ansible.com,
which this machine (and many CI runners) cannot reach; it uses a cached copy when there is one, so
the test saves a stand-in there first, unless one is already present: it runs ``ensurepip`` and
then ``pip install`` with the same arguments (less get-pip's own options).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "ansible" / "ansible_collections" / "proximity" / "core"

_GET_PIP_STANDIN = '''"""Stand-in for ansible-test's pip bootstrap (get-pip.py), saved by Proximity's tests:
ensurepip, then pip install the arguments (without get-pip's own options)."""
import subprocess
import sys

subprocess.run([sys.executable, "-m", "ensurepip", "--upgrade"], check=True, stdout=subprocess.DEVNULL)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.run([sys.executable, "-m", "pip", "install", *args]).returncode)
'''


def _pip_version() -> str:
    from ansible_test._internal.python_requirements import get_venv_packages

    class _Python:  # what get_venv_packages reads of a PythonConfig
        version = f"{sys.version_info.major}.{sys.version_info.minor}"

    return get_venv_packages(_Python())["pip"]  # type: ignore[arg-type]


@pytest.mark.timeout(600)  # the first run builds the check's venv (about 45 s); later runs reuse it
def test_validate_modules_passes() -> None:
    ansible_test = Path(sys.executable).with_name("ansible-test")
    assert ansible_test.exists(), "ansible-core (the test extra) provides ansible-test"
    cache = Path.home() / ".ansible" / "test" / "cache" / f"get_pip_{_pip_version().replace('.', '_')}.py"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(_GET_PIP_STANDIN)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    try:
        done = subprocess.run(
            [str(ansible_test), "sanity", "--test", "validate-modules", "--python", python, "--color", "no"],
            cwd=COLLECTION,
            env=env,
            capture_output=True,
            text=True,
            timeout=540,
            check=False,
        )
    finally:
        shutil.rmtree(COLLECTION / "tests" / "output", ignore_errors=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert 'Running sanity test "validate-modules"' in done.stdout + done.stderr


def test_every_module_has_the_licence_header_and_an_ignore_line() -> None:
    """The MIT answer to the GPLv3 header rule: an SPDX header, and one ignore line per module and
    ansible-core version the collection supports (ansible-core >= 2.17)."""
    modules = sorted(p.relative_to(COLLECTION).as_posix() for p in (COLLECTION / "plugins" / "modules").glob("*.py"))
    assert modules
    for module in modules:
        assert "# SPDX-License-Identifier: MIT\n" in (COLLECTION / module).read_text().split('"""', 1)[0], module
    for version in ("2.17", "2.18", "2.19", "2.20"):
        lines = (COLLECTION / "tests" / "sanity" / f"ignore-{version}.txt").read_text().splitlines()
        assert sorted(line.split()[0] for line in lines) == modules
        assert all(line.split()[1] == "validate-modules:missing-gplv3-license" for line in lines)
