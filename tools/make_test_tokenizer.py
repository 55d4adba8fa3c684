#!/usr/bin/python3
"""Write a small byte-level BPE tokenizer.json with exactly N tokens, for test models.

Usage: tools/make_test_tokenizer.py N OUT_JSON [--eot]

Ids 0..255 are the 256 bytes (id = byte value, in GPT-2's byte-level alphabet); then come merges
learned greedily (most frequent pair first, ties by the smaller pair) from a small built-in
English text, until the vocab has N tokens. With --eot the last id (N-1) is <|endoftext|>, a
special added token. The layout is GPT-2's: ByteLevel pre-tokenizer (GPT-2 regex, no prefix
space), BPE, ByteLevel post-processor and decoder. Deterministic; standard library only.
"""
import collections
import json
import re
import sys

TEXT = """\
The quick brown fox jumps over the lazy dog. It's a small model, and it doesn't need much text:
only enough to learn the most common pairs of bytes in English. When we train a tokenizer we
count how often each pair of symbols appears inside a word, merge the most frequent pair into a
new symbol, and repeat until the vocabulary has the size we want. The words that appear most
often, like "the", "and", "of", "to", "in", "that", "is", "was", "he", "for", "it", "with", "as",
"his", "on", "be", "at", "by", "I", "this", "had", "not", "are", "but", "from", "or", "have",
"an", "they", "which", "one", "you", "were", "her", "all", "she", "there", "would", "their",
"we", "him", "been", "has", "when", "who", "will", "more", "no", "if", "out", "so", "said",
"what", "up", "its", "about", "into", "than", "them", "can", "only", "other", "new", "some",
"could", "time", "these", "two", "may", "then", "do", "first", "any", "my", "now", "such",
"like", "our", "over", "man", "me", "even", "most", "made", "after", "also", "did", "many",
"before", "must", "through", "back", "years", "where", "much", "your", "way", "well", "down",
"should", "because", "each", "just", "those", "people", "how", "too", "little", "state",
"good", "very", "make", "world", "still", "own", "see", "men", "work", "long", "get", "here",
"between", "both", "life", "being", "under", "never", "day", "same", "another", "know",
"while", "last", "might", "us", "great", "old", "year", "off", "come", "since", "against",
"go", "came", "right", "used", "take", "three" become tokens of their own quickly.
Once upon a time, in a house by the sea, there lived an old woman and her three cats. Every
morning she walked down to the water, looked at the boats, and counted the birds. "One, two,
three," she would say, "and the fourth is always late." The cats followed her, one after
another, and waited on the rocks while she talked to the fishermen about the weather, the
price of bread, and the news from the town. In the evening they went home together, and the
woman read her books by the fire while the wind sang in the chimney.
Numbers appear too: 1, 2, 3, 10, 20, 100, 2024, 3.14159, 42 and 1000000. So do symbols such as
(parentheses), [brackets], {braces}, <angles>, #hash, @at, $dollar, %percent, &ampersand,
*star, +plus, =equals, /slash, \\backslash, |pipe, ~tilde, `backtick` and ^caret.
def main():
    for i in range(10):
        print("hello, world", i)
    return 0
"""

# GPT-2's pre-tokenizer pattern, approximated with Python's re (letters = [^\\W\\d_]).
PRETOKEN = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+""")


def byte_alphabet():
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars = {}
    n = 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + n)
            n += 1
    return chars


def learn(n_merges, byte_char):
    words = collections.Counter()
    for piece in PRETOKEN.findall(TEXT):
        words[tuple(byte_char[b] for b in piece.encode("utf-8"))] += 1
    words = {w: c for w, c in words.items()}
    known = set(byte_char.values())
    merges = []
    while len(merges) < n_merges:
        pairs = collections.Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        candidates = [(-c, p) for p, c in pairs.items() if p[0] + p[1] not in known]
        if not candidates:
            break
        _, best = min(candidates)
        merges.append(best)
        joined = best[0] + best[1]
        known.add(joined)
        new_words = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(joined)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + c
        words = new_words
    # The text is used up (every word is one token): extend learned tokens with common letters,
    # so any N works. These merges are valid but rarely fire.
    learned = [a + b for a, b in merges]
    for a in learned:
        for b in "etaoinshrdlu":
            if len(merges) >= n_merges:
                return merges
            if a + b not in known:
                merges.append((a, b))
                known.add(a + b)
                learned.append(a + b)
    if len(merges) < n_merges:
        raise SystemExit(f"could only make {len(merges)} merges; ask for fewer tokens")
    return merges


def main(argv):
    args = [a for a in argv[1:] if a != "--eot"]
    eot = "--eot" in argv[1:]
    if len(args) != 2 or not args[0].isdigit():
        sys.stderr.write(__doc__)
        return 2
    n, out_path = int(args[0]), args[1]
    if n < 256 + (1 if eot else 0):
        raise SystemExit("N must be at least 256 (257 with --eot)")
    byte_char = byte_alphabet()
    vocab = {byte_char[b]: b for b in range(256)}
    merges = learn(n - 256 - (1 if eot else 0), byte_char)
    for a, b in merges:
        vocab[a + b] = len(vocab)
    added = []
    if eot:
        added.append({"id": len(vocab), "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": True})
    assert len(vocab) + len(added) == n
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": vocab,
            "merges": [[a, b] for a, b in merges],
        },
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
