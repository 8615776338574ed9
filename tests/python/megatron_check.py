"""Checks a Strata Megatron-LM launch bundle against Megatron-Core itself (CPU, no GPU, no
torch.distributed): the `--hybrid-layer-pattern` goes through Megatron-Core's own hybrid layer
allocation, the model flags build a real `TransformerConfig`, the TE precision YAML goes through
Megatron-Core's own quantization-recipe matcher, and every layer kind, size, pipeline cut, MTP depth
and per-module precision recipe is compared with the Strata document the bundle was made from
(read here from the document JSON, independently of the TypeScript exporter).

Every emitted flag must be known: it maps to a `TransformerConfig` field that the installed
megatron-core has (TRANSFORMER_CONFIG_FLAGS), or it is one of the training-script flags listed in
TRAINING_SCRIPT_FLAGS (parsed by Megatron-LM's megatron/training/arguments.py, which is not part of
the megatron-core wheel), each with a comment saying what it does. Fields newer than the installed
wheel are allowed only when listed in NEWER_CONFIG_FIELDS with the reason.

Not here: running Megatron-LM training (needs GPUs), the pytest driver (test_megatron_bundle.py).
Usage: python tests/python/megatron_check.py BUNDLE_DIR [DOCUMENT.json]  (default: BUNDLE_DIR/strata.json)
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
import warnings
from pathlib import Path
from typing import Any, Callable

warnings.filterwarnings("ignore")  # megatron-core warns at import when TransformerEngine/Apex are absent

import megatron.core  # noqa: E402
from megatron.core.activations import squared_relu  # noqa: E402
from megatron.core.ssm import mamba_hybrid_layer_allocation as allocation  # noqa: E402
from megatron.core.transformer.transformer_config import TransformerConfig  # noqa: E402

CONFIG_FIELDS = {f.name for f in dataclasses.fields(TransformerConfig)}


def _int(v: list[str]) -> int:
    return int(v[0])


def _float(v: list[str]) -> float:
    return float(v[0])


def _str(v: list[str]) -> str:
    return v[0]


def _true(v: list[str]) -> bool:
    return True


# flag -> (TransformerConfig field, value parser). Switches that set a field to something other than
# True are handled in config_kwargs (--disable-bias-linear, --squared-relu, --swiglu, --fp8-format...).
TRANSFORMER_CONFIG_FLAGS: dict[str, tuple[str, Callable[[list[str]], Any]]] = {
    "--num-layers": ("num_layers", _int),
    "--hidden-size": ("hidden_size", _int),
    "--num-attention-heads": ("num_attention_heads", _int),
    "--num-query-groups": ("num_query_groups", _int),
    "--kv-channels": ("kv_channels", _int),
    "--ffn-hidden-size": ("ffn_hidden_size", _int),
    "--normalization": ("normalization", _str),
    "--norm-epsilon": ("layernorm_epsilon", _float),
    "--init-method-std": ("init_method_std", _float),
    "--disable-bias-linear": ("add_bias_linear", lambda v: False),
    "--add-qkv-bias": ("add_qkv_bias", _true),
    "--qk-layernorm": ("qk_layernorm", _true),
    "--window-size": ("window_size", lambda v: tuple(int(x) for x in v[0].split(","))),
    "--squared-relu": ("activation_func", lambda v: squared_relu),
    "--swiglu": ("gated_linear_unit", _true),
    "--attention-dropout": ("attention_dropout", _float),
    "--hidden-dropout": ("hidden_dropout", _float),
    "--mamba-num-heads": ("mamba_num_heads", _int),
    "--mamba-head-dim": ("mamba_head_dim", _int),
    "--mamba-state-dim": ("mamba_state_dim", _int),
    "--mamba-num-groups": ("mamba_num_groups", _int),
    "--num-experts": ("num_moe_experts", _int),
    "--moe-router-topk": ("moe_router_topk", _int),
    "--moe-ffn-hidden-size": ("moe_ffn_hidden_size", _int),
    "--moe-shared-expert-intermediate-size": ("moe_shared_expert_intermediate_size", _int),
    "--moe-router-score-function": ("moe_router_score_function", _str),
    "--moe-router-enable-expert-bias": ("moe_router_enable_expert_bias", _true),
    "--moe-router-bias-update-rate": ("moe_router_bias_update_rate", _float),
    "--moe-router-topk-scaling-factor": ("moe_router_topk_scaling_factor", _float),
    "--moe-aux-loss-coeff": ("moe_aux_loss_coeff", _float),
    "--moe-latent-size": ("moe_latent_size", _int),
    "--moe-grouped-gemm": ("moe_grouped_gemm", _true),
    "--moe-token-dispatcher-type": ("moe_token_dispatcher_type", _str),
    "--moe-router-dtype": ("moe_router_dtype", _str),
    "--mtp-num-layers": ("mtp_num_layers", _int),
    "--mtp-loss-scaling-factor": ("mtp_loss_scaling_factor", _float),
    "--mtp-use-repeated-layer": ("mtp_use_repeated_layer", _true),
    "--tensor-model-parallel-size": ("tensor_model_parallel_size", _int),
    "--pipeline-model-parallel-size": ("pipeline_model_parallel_size", _int),
    "--context-parallel-size": ("context_parallel_size", _int),
    "--expert-model-parallel-size": ("expert_model_parallel_size", _int),
    "--expert-tensor-parallel-size": ("expert_tensor_parallel_size", _int),
    "--sequence-parallel": ("sequence_parallel", _true),
    "--recompute-granularity": ("recompute_granularity", _str),
    "--recompute-modules": ("recompute_modules", lambda v: list(v)),
    "--recompute-method": ("recompute_method", _str),
    "--recompute-num-layers": ("recompute_num_layers", _int),
    "--bf16": ("bf16", _true),
    "--fp8-format": ("fp8", _str),
    "--fp8-recipe": ("fp8_recipe", _str),
    "--fp4-format": ("fp4", _str),
    "--fp4-recipe": ("fp4_recipe", _str),
    "--first-last-layers-bf16": ("first_last_layers_bf16", _true),
    "--num-layers-at-start-in-bf16": ("num_layers_at_start_in_bf16", _int),
    "--num-layers-at-end-in-bf16": ("num_layers_at_end_in_bf16", _int),
}

# TransformerConfig fields newer than some megatron-core wheels, with why the bundle needs them. The
# bundle's README names Megatron-LM with the unified hybrid pattern as its target.
NEWER_CONFIG_FIELDS: dict[str, str] = {
    "mtp_use_repeated_layer": "one MTP module applied at every depth (shared weights, Nemotron 3 Super); "
    "in Megatron-LM main after megatron-core 0.16",
}

# Flags Megatron-LM's training script parses (megatron/training/arguments.py) that are not
# TransformerConfig fields, with what each does.
TRAINING_SCRIPT_FLAGS: dict[str, str] = {
    "--hybrid-layer-pattern": "the layer letters (M * - E) with | pipeline cuts and / MTP depths; MambaModel's layout",
    "--vocab-size": "vocabulary size (used by NullTokenizer; other tokenizers size the vocabulary themselves)",
    "--max-position-embeddings": "longest sequence the model is built for (rotary tables, MambaModel max_sequence_length)",
    "--untie-embeddings-and-output-weights": "separate LM head instead of sharing the input embedding",
    "--group-query-attention": "enables --num-query-groups (GQA)",
    "--position-embedding-type": "none for the Nemotron hybrids, rope for RoPE attention",
    "--rotary-base": "RoPE theta",
    "--rotary-percent": "share of head_dim RoPE rotates",
    "--spec": "module and name of the Megatron-Core layer spec pretrain_mamba.py builds the stack from",
    "--tokenizer-type": "tokenizer class (HuggingFaceTokenizer)",
    "--tokenizer-model": "Hugging Face tokenizer id or folder",
    "--data-path": "prefix of the indexed dataset preprocess_data.py wrote",
    "--data-cache-path": "where dataset index caches go",
    "--split": "train/validation/test split of the dataset",
    "--seq-length": "tokens per training sequence",
    "--micro-batch-size": "sequences per micro-batch per data-parallel rank",
    "--global-batch-size": "sequences per optimizer step",
    "--train-iters": "optimizer steps",
    "--lr": "peak learning rate",
    "--min-lr": "learning rate at the end of decay",
    "--lr-warmup-iters": "linear warmup steps",
    "--lr-decay-style": "cosine, constant or WSD",
    "--lr-wsd-decay-style": "shape of the WSD decay phase",
    "--lr-wsd-decay-iters": "steps of the WSD decay phase",
    "--weight-decay": "AdamW weight decay",
    "--adam-beta1": "AdamW beta1",
    "--adam-beta2": "AdamW beta2",
    "--adam-eps": "AdamW epsilon",
    "--clip-grad": "global gradient-norm clipping (0 disables)",
    "--seed": "random seed",
    "--eval-interval": "steps between validation runs",
    "--eval-iters": "validation batches per run",
    "--use-distributed-optimizer": "shards optimizer state over data-parallel ranks (DDP config)",
    "--overlap-param-gather": "overlaps the distributed optimizer's parameter all-gather (DDP config)",
    "--overlap-grad-reduce": "overlaps gradient reduction with backward (DDP config)",
    "--te-precision-config-file": "TransformerEngine per-module precision YAML (becomes TransformerConfig.quant_recipe)",
    "--save": "checkpoint folder to write",
    "--load": "checkpoint folder to resume from",
    "--save-interval": "steps between checkpoints",
    "--ckpt-format": "checkpoint format (torch_dist: distributed, resharding on load)",
    "--log-interval": "steps between log lines",
    "--log-throughput": "log tokens/s and TFLOP/s",
    "--tensorboard-dir": "TensorBoard log folder",
}

PATTERN_FLAG = "--hybrid-layer-pattern"
LETTER = {"mamba2": "M", "attention": "*", "mlp": "-", "moe": "E"}
RECIPE_OF_FORMAT = {"bf16": "bf16", "fp32": "bf16", "nvfp4": "nvfp4", "mxfp8": "mxfp8", "fp8_e4m3": "fp8", "fp8_e5m2": "fp8"}
MODULE_OF_ROLE = {
    "mamba.in_proj": "mixer.in_proj",
    "mamba.out_proj": "mixer.out_proj",
    "attention.qkv": "self_attention.linear_qkv",
    "attention.o": "self_attention.linear_proj",
    "mlp.fc1": "mlp.linear_fc1",
    "mlp.fc2": "mlp.linear_fc2",
    "moe.expert_fc1": "mlp.experts.linear_fc1",
    "moe.expert_fc2": "mlp.experts.linear_fc2",
    "moe.latent_down": "mlp.fc1_latent_proj",
    "moe.latent_up": "mlp.fc2_latent_proj",
    "moe.shared_fc1": "mlp.shared_experts.linear_fc1",
    "moe.shared_fc2": "mlp.shared_experts.linear_fc2",
}


class BundleMismatch(AssertionError):
    """The bundle disagrees with the document or with Megatron-Core."""


def read_args(path: Path) -> list[tuple[str, list[str]]]:
    """args.txt: one `--flag value...` per line."""
    flags: list[tuple[str, list[str]]] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if not parts[0].startswith("--"):
            raise BundleMismatch(f"{path}:{number}: expected a --flag, got {parts[0]!r}")
        flags.append((parts[0], parts[1:]))
    return flags


def flatten(stack: list[dict]) -> list[dict]:
    """The document's layers in order (repeat groups expanded)."""
    layers: list[dict] = []
    for item in stack:
        if item["kind"] == "repeat":
            for _ in range(item["count"]):
                layers.extend(item["blocks"])
        else:
            layers.append(item)
    return layers


