// Helpers for run_peer_test.sh (the reference side is encode_with_hf.mjs).
//
//   node peer_tools.mjs lossy IN OUT
//       Decodes IN with a non-fatal TextDecoder (WHATWG: each maximal invalid subpart becomes
//       U+FFFD, as Rust's String::from_utf8_lossy does) and writes the result to OUT as UTF-8.
//   node peer_tools.mjs llama3-bos IN_TOKENIZER_JSON OUT_TOKENIZER_JSON
//       Writes a copy whose post_processor is Sequence[ByteLevel, TemplateProcessing
//       "<|begin_of_text|> $A"], exactly the post_processor of the current upstream
//       meta-llama/Meta-Llama-3-8B tokenizer.json (the packaged file has the original one,
//       ByteLevel only, which adds no BOS).
//   node peer_tools.mjs train-small OUT_TOKENIZER_JSON NUM_MERGES TRAINING_FILE...
//       Trains, deterministically, a small byte-level BPE the way HF's ByteLevelBPETokenizer
//       (add_prefix_space=True) lays it out: ByteLevel pre-tokenizer with add_prefix_space,
//       256-symbol byte alphabet, merges by pair frequency (ties: smallest pair), added tokens
//       <|endoftext|>, <pad> and <mask> (lstrip, as RoBERTa's).
//   node peer_tools.mjs explain TOKENIZER_JSON EXPECTED_IDS ACTUAL_IDS [CONTEXT]
//       Prints the first position where the two id files differ, with the ids and the decoded
//       token strings around it.
//   node peer_tools.mjs known-answers LLAMA3_JSON GPT2_JSON
//       Sanity-checks the reference itself against a few ids published by HF tokenizers (Rust).
import fs from "node:fs";
import process from "node:process";
import { Tokenizer, ByteLevelPreTokenizer } from "@huggingface/tokenizers";
import { encodeIds, readUtf8Strict } from "./encode_with_hf.mjs";

// GPT-2's bytes_to_unicode table.
function bytesToUnicode() {
  const bs = [];
  for (let b = 0x21; b <= 0x7e; ++b) bs.push(b);
  for (let b = 0xa1; b <= 0xac; ++b) bs.push(b);
  for (let b = 0xae; b <= 0xff; ++b) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; ++b) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      ++n;
    }
  }
  const enc = new Map();
  bs.forEach((b, i) => enc.set(b, String.fromCharCode(cs[i])));
  return enc;
}
const BYTE_ENC = bytesToUnicode();
const BYTE_DEC = new Map([...BYTE_ENC].map(([b, c]) => [c, b]));

function lossy(inPath, outPath) {
  const bytes = fs.readFileSync(inPath);
  const text = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true }).decode(bytes);
  fs.writeFileSync(outPath, Buffer.from(text, "utf8"));
  const replaced = [...text].filter((c) => c === "\uFFFD").length;
  process.stdout.write(`${outPath}: ${bytes.length} bytes in, ${replaced} U+FFFD\n`);
}

function llama3Bos(inPath, outPath) {
  const t = JSON.parse(fs.readFileSync(inPath, "utf8"));
  const bos = t.added_tokens.find((a) => a.content === "<|begin_of_text|>");
  if (!bos) throw new Error("no <|begin_of_text|> in added_tokens");
  t.post_processor = {
    type: "Sequence",
    processors: [
      { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
      {
        type: "TemplateProcessing",
        single: [
          { SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } },
          { Sequence: { id: "A", type_id: 0 } },
        ],
        pair: [
          { SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } },
          { Sequence: { id: "A", type_id: 0 } },
          { SpecialToken: { id: "<|begin_of_text|>", type_id: 1 } },
          { Sequence: { id: "B", type_id: 1 } },
        ],
        special_tokens: {
          "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [bos.id], tokens: ["<|begin_of_text|>"] },
        },
      },
    ],
  };
  fs.writeFileSync(outPath, JSON.stringify(t));
}

