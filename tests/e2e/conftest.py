"""The real workerd runtime, pinned in package.json beside this file, and runs of the scenarios."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracetree.cli import main

E2E = Path(__file__).resolve().parent
SCENARIO = E2E / "scenario"
WORKERD = E2E / "node_modules" / ".bin" / "workerd"
PINNED = json.loads((E2E / "package.json").read_text(encoding="utf-8"))["dependencies"]["workerd"]
# A safety net for a hung runtime, not a measurement: a scenario takes about a second.
RUN_LIMIT_S = 300


@pytest.fixture(scope="session")
def workerd() -> Path:
    """The pinned workerd binary; installed from npm on first use when node and npm are there
    (CI's .ci/run installs it beforehand). Skipped only when node or npm is missing."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not found: the end-to-end tests run the real workerd "
                    f"runtime, installed with `npm install` in tests/e2e (workerd@{PINNED})")
    if not WORKERD.exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=E2E, check=True,
                       timeout=RUN_LIMIT_S)
    return WORKERD


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the scenario folder with the tail worker written into it by `tracetree tail-worker`."""
    folder = tmp_path_factory.mktemp("scenario")
    shutil.copytree(SCENARIO, folder, dirs_exist_ok=True)
    result = CliRunner().invoke(main, ["tail-worker", "-o", str(folder / "tracetree-tail.js")])
    assert result.exit_code == 0, result.output
    return folder


RunWorkerd = Callable[..., Path]


@pytest.fixture(scope="session")
def run_workerd(workerd: Path, scenario: Path) -> RunWorkerd:
    """Run `workerd test [--predictable] CONFIG` in the scenario folder; the combined stdout and
    stderr (as `2>&1` would give them) go to a log file, whose path is returned."""

    def run(config: str, *, predictable: bool, log_name: str | None = None, text: str | None = None) -> Path:
        if text is not None:
            (scenario / config).write_text(text, encoding="utf-8")
        mode = "predictable" if predictable else "random"
        log = scenario / (log_name or f"{Path(config).stem}-{mode}.log")
        command = [str(workerd), "test", *(["--predictable"] if predictable else []), config]
        with log.open("wb") as handle:
            done = subprocess.run(command, cwd=scenario, stdout=handle, stderr=subprocess.STDOUT,
                                  timeout=RUN_LIMIT_S, check=False)
        assert done.returncode == 0, log.read_text(encoding="utf-8", errors="replace")[-3000:]
        return log

    return run
