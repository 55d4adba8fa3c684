#!/usr/bin/env python3
"""Train a byte-level BPE tokenizer (Hugging Face `tokenizers`) on a text file.

Usage: tools/train/train_tokenizer.py TRAIN_TXT VOCAB_SIZE OUT_TOKENIZER_JSON

GPT-2 layout: ByteLevel pre-tokenizer (GPT-2 regex, no prefix space), BPE, ByteLevel decoder;
<|endoftext|> is the special token that separates documents (and ends generation).
Needs the `tokenizers` package (present on the GPU machine).
"""
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    train_txt, vocab_size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train([train_txt], trainer)
    tok.save(out)
    print(f"{out}: {tok.get_vocab_size()} tokens")


if __name__ == "__main__":
    main()
