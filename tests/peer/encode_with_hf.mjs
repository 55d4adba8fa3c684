// Encodes text files with Hugging Face Tokenizers.js (@huggingface/tokenizers), the reference side
// of the tokenizer peer test. Prints token ids space-separated on one line, the same format as
// `mamba3rt tokenize`.
//
//   node encode_with_hf.mjs TOKENIZER_JSON INPUT [ADD_SPECIAL] [--config TOKENIZER_CONFIG_JSON]
//       ADD_SPECIAL: true|false|1|0|--special (default false). Prints the ids to stdout.
//   node encode_with_hf.mjs TOKENIZER_JSON --jobs JOBS_FILE [--config TOKENIZER_CONFIG_JSON]
//       Batch mode (loads the tokenizer once): each line of JOBS_FILE is
//       "INPUT<TAB>ADD_SPECIAL<TAB>OUTPUT"; the ids for INPUT are written to OUTPUT.
//
// Input files are read as UTF-8 with a fatal TextDecoder (invalid UTF-8 is an error, exit 2) and
// ignoreBOM (a leading U+FEFF is text, as it is for the runtime). Encoding is
// `tokenizer.encode(text, { add_special_tokens })`, which, like HF tokenizers' Rust core, splits
// out added/special tokens (e.g. <|endoftext|>) whatever add_special_tokens says; the flag only
// controls the post-processor's template (e.g. a BOS).
import fs from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Tokenizer } from "@huggingface/tokenizers";

function usage(msg) {
  if (msg) process.stderr.write(`encode_with_hf: ${msg}\n`);
  process.stderr.write(
    "usage: node encode_with_hf.mjs TOKENIZER_JSON INPUT [true|false|--special] [--config CONFIG_JSON]\n" +
      "       node encode_with_hf.mjs TOKENIZER_JSON --jobs JOBS_FILE [--config CONFIG_JSON]\n",
  );
  process.exit(64);
}

export function parseFlag(s) {
  if (s === undefined) return false;
  const v = String(s).toLowerCase();
  if (v === "true" || v === "1" || v === "--special" || v === "special") return true;
  if (v === "false" || v === "0" || v === "--no-special" || v === "plain") return false;
  throw new Error(`bad add_special_tokens flag '${s}' (want true/false)`);
}

export function readUtf8Strict(path) {
  const bytes = fs.readFileSync(path);
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (e) {
    const err = new Error(`${path}: not valid UTF-8 (${e.message})`);
    err.code = "BAD_UTF8";
    throw err;
  }
}

export function loadTokenizer(tokenizerPath, configPath) {
  const tokenizerJson = JSON.parse(fs.readFileSync(tokenizerPath, "utf8"));
  const config = configPath ? JSON.parse(fs.readFileSync(configPath, "utf8")) : {};
  return new Tokenizer(tokenizerJson, config);
}

export function encodeIds(tokenizer, text, addSpecial) {
  const { ids } = tokenizer.encode(text, { add_special_tokens: addSpecial });
  for (const id of ids) {
    if (!Number.isInteger(id)) {
      // Tokenizers.js maps an unknown token to unk_token_id, which is undefined when the model has
      // no unk token; never print that as an id.
      throw new Error(`Tokenizers.js produced a non-integer id (${id}); cannot compare`);
    }
  }
  return ids;
}

function main(argv) {
  const args = [];
  let configPath = null;
  let jobsPath = null;
  for (let i = 0; i < argv.length; ++i) {
    if (argv[i] === "--config") {
      configPath = argv[++i] ?? usage("--config needs a file");
    } else if (argv[i] === "--jobs") {
      jobsPath = argv[++i] ?? usage("--jobs needs a file");
    } else if (argv[i] === "-h" || argv[i] === "--help") {
      usage();
    } else {
      args.push(argv[i]);
    }
  }
  if (args.length < 1) usage("missing TOKENIZER_JSON");
  const tokenizer = loadTokenizer(args[0], configPath);

  if (jobsPath !== null) {
    if (args.length !== 1) usage("--jobs takes no INPUT arguments");
    const lines = fs.readFileSync(jobsPath, "utf8").split("\n").filter((l) => l.length > 0);
    let failed = 0;
    for (const line of lines) {
      const [input, flag, output] = line.split("\t");
      if (!input || !output) throw new Error(`bad jobs line: ${JSON.stringify(line)}`);
      try {
        const ids = encodeIds(tokenizer, readUtf8Strict(input), parseFlag(flag));
        fs.writeFileSync(output, ids.join(" ") + "\n");
      } catch (e) {
        process.stderr.write(`encode_with_hf: ${e.message}\n`);
        try {
          fs.rmSync(output, { force: true });
        } catch {}
        ++failed;
      }
    }
    return failed === 0 ? 0 : 2;
  }

  if (args.length < 2 || args.length > 3) usage("want TOKENIZER_JSON INPUT [ADD_SPECIAL]");
  let text;
  try {
    text = readUtf8Strict(args[1]);
  } catch (e) {
    process.stderr.write(`encode_with_hf: ${e.message}\n`);
    return 2;
  }
  const ids = encodeIds(tokenizer, text, parseFlag(args[2]));
  process.stdout.write(ids.join(" ") + "\n");
  return 0;
}

// Run as a script (not when imported by peer_tools.mjs).
if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`encode_with_hf: ${e.stack ?? e}\n`);
    process.exitCode = 2;
  }
}
