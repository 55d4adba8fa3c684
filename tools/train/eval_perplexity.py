#!/usr/bin/env python3
"""Reference perplexity of an exported model directory on a text file, in float64.

Usage: tools/train/eval_perplexity.py MODEL_DIR TEXT_FILE OUT_JSON

The same protocol as `mamba3rt perplexity`: the text is encoded with the directory's
tokenizer.json by Hugging Face `tokenizers` (no special tokens), preceded by <|endoftext|>,
and every token after the first is predicted from all before it in one pass. The weights are
the exported ones (F16), computed in float64, so the runtime's float32 value must agree to
float rounding.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from mamba3_model import Mamba3Config, Mamba3LM, load_safetensors


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model_dir, text_file, out = sys.argv[1:]
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    with open(text_file, encoding="utf-8") as f:
        text = f.read()
    ids = [tok.token_to_id("<|endoftext|>")] + tok.encode(text, add_special_tokens=False).ids
    cfg = Mamba3Config.from_json(os.path.join(model_dir, "config.json"))
    model = Mamba3LM(cfg).double()
    load_safetensors(model, os.path.join(model_dir, "model.safetensors"))
    model = model.double().eval()
    with torch.no_grad():
        x = torch.tensor([ids], dtype=torch.long)
        logits = model(x[:, :-1])[0, :, : cfg.vocab_size].double()
        loss = F.cross_entropy(logits, x[0, 1:], reduction="mean").item()
    result = {"tokens": len(ids) - 1, "loss": loss, "perplexity": math.exp(loss), "dtype": "float64",
              "tokenizer": "huggingface tokenizers", "torch": torch.__version__}
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
