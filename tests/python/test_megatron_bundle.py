"""Megatron tier: for every template, `strata export-megatron` writes a launch bundle whose
arguments Megatron-Core itself accepts and whose layers, sizes, pipeline cuts, MTP depth and
per-module precision match the Strata document (megatron_check.py does the checking on CPU, without
GPUs or torch.distributed). Tampered bundles must be rejected, so the checks can fail.

Not here: the checks themselves (megatron_check.py), the TypeScript unit tests of the exporter
(engine/spec/megatron/*.test.ts).
"""

import json
import shutil
from pathlib import Path

import pytest

from conftest import REPO, strata
from megatron_check import BundleMismatch, check_bundle

TEMPLATES = sorted(p.stem for p in (REPO / "templates").glob("*.json"))
NEMOTRON_3 = ["nemotron-3-nano-30b-a3b", "nemotron-3-super-120b-a12b"]


def export(source: str, out: Path, *layout: str) -> Path:
    strata("export-megatron", source, "--out", out, *layout)
    return out


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_exports_a_bundle_megatron_core_accepts(template, tmp_path):
    bundle = export(template, tmp_path / "bundle", "--nodes", "1", "--gpus-per-node", "8")
    summary = check_bundle(bundle, REPO / "templates" / f"{template}.json")
    # Without layout options the planner picks the layout; its pipeline stages are the pattern's cuts.
    plan = json.loads((bundle / "plan.json").read_text())
    assert len(summary["cuts"]) == plan["layout"]["pp"] - 1
    assert plan["memory"]["fits"] or plan["layout"]["pp"] == 1
    assert summary["precision_rows"] > 0


@pytest.mark.parametrize("template", NEMOTRON_3)
def test_nemotron_3_with_pipeline_and_expert_parallelism(template, tmp_path):
    bundle = export(template, tmp_path / "bundle", "--nodes", "4", "--gpus-per-node", "8", "--tp", "2", "--pp", "2", "--ep", "8", "--recompute", "selective")
    summary = check_bundle(bundle, REPO / "templates" / f"{template}.json")
    layers = summary["layers"]
    assert summary["cuts"] == [layers // 2]
    args = (bundle / "args.txt").read_text()
    assert "--fp4-recipe nvfp4" in args and "--te-precision-config-file" in args
    assert (bundle / "bridge_recipe.py").exists()
    if template.startswith("nemotron-3-super"):
        assert summary["mtp_depth"] == 2 and "--moe-latent-size 1024" in args


def test_per_layer_precision_matchers_follow_megatron_matching(tmp_path):
    doc = json.loads((REPO / "templates" / "tiny-hybrid.json").read_text())
    doc["model"]["precision"] = {
        "default": "nvfp4",
        "rules": [
            {"select": {"layers": {"from": 1, "to": 2}, "roles": ["mamba.in_proj", "moe.expert_fc1"]}, "format": "mxfp8"},
            {"select": {"roles": ["attention.qkv"]}, "format": "fp8_e4m3"},
            {"select": {"last_n": 2}, "format": "bf16"},
        ],
    }
    source = tmp_path / "painted.json"
    source.write_text(json.dumps(doc))
    bundle = export(str(source), tmp_path / "bundle")
    yaml = (bundle / "te_precision.yaml").read_text()
    assert "decoder.layers.1." in yaml and "decoder.layers.*.self_attention.linear_qkv" in yaml
    check_bundle(bundle, source)


def _tamper(bundle: Path, tmp_path: Path, name: str, edit) -> Path:
    copy = tmp_path / name
    shutil.copytree(bundle, copy)
    args = copy / "args.txt"
    args.write_text(edit(args.read_text()))
    return copy


@pytest.fixture(scope="module")
def nano_bundle(tmp_path_factory):
    return export("nemotron-3-nano-30b-a3b", tmp_path_factory.mktemp("nano") / "bundle", "--nodes", "2", "--tp", "2", "--pp", "2", "--ep", "8")


@pytest.mark.parametrize(
    "name,edit,message",
    [
        ("size", lambda t: t.replace("--mamba-num-heads 64", "--mamba-num-heads 32"), "mamba_num_heads"),
        ("kind", lambda t: t.replace("--hybrid-layer-pattern MEMEM*", "--hybrid-layer-pattern MEMEMM"), "layer 5"),
        ("cut", lambda t: t.replace("EMEMEM|*EMEMEM", "EMEMEM*|EMEMEM"), "pipeline cuts"),
        ("unknown flag", lambda t: t + "--made-up-flag 3\n", "--made-up-flag"),
        ("precision", lambda t: t.replace("--num-layers-at-end-in-bf16 8", "--num-layers-at-end-in-bf16 2"), "the policy says bf16"),
    ],
)
def test_tampered_bundles_are_rejected(nano_bundle, tmp_path, name, edit, message):
    tampered = _tamper(nano_bundle, tmp_path, name.replace(" ", "-"), edit)
    with pytest.raises(BundleMismatch, match=message.replace("*", r"\*")):
        check_bundle(tampered, REPO / "templates" / "nemotron-3-nano-30b-a3b.json")


def test_scripts_parse_and_launch_megatron_with_the_arguments_of_args_txt(nano_bundle, tmp_path):
    import os
    import subprocess

    for script in ["train_torchrun.sh", "train_slurm.sbatch", "prepare_data.sh", "import_checkpoint.sh", "megatron_args.sh"]:
        subprocess.run(["bash", "-n", nano_bundle / script], check=True)
    compile((nano_bundle / "bridge_recipe.py").read_text(), "bridge_recipe.py", "exec")
    # A stand-in torchrun on PATH records what the launcher passes to Megatron-LM.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "torchrun").write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$RECORD"\n')
    (fake_bin / "torchrun").chmod(0o755)
    record = tmp_path / "argv.txt"
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}", "RECORD": str(record), "MEGATRON_LM": "/opt/megatron-lm", "DATA_PREFIX": "/data/corpus_text_document"}
    env.pop("TOKENIZER_MODEL", None)
    subprocess.run(["bash", nano_bundle / "train_torchrun.sh"], check=True, env=env, cwd=tmp_path)
    argv = record.read_text().splitlines()
    script_at = argv.index("/opt/megatron-lm/pretrain_mamba.py")
    assert argv[:script_at] == ["--nproc_per_node", "8", "--nnodes", "2", "--node_rank", "0", "--master_addr", "localhost", "--master_port", "29500"]
    substitutions = {
        "${TOKENIZER_MODEL}": "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16",
        "${DATA_PREFIX}": "/data/corpus_text_document",
        "${DATA_CACHE_DIR}": f"{nano_bundle}/data-cache",
        "${CHECKPOINT_DIR}": f"{nano_bundle}/checkpoints",
        "${TENSORBOARD_DIR}": f"{nano_bundle}/tensorboard",
        "${BUNDLE_DIR}": str(nano_bundle),
    }
    expected = []
    for token in (nano_bundle / "args.txt").read_text().split():
        for placeholder, value in substitutions.items():
            token = token.replace(placeholder, value)
        expected.append(token)
    assert argv[script_at + 1 :] == expected
