"""schemathesis against the live ingest: no 5xx, no undocumented status, no answer that breaks the document.

The run is the CLI in a subprocess (the ingest serves on this test's event
loop), configured by `schemathesis.toml` beside this file: a fixed seed, a
few examples per operation, and the tenant's and admin's credentials per
security scheme. Its figures are printed to the test's output.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

CONFIG = Path(__file__).with_name("schemathesis.toml")
BUDGET_SECONDS = 240


async def test_schemathesis_finds_no_failure(start_ingest, tmp_path):
    # A generous failure budget: thousands of made-up ids would otherwise throttle the run's address.
    ingest = await start_ingest(failure_limit_per_ip=1_000_000)
    env = {
        **os.environ,
        "HOOKYARD_TENANT_KEY": await ingest.tenant(),
        "HOOKYARD_ADMIN_TOKEN": ingest.settings.admin_token,
    }
    report = tmp_path / "report.json"
    run = await asyncio.create_subprocess_exec(
        Path(sys.executable).with_name("schemathesis"),
        "--config-file",
        str(CONFIG),
        "run",
        f"{ingest.base}/v1/openapi.json",
        "--report-json-path",
        str(report),
        "--no-color",
        env=env,
        cwd=tmp_path,  # where schemathesis keeps its cache, out of the repository
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(run.communicate(), BUDGET_SECONDS)
    text = output.decode(errors="replace")
    print(text[-3000:])
    assert run.returncode == 0, text[-20000:]
    assert report.exists() and json.loads(report.read_text())
