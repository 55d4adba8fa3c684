// Fuzzes config.json parsing (src/model/model_config): any text either becomes a config whose
// derived sizes are consistent (spec §1.3) or is rejected with an m3::Error naming the file.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "model/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const std::string kSource = "config.json";
  m3::ModelConfig c;
  try {
    c = m3::parse_model_config(std::string(reinterpret_cast<const char*>(data), size), kSource);
  } catch (const m3::Error& e) {
    fuzz::check_rejection(e, kSource + ": ");
    return 0;
  }
  FUZZ_CHECK(c.d_model >= 1 && c.n_layer >= 1 && c.vocab_size >= 1 && c.headdim >= 1 && c.ngroups >= 1);
  FUZZ_CHECK(c.d_inner > 0 && c.nheads > 0 && c.d_inner / c.headdim == c.nheads && c.d_inner % c.headdim == 0);
  FUZZ_CHECK(c.nheads % c.ngroups == 0);
  FUZZ_CHECK(c.n_angles > 0 && 2 * c.n_angles <= c.d_state);
  FUZZ_CHECK(c.mimo_rank >= 1 && (c.is_mimo || c.mimo_rank == 1));
  FUZZ_CHECK(c.vocab_padded >= c.vocab_size && c.vocab_padded % c.pad_vocab_size_multiple == 0);
  // Checked arithmetic: an overflow in the parser must show here even without UBSan.
  int64_t bc = 0, d_in_proj = 0;
  FUZZ_CHECK(!__builtin_mul_overflow(c.d_state, c.ngroups, &bc) && !__builtin_mul_overflow(bc, c.mimo_rank, &bc));
  FUZZ_CHECK(!__builtin_add_overflow(2 * c.d_inner, 2 * bc, &d_in_proj) &&
             !__builtin_add_overflow(d_in_proj, 3 * c.nheads + c.n_angles, &d_in_proj));
  FUZZ_CHECK(c.d_in_proj == d_in_proj);
  FUZZ_CHECK(!c.canonical().empty());
  return 0;
}
