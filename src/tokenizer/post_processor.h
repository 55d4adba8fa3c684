// Post-processors: what encode(add_special_tokens=true) adds around the ids of one sequence.
// Supported: TemplateProcessing (single template), BertProcessing, RobertaProcessing, ByteLevel
// (offsets only, so nothing here), Sequence.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace m3 {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void process(std::vector<int32_t>& ids, bool add_special_tokens) const = 0;
};

// The single-sequence template as a list of items: an id list to insert, or the sequence.
struct TemplateItem {
  bool is_sequence = false;
  std::vector<int32_t> ids;  // for special-token items
};

std::unique_ptr<PostProcessor> make_template_post_processor(std::vector<TemplateItem> single);
std::unique_ptr<PostProcessor> make_noop_post_processor();
std::unique_ptr<PostProcessor> make_sequence_post_processor(std::vector<std::unique_ptr<PostProcessor>> steps);

}  // namespace m3