def split_pattern(pattern: str) -> tuple[str, str | None, int]:
    """(main pattern with | kept, MTP segment or None, MTP depth) by Megatron-Core's parser when the
    installed version has one (parse_hybrid_pattern), else by the same grammar: segments after '/'
    are MTP depths and must be identical."""
    parse = getattr(allocation, "parse_hybrid_pattern", None)
    if parse is not None:
        parsed = parse(pattern)
        return parsed.main_pattern or "", parsed.mtp_pattern, parsed.mtp_num_depths
    main, *mtp = pattern.split("/")
    if mtp and any(part != mtp[0] for part in mtp):
        raise BundleMismatch(f"MTP segments of {pattern!r} differ")
    return main, (mtp[0] if mtp else None), len(mtp)


def allocate(main: str) -> tuple[list[str], list[int]]:
    """Layer symbols by Megatron-Core's allocate_layers, and the indices where '|' cuts fall."""
    cuts: list[int] = []
    letters = ""
    for ch in main:
        if ch == "|":
            cuts.append(len(letters))
        else:
            letters += ch
    symbols = allocation.allocate_layers(len(letters), 0.0, 0.0, letters)
    allocation.get_layer_maps_from_layer_type_list(symbols)  # raises on unknown symbols
    return list(symbols), cuts


