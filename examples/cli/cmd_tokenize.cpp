// mamba3rt tokenize: print the token ids of a text, space-separated on one line.
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>

#include "cli_args.h"
#include "commands.h"

namespace cli {

int run_tokenize(const std::vector<std::string>& argv) {
  Args args(argv, {"model", "tokenizer", "text", "file"}, {"special"});
  if (args.get("model").has_value() == args.get("tokenizer").has_value())
    throw UsageError("give exactly one of --model DIR or --tokenizer FILE.json");
  if (args.get("text").has_value() == args.get("file").has_value())
    throw UsageError("give exactly one of --text T or --file F");

  std::string text;
  if (auto t = args.get("text")) {
    text = *t;
  } else {
    std::ifstream in(*args.get("file"), std::ios::binary);
    if (!in) throw std::runtime_error(*args.get("file") + ": cannot open");
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  std::unique_ptr<m3_model, void (*)(m3_model*)> model(nullptr, m3_model_free);
  std::unique_ptr<m3_tokenizer, void (*)(m3_tokenizer*)> owned(nullptr, m3_tokenizer_free);
  const m3_tokenizer* tok = nullptr;
  if (auto dir = args.get("model")) {
    model.reset(load_model(*dir, args));
    check(m3_model_tokenizer(model.get(), &tok), *dir);
  } else {
    m3_tokenizer* t = nullptr;
    check(m3_tokenizer_load(args.get("tokenizer")->c_str(), &t), *args.get("tokenizer"));
    owned.reset(t);
    tok = t;
  }

  const int special = args.flag("special") ? 1 : 0;
  size_t n = 0;
  m3_status s = m3_tokenize(tok, text.data(), text.size(), special, nullptr, 0, &n);
  if (s != M3_OK && s != M3_ERR_BUFFER_TOO_SMALL) check(s, "tokenizing");
  std::vector<int32_t> ids(n);
  check(m3_tokenize(tok, text.data(), text.size(), special, ids.data(), ids.size(), &n), "tokenizing");
  std::string line;
  for (size_t i = 0; i < n; ++i) {
    if (i) line += ' ';
    line += std::to_string(ids[i]);
  }
  std::printf("%s\n", line.c_str());
  return 0;
}

}  // namespace cli
