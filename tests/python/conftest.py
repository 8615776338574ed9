"""Shared helpers of the Python tiers: repository paths and running the `strata` CLI (through
tsx) and the native `strata-engine` CLI. Not the tests themselves."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NATIVE_BUILD = REPO / "build" / "native"


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


def native_cli():
    """Path of the native `strata-engine` CLI built by engine/native/build.mjs."""
    override = os.environ.get("STRATA_ENGINE_CLI")
    candidates = [Path(override)] if override else [NATIVE_BUILD / "strata-engine", NATIVE_BUILD / "Release" / "strata-engine"]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    found = shutil.which("strata-engine")
    assert found, f"strata-engine is not built (looked in {', '.join(map(str, candidates))}); run npm run build:engine"
    return Path(found)


@pytest.fixture
def workdir(tmp_path):
    return tmp_path