def balanced_cuts(count: int, pp: int) -> list[int]:
    base, extra = divmod(count, pp)
    cuts, start = [], 0
    for s in range(pp - 1):
        start += base + (1 if s < extra else 0)
        cuts.append(start)
    return cuts


def uniform(blocks: list[dict], kind: str) -> dict | None:
    of_kind = [b for b in blocks if b["kind"] == kind]
    return of_kind[0] if of_kind else None


def config_kwargs(flags: list[tuple[str, list[str]]]) -> tuple[dict[str, Any], list[str]]:
    """TransformerConfig keyword arguments from the flags, and the list of problems with unknown flags."""
    kwargs: dict[str, Any] = {}
    problems: list[str] = []
    for flag, values in flags:
        if flag in TRANSFORMER_CONFIG_FLAGS:
            field, parse = TRANSFORMER_CONFIG_FLAGS[flag]
            if field not in CONFIG_FIELDS:
                if field in NEWER_CONFIG_FIELDS:
                    continue
                problems.append(f"{flag} maps to TransformerConfig.{field}, which megatron-core {megatron.core.__version__} does not have")
                continue
            kwargs[field] = parse(values)
            if flag == "--swiglu":
                import torch.nn.functional as F

                kwargs["activation_func"] = F.silu
        elif flag not in TRAINING_SCRIPT_FLAGS:
            problems.append(f"{flag} is neither a TransformerConfig field nor a listed training-script flag")
    if "fp8" in kwargs and kwargs["fp8"] not in ("e4m3", "hybrid"):
        problems.append(f"--fp8-format {kwargs['fp8']} is not e4m3 or hybrid")
    return kwargs, problems