function trainSmall(outPath, numMerges, files) {
  const pre = new ByteLevelPreTokenizer({ add_prefix_space: true, trim_offsets: true, use_regex: true });
  const wordCounts = new Map();
  for (const f of files) {
    for (const w of pre.pre_tokenize_text(readUtf8Strict(f))) {
      wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
    }
  }
  const words = [...wordCounts.keys()].sort();
  const syms = words.map((w) => Array.from(w));
  const counts = words.map((w) => wordCounts.get(w));
  const merges = [];
  const learned = [];
  for (let m = 0; m < numMerges; ++m) {
    const pairCounts = new Map();
    for (let i = 0; i < syms.length; ++i) {
      const s = syms[i];
      for (let j = 0; j + 1 < s.length; ++j) {
        const k = s[j] + "\u0000" + s[j + 1];
        pairCounts.set(k, (pairCounts.get(k) ?? 0) + counts[i]);
      }
    }
    let best = null;
    let bestCount = 1; // need at least 2 occurrences
    for (const [k, c] of pairCounts) {
      if (c > bestCount || (c === bestCount && best !== null && k < best)) {
        best = k;
        bestCount = c;
      }
    }
    if (best === null) break;
    const [a, b] = best.split("\u0000");
    merges.push(`${a} ${b}`);
    learned.push(a + b);
    for (const s of syms) {
      for (let j = 0; j + 1 < s.length; ++j) {
        if (s[j] === a && s[j + 1] === b) s.splice(j, 2, a + b);
      }
    }
  }
  const added = [
    { content: "<|endoftext|>", lstrip: false },
    { content: "<pad>", lstrip: false },
    { content: "<mask>", lstrip: true },
  ];
  const vocab = {};
  let next = 0;
  const addedTokens = added.map(({ content, lstrip }) => {
    vocab[content] = next;
    return { id: next++, content, single_word: false, lstrip, rstrip: false, normalized: false, special: true };
  });
  for (const c of [...BYTE_ENC.values()].sort()) vocab[c] = next++;
  for (const t of learned) if (!(t in vocab)) vocab[t] = next++;
  const tok = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  fs.writeFileSync(outPath, JSON.stringify(tok));
  process.stdout.write(`${outPath}: ${Object.keys(vocab).length} tokens, ${merges.length} merges\n`);
}

function readIds(path) {
  const s = fs.readFileSync(path, "utf8").trim();
  return s.length === 0 ? [] : s.split(/\s+/).map(Number);
}

// The raw bytes a token stands for (byte-level decoded); added tokens give their content.
function tokenBytes(tokenizer, id) {
  const added = tokenizer.get_added_tokens_decoder().get(id);
  if (added) return { bytes: Buffer.from(added.content, "utf8"), added: true };
  const t = tokenizer.id_to_token(id);
  if (t === undefined) return null;
  const bytes = [];
  for (const c of t) {
    const b = BYTE_DEC.get(c);
    if (b === undefined) return { bytes: Buffer.from(t, "utf8"), added: false }; // not byte-level
    bytes.push(b);
  }
  return { bytes: Buffer.from(bytes), added: false };
}

function tokenRepr(tokenizer, id) {
  const tb = tokenBytes(tokenizer, id);
  if (tb === null) return "<no such id>";
  return bytesRepr(tb.bytes) + (tb.added ? " (added token)" : "");
}

// Bytes as a JSON-style string: valid UTF-8 shown as text, every other byte as \xNN.
function bytesRepr(bytes) {
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    const len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    let ok = len > 0 && i + len <= bytes.length;
    let text = "";
    if (ok) {
      try {
        text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes.subarray(i, i + len));
      } catch {
        ok = false;
      }
    }
    if (ok) {
      out += JSON.stringify(text).slice(1, -1);
      i += len;
    } else {
      out += "\\x" + b.toString(16).padStart(2, "0");
      i += 1;
    }
  }
  return '"' + out + '"';
}

