"""The README's two set-up commands are the ones the project actually uses."""

from __future__ import annotations

from tests.conftest import REPO


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
