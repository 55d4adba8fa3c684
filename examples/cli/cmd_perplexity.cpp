// mamba3rt perplexity: mean negative log-likelihood of a text under a model.
// Protocol (tools/train/eval_perplexity.py computes the same): the text is encoded without
// special tokens and preceded by the end-of-text token when the tokenizer has one; every
// token after the first is predicted from all tokens before it in one continuous pass.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>

#include "cli_args.h"
#include "commands.h"

namespace cli {

int run_perplexity(const std::vector<std::string>& argv) {
  Args args(argv, {"model", "file", "backend", "device", "threads"}, {"json"});
  const std::string path = args.require("file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  std::unique_ptr<m3_model, void (*)(m3_model*)> model(
      load_model(model_dir_arg(args), args),
      m3_model_free);
  const m3_tokenizer* tok = nullptr;
  check(m3_model_tokenizer(model.get(), &tok), "tokenizer");
  size_t n = 0;
  m3_status s = m3_tokenize(tok, text.data(), text.size(), 0, nullptr, 0, &n);
  if (s != M3_OK && s != M3_ERR_BUFFER_TOO_SMALL) check(s, "tokenizing " + path);
  std::vector<int32_t> ids(n + 1);
  check(m3_tokenize(tok, text.data(), text.size(), 0, ids.data() + 1, n, &n), "tokenizing " + path);
  static const char kEot[] = "<|endoftext|>";
  size_t eot_n = 0;
  int32_t eot = -1;
  if (m3_tokenize(tok, kEot, sizeof kEot - 1, 0, &eot, 1, &eot_n) == M3_OK && eot_n == 1) {
    ids[0] = eot;
  } else {
    ids.erase(ids.begin());
  }
  if (ids.size() < 2) throw std::runtime_error(path + ": too short to measure (fewer than 2 tokens)");

  int64_t V = 0, vocab = 0;
  m3_model_info(model.get(), M3_INFO_VOCAB_PADDED, &V);
  m3_model_info(model.get(), M3_INFO_VOCAB_SIZE, &vocab);
  m3_session* raw = nullptr;
  check(m3_session_create(model.get(), &raw), "session");
  std::unique_ptr<m3_session, void (*)(m3_session*)> session(raw, m3_session_free);

  // Feed in chunks; row t of a chunk's logits predicts the token after it.
  constexpr size_t kChunk = 256;
  std::vector<float> logits(kChunk * static_cast<size_t>(V));
  double nll = 0;
  const size_t predicted = ids.size() - 1;
  for (size_t begin = 0; begin < predicted; begin += kChunk) {
    const size_t len = std::min(kChunk, predicted - begin);
    check(m3_session_feed(session.get(), &ids[begin], len, M3_LOGITS_ALL, logits.data(), logits.size()), "feeding");
    for (size_t t = 0; t < len; ++t) {
      const float* row = &logits[t * V];
      double max = row[0];
      for (int64_t i = 1; i < vocab; ++i) max = std::max(max, static_cast<double>(row[i]));
      double sum = 0;
      for (int64_t i = 0; i < vocab; ++i) sum += std::exp(row[i] - max);
      nll += max + std::log(sum) - row[ids[begin + t + 1]];
    }
  }
  const double mean = nll / static_cast<double>(predicted);
  if (args.flag("json")) {
    std::printf("{\"tokens\": %zu, \"loss\": %.9f, \"perplexity\": %.9f}\n", predicted, mean, std::exp(mean));
  } else {
    std::printf("tokens %zu  loss %.6f  perplexity %.4f\n", predicted, mean, std::exp(mean));
  }
  return 0;
}

}  // namespace cli
