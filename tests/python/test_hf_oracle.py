"""The Hugging Face oracle tier: tiny designs covering every block kind (M Mamba-2, * attention,
- MLP, E MoE with shared expert and sigmoid router, LatentMoE, and a design with MTP heads, which
transformers ignores on load) are initialized by the Strata engine and exported with
`strata export-hf`; transformers' NemotronHForCausalLM loads the folder in fp32 on CPU; then, for one
batch, the engine's raw logits (its `logits` job) must match transformers' elementwise, its loss and
the gradient of every parameter (its `grads` job) must match too. Both engine jobs run through the
Node binding. Tolerances (fp32, fp32 policy):
  - logits: max |engine - transformers| / max |transformers| <= 1e-4 over all (B, T, V) elements,
    and every engine logit finite (a NaN fails: it is checked explicitly, not through a comparison);
  - loss: within 1e-4 relative;
  - each gradient: ||engine - transformers|| / ||transformers|| <= 1e-3 (norms over the tensor)."""
import json
import struct

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from transformers import AutoModelForCausalLM

from conftest import engine_job, strata

VOCAB = 259
BATCH, TIME = 2, 24

MAMBA = {"kind": "mamba2", "heads": 4, "head_dim": 8, "d_state": 16, "groups": 2, "conv_kernel": 4, "chunk": 8}
ATTENTION = {"kind": "attention", "heads": 4, "kv_heads": 2, "head_dim": 8}
MLP = {"kind": "mlp", "ffn": 48, "activation": "relu2"}
MOE = {
    "kind": "moe", "experts": 4, "top_k": 2, "expert_ffn": 24, "activation": "relu2", "shared_experts": 1, "shared_ffn": 32,
    "router": {"type": "sigmoid", "expert_bias": True, "norm_topk": True, "routed_scaling": 2.5},
}

DESIGNS = {
    "mamba": [MAMBA, MAMBA],
    "attention": [MAMBA, ATTENTION],
    "mlp": [MAMBA, MLP],
    "moe": [MAMBA, MOE],
    "latent_moe": [MAMBA, {**MOE, "latent": 16}],
    "hybrid_mtp": [MAMBA, ATTENTION, MAMBA, MOE],
}


def document(name, stack):
    model = {"name": f"oracle-{name}", "vocab_size": VOCAB, "d_model": 32, "stack": stack, "precision": {"default": "fp32", "rules": []}}
    if name == "hybrid_mtp":
        model["mtp"] = {"kind": "mtp", "depth": 1, "blocks": [ATTENTION, MOE]}
    training = {"seed": 7, "batch_size": BATCH}
    return {"format": "strata", "version": 2, "model": model, "pipeline": {"tokenizer": {"kind": "byte"}, "training": training}}


def write_stok(path, tokens, seq_len):
    header = json.dumps({"vocab": VOCAB, "n_tokens": int(tokens.size), "seq_len": seq_len, "has_mask": False, "bytes_per_token": None, "tokenizer": "byte"}).encode()
    path.write_bytes(b"STOKENS1" + struct.pack("<Q", len(header)) + header + tokens.astype("<u4").tobytes())


def engine_name(hf_name):
    return "backbone." + hf_name[len("model."):] if hf_name.startswith("model.") else hf_name


def engine_gradient(grads, hf_name, shape):
    """The engine's gradient for an HF parameter; routed experts are stored one tensor per expert."""
    name = engine_name(hf_name)
    if name in grads:
        return grads[name]
    if ".experts." in name and name.rsplit(".", 1)[-1] in ("up_proj", "down_proj"):
        prefix, proj = name.rsplit(".", 1)
        return np.stack([grads[f"{prefix}.{e}.{proj}.weight"] for e in range(shape[0])])
    raise AssertionError(f"engine gradients have no tensor for {hf_name} (looked for {name})")


@pytest.mark.parametrize("name", list(DESIGNS))
def test_transformers_matches_engine(name, workdir):
    doc_path = workdir / "doc.json"
    doc_path.write_text(json.dumps(document(name, DESIGNS[name])))
    strata("export-hf", doc_path, "--out", workdir / "hf")

    rng = np.random.default_rng(11)
    tokens = rng.integers(0, 256, size=(BATCH, TIME + 1))
    write_stok(workdir / "batch.stok", tokens.reshape(-1), TIME + 1)
    result = engine_job("grads", {"document": json.loads(doc_path.read_text()), "weights": str(workdir / "hf" / "model.safetensors"),
                                  "data": str(workdir / "batch.stok"), "out": str(workdir / "grads.safetensors")}, workdir)
    engine_loss = result["loss"]
    logits_job = engine_job("logits", {"document": json.loads(doc_path.read_text()), "weights": str(workdir / "hf" / "model.safetensors"),
                                       "data": str(workdir / "batch.stok"), "out": str(workdir / "logits.safetensors")}, workdir)
    engine_logits = load_file(str(workdir / "logits.safetensors"))["logits"]
    grads = load_file(str(workdir / "grads.safetensors"))

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(workdir / "hf", dtype=torch.float32)
    model.train()
    ids = torch.tensor(tokens, dtype=torch.long)
    logits = model(input_ids=ids[:, :-1], use_cache=False).logits
    token_losses = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1), reduction="none")
    loss = token_losses.mean()
    loss.backward()

    assert abs(loss.item() - engine_loss) <= 1e-4 * abs(loss.item()), f"{name}: loss transformers {loss.item()} engine {engine_loss}"
    assert abs(logits_job["loss"] - engine_loss) <= 1e-6 * abs(engine_loss), f"{name}: logits job loss {logits_job['loss']} vs grads job {engine_loss}"
    reference_logits = logits.detach().numpy()
    assert engine_logits.shape == reference_logits.shape == (BATCH, TIME, VOCAB), f"{name}: logits shape {engine_logits.shape}"
    assert np.all(np.isfinite(engine_logits)), f"{name}: the engine's logits are not all finite"
    worst = np.max(np.abs(engine_logits - reference_logits)) / np.max(np.abs(reference_logits))
    assert worst <= 1e-4, f"{name}: logits differ by up to {worst:.2e} of the largest logit"
    compared = 0
    for hf_name, param in model.named_parameters():
        reference = param.grad.detach().numpy() if param.grad is not None else np.zeros(tuple(param.shape), np.float32)
        ours = engine_gradient(grads, hf_name, tuple(param.shape)).reshape(reference.shape)
        scale = np.linalg.norm(reference)
        error = np.linalg.norm(ours - reference)
        assert error <= 1e-3 * max(scale, 1e-6), f"{name}: gradient of {hf_name}: |diff| {error:.3e} vs |ref| {scale:.3e}"
        compared += 1
    assert compared >= 8
