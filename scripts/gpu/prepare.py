#!/usr/bin/env python3
"""Prepares the GPU visit's inputs on a machine with Node (the GPU box has none).

For every benchmark document in scripts/gpu/models/*.json it runs the app's analytics
(`strata analyze DOC --json`, H200 datasheet rates) and writes the figures the visit needs into
scripts/gpu/models/analytics.json:
  - training documents (pipeline.training.batch_size / seq_len): parameters, model FLOPs per token
    for training (the analytics' convention: 6 x active matmul params per token plus attention /
    scan terms at that context) and the roofline's predicted training tokens/s;
  - decode documents (name starts with "decode-"): predicted decode step time and tokens/s at each
    context of CONTEXTS for the same batch.
It also writes each training document's Hugging Face nemotron_h config (`strata convert --to hf`)
to scripts/gpu/models/hf/NAME.config.json for hf_train_bench.py. Files are written atomically.
Usage (repository root): python3 scripts/gpu/prepare.py
Not the visit itself (visit.sh) and not a test.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "scripts" / "gpu" / "models"
CONTEXTS = [1024, 4096, 16384, 65536]
# The serving batch of the second decode table (visit.sh decode_*_b64 steps) and its contexts.
SERVING_BATCH = 64
SERVING_CONTEXTS = [1024, 4096, 16384]


def strata(*args: str) -> str:
    result = subprocess.run(["node", str(ROOT / "engine" / "cli" / "bin.mjs"), *args], cwd=ROOT, text=True,
                            capture_output=True)
    if result.returncode != 0:
        sys.exit(f"prepare: strata {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def analyze(doc: Path, batch: int, context: int) -> dict:
    return json.loads(strata("analyze", str(doc), "--json", "--hardware", "h200", "--batch", str(batch),
                             "--context", str(context)))


def main() -> None:
    out: dict = {"hardware": "h200 (datasheet rates)", "models": {}}
    for doc in sorted(MODELS.glob("*.json")):
        if doc.name == "analytics.json":
            continue
        name = doc.stem
        training = json.loads(doc.read_text())["pipeline"]["training"]
        batch, seq_len = training["batch_size"], training["seq_len"]
        if name.startswith("decode-"):
            entry = {"batch": batch, "decode": {}, "decode_by_batch": {}}
            for decode_batch, contexts in ((batch, CONTEXTS), (SERVING_BATCH, SERVING_CONTEXTS)):
                table = entry["decode_by_batch"].setdefault(str(decode_batch), {})
                for context in contexts:
                    report = analyze(doc, decode_batch, context)
                    entry["params"] = report["params"]["total"]
                    entry["active_params"] = report["params"]["active"]
                    decode = report["roofline"]["decode"]
                    table[str(context)] = {"step_s": decode["step_s"], "tokens_per_s": decode["tokens_per_s"]}
            entry["decode"] = entry["decode_by_batch"][str(batch)]
        else:
            report = analyze(doc, batch, seq_len)
            entry = {
                "batch": batch,
                "seq_len": seq_len,
                "params": report["params"]["total"],
                "active_params": report["params"]["active"],
                "training_flops_per_token": report["flops"]["training_per_token"],
                "predicted_train_tokens_per_s": report["roofline"]["train"]["tokens_per_s"],
            }
            write_atomic(MODELS / "hf" / f"{name}.config.json", strata("convert", str(doc), "--to", "hf"))
        out["models"][name] = entry
        print(f"prepare: {name}: {json.dumps(entry)[:160]}")
    write_atomic(MODELS / "analytics.json", json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
