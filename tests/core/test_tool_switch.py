"""CI's switch (HOOKYARD_REQUIRE_TOOLS=1, set by .ci/run) turns a missing tool's skip into a failure."""

import subprocess
import sys

import pytest

from helpers import REPO

NEEDS_A_MISSING_TOOL = """
import tools

def test_needs_it():
    tools.system_tool("hookyard-no-such-tool", ("hookyard-no-such-package",))
"""


@pytest.mark.parametrize("switch, outcome", [("", "1 skipped"), ("1", "1 failed")])
def test_a_missing_tool_skips_unless_ci_requires_it(tmp_path, monkeypatch, switch, outcome):
    (tmp_path / "test_missing_tool.py").write_text(NEEDS_A_MISSING_TOOL)
    monkeypatch.setenv("HOOKYARD_REQUIRE_TOOLS", switch)
    monkeypatch.setenv("PYTHONPATH", str(REPO / "tests"))
    monkeypatch.setenv("PATH", "")  # no apt-get either: nothing to install it with
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:cloudcoil", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert outcome in result.stdout, result.stdout + result.stderr
    if switch:
        assert "HOOKYARD_REQUIRE_TOOLS=1" in result.stdout
