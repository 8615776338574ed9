"""Shared helpers of the Python tiers: repository paths, running the `strata` CLI and engine jobs
through the Node binding (engine_job.ts). Not the tests themselves."""
import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_checked(args, **kwargs):
    """Runs a command; on failure the assertion shows its stdout and stderr."""
    result = subprocess.run([str(a) for a in args], cwd=REPO, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, args))} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def strata(*args):
    """The TypeScript `strata` CLI."""
    return run_checked(["node", REPO / "engine" / "cli" / "bin.mjs", *args])


def tsx(script, *args):
    return run_checked([REPO / "node_modules" / ".bin" / "tsx", script, *args])


def engine_job(kind, request, workdir):
    """Runs an engine job through the Node binding; returns its result object."""
    request_file = workdir / f"{kind}-request.json"
    request_file.write_text(json.dumps(request))
    result = tsx(REPO / "tests" / "python" / "engine_job.ts", kind, request_file)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def workdir(tmp_path):
    return tmp_path