def check_bundle(bundle: Path, document: Path | None = None) -> dict[str, Any]:
    """Runs every check; raises BundleMismatch listing all problems. Returns a summary."""
    doc = json.loads((document or bundle / "strata.json").read_text())
    model = doc["model"]
    flags = read_args(bundle / "args.txt")
    values = {flag: vals for flag, vals in flags}
    problems: list[str] = []

    def expect(what: str, got: Any, want: Any) -> None:
        if got != want:
            problems.append(f"{what}: bundle has {got!r}, document says {want!r}")

    seen: set[str] = set()
    for flag, _ in flags:
        if flag in seen:
            problems.append(f"{flag} is given twice")
        seen.add(flag)

    # Pattern through Megatron-Core's allocation.
    layers = flatten(model["stack"])
    pattern = values[PATTERN_FLAG][0]
    main, mtp_segment, mtp_depth = split_pattern(pattern)
    symbols, cuts = allocate(main)
    expect("layer count (pattern)", len(symbols), len(layers))
    expect("--num-layers", int(values["--num-layers"][0]), len(layers))
    for i, (symbol, block) in enumerate(zip(symbols, layers)):
        if symbol != LETTER[block["kind"]]:
            problems.append(f"layer {i}: pattern has {symbol!r}, document has {block['kind']}")
    pp = int(values["--pipeline-model-parallel-size"][0])
    doc_cuts = model.get("pipeline_cuts", [])
    want_cuts = doc_cuts if pp > 1 and len(doc_cuts) == pp - 1 else balanced_cuts(len(layers), pp) if pp > 1 else []
    expect("pipeline cuts ('|' positions)", cuts, want_cuts)
    mtp = model.get("mtp")
    expect("MTP depth (pattern)", mtp_depth, mtp["depth"] if mtp else 0)
    if mtp:
        expect("MTP layer kinds", mtp_segment, "".join(LETTER[b["kind"]] for b in mtp["blocks"]))
        expect("--mtp-num-layers", int(values["--mtp-num-layers"][0]), mtp["depth"])
        expect("--mtp-loss-scaling-factor", float(values["--mtp-loss-scaling-factor"][0]), mtp.get("loss_weight", 0.3))
        expect("--mtp-use-repeated-layer", "--mtp-use-repeated-layer" in values, mtp.get("shared_weights", True))

    # TransformerConfig from the flags (hybrid model, CPU, no distributed init).
    kwargs, flag_problems = config_kwargs(flags)
    problems.extend(flag_problems)
    kwargs["is_hybrid_model"] = True
    # Megatron-LM's core_transformer_config_from_args derives these from --bf16 the same way.
    import torch

    kwargs["params_dtype"] = kwargs["pipeline_dtype"] = torch.bfloat16 if kwargs.get("bf16") else torch.float32
    try:
        config = TransformerConfig(**kwargs)
    except Exception as error:  # noqa: BLE001 - any rejection is a finding
        raise BundleMismatch(f"TransformerConfig rejects the bundle's flags: {error}") from error

    every = layers + (mtp["blocks"] if mtp else [])
    expect("hidden_size", config.hidden_size, model["d_model"])
    expect("--vocab-size", int(values["--vocab-size"][0]), model["vocab_size"])
    expect("layernorm_epsilon", config.layernorm_epsilon, model.get("norm_eps", 1e-5))
    expect("add_bias_linear", config.add_bias_linear, any(b.get("bias", False) for b in every))
    expect("untied head", "--untie-embeddings-and-output-weights" in values, not model.get("tie_embeddings", False))
    attention = uniform(every, "attention")
    if attention:
        expect("num_attention_heads", config.num_attention_heads, attention["heads"])
        expect("num_query_groups", config.num_query_groups, attention["kv_heads"])
        expect("kv_channels", config.kv_channels, attention["head_dim"])
        expect("position embedding", values["--position-embedding-type"][0], "rope" if attention.get("rope") else "none")
        expect("qk_layernorm", config.qk_layernorm, attention.get("qk_norm", False))
    mamba = uniform(every, "mamba2")
    if mamba:
        expect("mamba_num_heads", config.mamba_num_heads, mamba["heads"])
        expect("mamba_head_dim", config.mamba_head_dim, mamba["head_dim"])
        expect("mamba_state_dim", config.mamba_state_dim, mamba["d_state"])
        expect("mamba_num_groups", config.mamba_num_groups, mamba["groups"])
    mlp = uniform(every, "mlp")
    if mlp:
        expect("ffn_hidden_size", config.ffn_hidden_size, mlp["ffn"])
    moe = uniform(every, "moe")
    if moe:
        router = moe["router"]
        expect("num_moe_experts", config.num_moe_experts, moe["experts"])
        expect("moe_router_topk", config.moe_router_topk, moe["top_k"])
        expect("moe_ffn_hidden_size", config.moe_ffn_hidden_size, moe["expert_ffn"])
        shared = moe.get("shared_experts", 0) * moe.get("shared_ffn", 0)
        expect("moe_shared_expert_intermediate_size", config.moe_shared_expert_intermediate_size, shared or None)
        expect("moe_router_score_function", config.moe_router_score_function, router["type"])
        expect("moe_router_enable_expert_bias", config.moe_router_enable_expert_bias, router.get("expert_bias", False))
        expect("moe_router_topk_scaling_factor", config.moe_router_topk_scaling_factor, router["routed_scaling"] if router.get("routed_scaling", 1) != 1 else None)
        expect("moe_latent_size", getattr(config, "moe_latent_size", None), moe.get("latent"))
    activations = {b.get("activation", "relu2") for b in every if b["kind"] in ("mlp", "moe")}
    if activations:
        act = activations.pop()
        if act == "relu2":
            expect("activation_func", config.activation_func, squared_relu)
        elif act == "swiglu":
            expect("gated_linear_unit", config.gated_linear_unit, True)

    # The layer spec the bundle names must exist in Megatron-Core.
    module_name, spec_name = values["--spec"]
    if not hasattr(importlib.import_module(module_name), spec_name):
        problems.append(f"--spec {module_name} {spec_name}: no such layer spec")

    recipes_checked = check_precision(bundle, values, config, len(layers), cuts, problems)
    if problems:
        raise BundleMismatch(f"{bundle}:\n  " + "\n  ".join(problems))
    return {"layers": len(symbols), "cuts": cuts, "mtp_depth": mtp_depth, "flags": len(flags), "precision_rows": recipes_checked}


