"""The README's two set-up commands are the ones the project actually uses, and its examples run
as written (against the shipped sample: ``~/notes`` and ``~/papers`` are two of its folders in a
home directory of the test's own)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from searchapp.jobs import ACTIVE
from tests.conftest import DATA, REPO


def _command_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "python3 -m venv" in line]


def test_ci_runs_the_readme_test_command() -> None:
    readme = _command_lines((REPO / "README.md").read_text(encoding="utf-8"))
    ci = _command_lines((REPO / ".ci" / "run").read_text(encoding="utf-8"))
    assert len(readme) == 2, "the README has exactly two set-up commands: run and test"
    assert len(ci) == 1 and ci[0] in readme
    assert "pytest" in ci[0]


def test_run_command_installs_cpu_torch_first_then_indexes_data_and_starts_the_ui() -> None:
    run = next(
        line
        for line in _command_lines((REPO / "README.md").read_text(encoding="utf-8"))
        if "searchapp ui" in line
    )
    ocr, rest = run.split(") && ", 1)
    assert ocr.startswith("(command -v tesseract >/dev/null || (apt-get update && apt-get install")
    assert "tesseract-ocr" in ocr and "|| echo" in ocr  # without root, the rest still runs
    steps = rest.split(" && ")
    assert steps[0] == "python3 -m venv .venv"
    assert steps[1].endswith("pip install torch==2.13.0")
    assert steps[2].endswith("pip install -e .")
    assert steps[3].endswith("searchapp index data/")
    assert steps[4].endswith("searchapp ui")


def test_test_command_installs_chromium_and_tesseract_when_missing_then_runs_pytest() -> None:
    test = next(
        line
        for line in _command_lines((REPO / "README.md").read_text(encoding="utf-8"))
        if "pytest" in line
    )
    assert test.startswith(
        "(command -v chromium >/dev/null && command -v tesseract >/dev/null || "
        "(apt-get update && apt-get install -y chromium tesseract-ocr))"
    )
    assert "pip install torch==2.13.0 && .venv/bin/pip install -e '.[dev]'" in test
    assert test.endswith("python -m pytest")


# Examples that run until stopped, each tested where it is built.
NOT_RUN_HERE = {
    "searchapp index ~/notes --watch": "tests/test_jobs.py (a watched folder)",
    "searchapp ui --port 8501": "tests/test_ui_browser.py (the UI in a real browser)",
}


def _usage_examples() -> list[str]:
    """The command lines of the README's "Using it" block, without their comments."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Using it", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [re.sub(r"\s+#.*$", "", line).strip() for line in block.strip().splitlines()]


def _run(line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env,
                          cwd=env["HOME"], timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, f"{line}\n{done.stderr}"
    return done


def test_the_readme_examples_work_as_written(tmp_path: Path) -> None:
    examples = _usage_examples()
    assert set(NOT_RUN_HERE) <= set(examples)  # a changed example is run, or listed here
    user = tmp_path / "user"
    shutil.copytree(DATA / "docs" / "bees", user / "notes")
    shutil.copytree(DATA / "docs" / "coffee", user / "papers")
    (user / "notes" / "drafts").mkdir()
    (user / "notes" / "drafts" / "unfinished.md").write_text("# Draft\nA varroa note, unfinished.")
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "HOME": str(user), "SEARCHAPP_HOME": str(tmp_path / "home"),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip
    out = {}
    for line in examples:
        if line in NOT_RUN_HERE:
            continue
        out[line] = _run(line, env).stdout
        if "--background" in line:  # the job runs on: wait for it, as a user would
            deadline = time.monotonic() + 600
            while any(job["state"] in ACTIVE for job in _jobs(env)):
                assert time.monotonic() < deadline, "the background index run did not end"
                time.sleep(0.5)
    assert "added" in out["searchapp index ~/notes ~/papers"]
    assert "unfinished" not in out['searchapp search "how do I get rid of varroa mites" --k 5']
    assert "Varroa" in out['searchapp search "how do I get rid of varroa mites" --k 5']
    keyword = json.loads(out['searchapp search "varroa" --mode keyword --json'])
    assert keyword["results"] and "Varroa" in keyword["results"][0]["title"]
    lines = out["printf 'query one\\nquery two\\n' | searchapp search - --json"].splitlines()
    assert [json.loads(line)["query"] for line in lines] == ["query one", "query two"]
    assert "index" in out["searchapp jobs list"]
    # After ``remove ~/papers`` the coffee notes are out of the index, and still on disk.
    after = json.loads(_run('searchapp search "espresso grind" --json', env).stdout)
    assert all("/papers/" not in result["path"] for result in after["results"])
    assert (user / "papers").is_dir() and any((user / "papers").iterdir())


def _jobs(env: dict[str, str]) -> list[dict]:
    return json.loads(_run("searchapp jobs list --json", env).stdout)