function idsText(tokenizer, ids) {
  return bytesRepr(Buffer.concat(ids.map((id) => tokenBytes(tokenizer, id)?.bytes ?? Buffer.alloc(0))));
}

function explain(tokenizerPath, expectedPath, actualPath, context = 6) {
  const tokenizer = new Tokenizer(JSON.parse(fs.readFileSync(tokenizerPath, "utf8")), {});
  const exp = readIds(expectedPath);
  const act = readIds(actualPath);
  let i = 0;
  while (i < exp.length && i < act.length && exp[i] === act[i]) ++i;
  if (i === exp.length && i === act.length) {
    process.stdout.write("    (no difference)\n");
    return;
  }
  process.stdout.write(`    lengths: expected ${exp.length}, ours ${act.length}; first difference at index ${i}\n`);
  const from = Math.max(0, i - context);
  const show = (label, ids) => {
    process.stdout.write(`    ${label}:\n`);
    for (let k = from; k < Math.min(ids.length, i + context); ++k) {
      const mark = k === i ? ">>" : "  ";
      process.stdout.write(`      ${mark} [${k}] ${ids[k]} ${tokenRepr(tokenizer, ids[k])}\n`);
    }
    if (i >= ids.length) process.stdout.write(`      >> [${i}] (end of ids)\n`);
  };
  show("expected (HF Tokenizers.js)", exp);
  show("ours (mamba3rt)", act);
  const before = exp.slice(Math.max(0, i - 3 * context), i);
  process.stdout.write(`    text before:  ${idsText(tokenizer, before)}\n`);
  process.stdout.write(`    expected next: ${idsText(tokenizer, exp.slice(i, i + context))}\n`);
  process.stdout.write(`    ours next:     ${idsText(tokenizer, act.slice(i, i + context))}\n`);
}

function knownAnswers(llamaPath, gpt2Path) {
  // Ids as HF tokenizers (Rust) produces them for these public tokenizers.
  const cases = [
    [gpt2Path, "Hello world", false, [15496, 995]],
    [gpt2Path, " Hello world", false, [18435, 995]],
    [gpt2Path, "<|endoftext|>", false, [50256]],
    [llamaPath, "Hello world", false, [9906, 1917]],
    [llamaPath, "<|begin_of_text|><|eot_id|>", false, [128000, 128009]],
  ];
  const cache = new Map();
  let bad = 0;
  for (const [path, text, special, want] of cases) {
    if (!cache.has(path)) cache.set(path, new Tokenizer(JSON.parse(fs.readFileSync(path, "utf8")), {}));
    const got = encodeIds(cache.get(path), text, special);
    const ok = got.length === want.length && got.every((v, k) => v === want[k]);
    if (!ok) {
      ++bad;
      process.stdout.write(`known-answer FAIL ${path} ${JSON.stringify(text)}: got [${got}] want [${want}]\n`);
    }
  }
  if (bad === 0) process.stdout.write(`known answers: ${cases.length} ok\n`);
  return bad === 0 ? 0 : 1;
}

function main(argv) {
  const [cmd, ...a] = argv;
  switch (cmd) {
    case "lossy":
      lossy(a[0], a[1]);
      return 0;
    case "llama3-bos":
      llama3Bos(a[0], a[1]);
      return 0;
    case "train-small":
      trainSmall(a[0], Number(a[1]), a.slice(2));
      return 0;
    case "explain":
      explain(a[0], a[1], a[2], a[3] ? Number(a[3]) : 6);
      return 0;
    case "known-answers":
      return knownAnswers(a[0], a[1]);
    default:
      process.stderr.write("usage: node peer_tools.mjs lossy|llama3-bos|train-small|explain|known-answers ...\n");
      return 64;
  }
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`peer_tools: ${e.stack ?? e}\n`);
  process.exitCode = 2;
}
