"""The example CI pipelines parse, and every `reliability` command in them is one the real CLI takes
(a dry run builds its plan: the scenario and locustfile exist, the options are valid)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from reliability.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "examples" / "ci"


def _github_commands(doc: dict[str, Any]) -> list[str]:
    return [line for job in doc["jobs"].values() for step in job["steps"] if "run" in step
            for line in str(step["run"]).splitlines()]


def _gitlab_commands(doc: dict[str, Any]) -> list[str]:
    return [str(line) for name, job in doc.items() if isinstance(job, dict) and "script" in job
            for line in job["script"]]


def _reliability_commands(lines: list[str]) -> list[list[str]]:
    out = []
    for line in lines:
        words = shlex.split(line.split(">")[0].rstrip("& "))
        if words and words[0] == "reliability":
            out.append(words[1:])
    return out


@pytest.mark.parametrize(("name", "commands"), [("github-actions.yml", _github_commands),
                                                ("gitlab-ci.yml", _gitlab_commands)])
def test_pipeline_commands_are_real(name: str, commands: Any) -> None:
    doc = yaml.safe_load((CI / name).read_text())
    lines = commands(doc)
    found = _reliability_commands(lines)
    assert [c[0] for c in found] == ["target", "run"]
    parser = build_parser()
    for argv in found:
        parser.parse_args(argv)  # SystemExit(2) on an unknown option
    run = next(c for c in found if c[0] == "run")
    dry = subprocess.run([sys.executable, "-m", "reliability.cli", *run, "--dry-run"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    record = run[run.index("--run-record") + 1]
    assert record.endswith(".json")
    junit = record[:-len(".json")] + ".junit.xml"
    text = (CI / name).read_text()
    assert junit in text  # the JUnit report the run writes is the one published
    assert str(Path(record).parent) + "/" in text  # the reports folder is kept as an artefact


def test_github_pipeline_publishes_even_on_failure() -> None:
    doc = yaml.safe_load((CI / "github-actions.yml").read_text())
    steps = doc["jobs"]["load-test"]["steps"]
    publishing = [s for s in steps if "upload-artifact" in str(s.get("uses", "")) or "junit" in str(s.get("uses", ""))]
    assert len(publishing) == 2 and all(s.get("if") == "always()" for s in publishing)


def test_gitlab_pipeline_keeps_artifacts_on_failure() -> None:
    job = yaml.safe_load((CI / "gitlab-ci.yml").read_text())["load-test"]
    assert job["artifacts"]["when"] == "always" and job["artifacts"]["reports"]["junit"].endswith(".junit.xml")
