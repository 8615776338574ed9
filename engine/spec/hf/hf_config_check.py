# Oracle check of Hugging Face config.json files with transformers itself: for each folder given on
# the command line (holding a config.json), loads the config with AutoConfig, builds the causal-LM
# model on PyTorch's meta device (no memory, no weights) and prints one JSON object per folder with
# what transformers understood: model_type, config class, layer types, MTP settings, parameter count.
# Used by nemotron-h.test.ts; not a converter and not part of the app.
import json
import sys

import torch
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.utils import logging

logging.set_verbosity_error()


def summarize(folder: str) -> dict:
    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    summary = {
        "folder": folder,
        "model_type": config.model_type,
        "config_class": type(config).__name__,
        "model_class": type(model).__name__,
        "num_hidden_layers": config.num_hidden_layers,
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    if config.model_type == "nemotron_h":
        summary["layers_block_type"] = list(config.layers_block_type)
        summary["num_nextn_predict_layers"] = config.num_nextn_predict_layers
        summary["mtp_layers_block_type"] = list(config.mtp_layers_block_type)
        first = model.model.layers
        shapes = {}
        for layer in first:
            kind = layer.block_type
            if kind in shapes:
                continue
            shapes[kind] = {name: list(p.shape) for name, p in layer.mixer.named_parameters()}
        summary["mixer_shapes"] = shapes
    return summary


def main() -> int:
    out = [summarize(folder) for folder in sys.argv[1:]]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