def check_precision(bundle: Path, values: dict[str, list[str]], config: TransformerConfig, n_layers: int, cuts: list[int], problems: list[str]) -> int:
    """Every TE GEMM of the main stack gets, from the flags and the YAML as Megatron-Core matches it,
    the recipe its row of precision.tsv asks for. Returns the number of rows checked."""
    if config.fp4:
        global_recipe = "nvfp4"
    elif config.fp8:
        global_recipe = "mxfp8" if values.get("--fp8-recipe", [""])[0] == "mxfp8" else "fp8"
    else:
        global_recipe = "bf16"
    matcher = None
    if "--te-precision-config-file" in values:
        from megatron.core.quantization.quant_config import MatchContext, RecipeConfig

        recipe_config = RecipeConfig.from_yaml_file(str(bundle / "te_precision.yaml"))

        def matcher(path: str) -> str | None:
            hit = recipe_config.match(MatchContext(module_path=path, layer_number=None))
            if hit is None:
                return None
            training = hit.config.get("training_recipe") or {}
            if training.get("fp4_quantization_recipe"):
                return "nvfp4"
            fp8 = training.get("fp8_quantization_recipe")
            return "mxfp8" if fp8 == "mxfp8" else "fp8" if fp8 else "bf16"

    first = config.num_layers_at_start_in_bf16 if config.first_last_layers_bf16 else 0
    last = config.num_layers_at_end_in_bf16 if config.first_last_layers_bf16 else 0
    starts = [0, *cuts]
    checked = 0
    lines = (bundle / "precision.tsv").read_text().splitlines()[1:]
    for line in lines:
        scope, layer, kind, role, fprop, _dgrad, _wgrad = line.split("\t")
        if scope != "layer" or role not in MODULE_OF_ROLE:
            continue
        i = int(layer)
        want = RECIPE_OF_FORMAT[fprop]
        if global_recipe == "bf16" or i < first or i >= n_layers - last:
            got = "bf16" if i < first or i >= n_layers - last else global_recipe
        else:
            local = i - max(s for s in starts if s <= i)
            override = matcher(f"decoder.layers.{local}.{MODULE_OF_ROLE[role]}") if matcher else None
            got = override or global_recipe
        checked += 1
        if got != want:
            problems.append(f"layer {i} ({kind}) {role}: Megatron would run {got}, the policy says {fprop}")
    return checked


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    try:
        summary = check_bundle(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) == 3 else None)
    except BundleMismatch as error:
        print(f"megatron_check: {error}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(summary))
