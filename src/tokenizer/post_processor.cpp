#include "tokenizer/post_processor.h"

#include <utility>

namespace m3 {
namespace {

class TemplatePostProcessor final : public PostProcessor {
 public:
  explicit TemplatePostProcessor(std::vector<TemplateItem> single) : single_(std::move(single)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    // Without special tokens HF keeps only the sequence pieces.
    std::vector<int32_t> out;
    out.reserve(ids.size() + 4);
    for (const TemplateItem& item : single_) {
      if (item.is_sequence) {
        out.insert(out.end(), ids.begin(), ids.end());
      } else if (add_special_tokens) {
        out.insert(out.end(), item.ids.begin(), item.ids.end());
      }
    }
    ids = std::move(out);
  }

 private:
  std::vector<TemplateItem> single_;
};

class NoopPostProcessor final : public PostProcessor {
 public:
  void process(std::vector<int32_t>&, bool) const override {}
};

class SequencePostProcessor final : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  void process(std::vector<int32_t>& ids, bool add_special_tokens) const override {
    for (const auto& s : steps_) s->process(ids, add_special_tokens);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

}  // namespace

std::unique_ptr<PostProcessor> make_template_post_processor(std::vector<TemplateItem> single) {
  return std::make_unique<TemplatePostProcessor>(std::move(single));
}
std::unique_ptr<PostProcessor> make_noop_post_processor() { return std::make_unique<NoopPostProcessor>(); }
std::unique_ptr<PostProcessor> make_sequence_post_processor(std::vector<std::unique_ptr<PostProcessor>> steps) {
  return std::make_unique<SequencePostProcessor>(std::move(steps));
}

}  // namespace m3
