// config.json parsing and the derived sizes of spec §1.3.
#include <gtest/gtest.h>

#include "common/error.h"
#include "model/model_config.h"

namespace {

std::string config(const std::string& ssm_extra, const std::string& top_extra = "") {
  return R"({"d_model": 2048, "n_layer": 24, "vocab_size": 128256, "d_intermediate": 3824,
             "ssm_cfg": {"layer": "Mamba3", "d_state": 128, "expand": 2.0, "headdim": 64)" +
         ssm_extra + "}" + top_extra + "}";
}

TEST(ModelConfig, SpecExampleSiso) {
  const auto c = m3::parse_model_config(config(""), "test");
  EXPECT_EQ(c.d_inner, 4096);
  EXPECT_EQ(c.nheads, 64);
  EXPECT_EQ(c.n_angles, 32);
  EXPECT_EQ(c.mimo_rank, 1);
  EXPECT_EQ(c.d_in_proj, 8672);
  EXPECT_EQ(c.vocab_padded, 128256);
  EXPECT_EQ(c.a_activation, m3::AActivation::HeavyTail);
}

TEST(ModelConfig, SpecExampleMimoRank4) {
  const auto c = m3::parse_model_config(config(R"(, "is_mimo": true, "mimo_rank": 4)"), "test");
  EXPECT_EQ(c.mimo_rank, 4);
  EXPECT_EQ(c.d_in_proj, 9440);
}

TEST(ModelConfig, MimoRankIgnoredForSiso) {
  const auto c = m3::parse_model_config(config(R"(, "mimo_rank": 4)"), "test");
  EXPECT_EQ(c.mimo_rank, 1);
}

TEST(ModelConfig, RopeFractionOneRotatesAllPairs) {
  const auto c = m3::parse_model_config(config(R"(, "rope_fraction": 1.0)"), "test");
  EXPECT_EQ(c.n_angles, 64);
}

TEST(ModelConfig, VocabIsPadded) {
  const auto c = m3::parse_model_config(R"({"d_model": 64, "n_layer": 1, "vocab_size": 301,
      "ssm_cfg": {"layer": "Mamba3", "d_state": 32, "headdim": 32}})", "test");
  EXPECT_EQ(c.vocab_padded, 304);
}

TEST(ModelConfig, UnknownSsmKeysAreIgnoredLikeTheOfficialConstructor) {
  EXPECT_NO_THROW(m3::parse_model_config(config(R"(, "chunk_size": 16, "dt_min": 0.01, "whatever": [1])"), "t"));
}

TEST(ModelConfig, ExpandMayBeAFloat) {
  const auto c = m3::parse_model_config(config(R"(, "expand": 1.5)"), "t");
  EXPECT_EQ(c.d_inner, 3072);
}

TEST(ModelConfig, HeaddimMustDivideInnerWidth) {
  try {
    m3::parse_model_config(config(R"(, "headdim": 48)"), "cfg.json");
    FAIL() << "no error";
  } catch (const m3::Error& e) {
    EXPECT_EQ(e.status(), M3_ERR_FORMAT);
    EXPECT_NE(std::string(e.what()).find("headdim"), std::string::npos);
  }
}

TEST(ModelConfig, NgroupsMustDivideHeads) {
  EXPECT_THROW(m3::parse_model_config(config(R"(, "ngroups": 3)"), "t"), m3::Error);
}

TEST(ModelConfig, NegativeSizesAreRejected) {
  EXPECT_THROW(m3::parse_model_config(R"({"d_model": -5, "ssm_cfg": {"layer": "Mamba3"}})", "t"), m3::Error);
}

TEST(ModelConfig, ActivationKey) {
  const auto c = m3::parse_model_config(config(R"(, "A_activation": "softplus")"), "t");
  EXPECT_EQ(c.a_activation, m3::AActivation::Softplus);
}

TEST(ModelConfig, NotAnObject) {
  EXPECT_THROW(m3::parse_model_config("[1, 2]", "t"), m3::Error);
  EXPECT_THROW(m3::parse_model_config("", "t"), m3::Error);
}

// A value nested 300000 deep once overflowed the stack while its error message was printed.
TEST(ModelConfig, DeepNestingIsRefusedNotRecursedInto) {
  const std::size_t depth = 300000;
  const std::string text =
      R"({"attn_layer_idx": )" + std::string(depth, '[') + "1" + std::string(depth, ']') + "}";
  try {
    m3::parse_model_config(text, "deep.json");
    FAIL() << "no error";
  } catch (const m3::Error& e) {
    EXPECT_EQ(e.status(), M3_ERR_FORMAT);
    EXPECT_NE(std::string(e.what()).find("nested deeper than 64 levels"), std::string::npos) << e.what();
  }
}

TEST(ModelConfig, DerivedSizesThatWouldOverflowAreRefused) {
  EXPECT_THROW(m3::parse_model_config(config(R"(, "expand": 1e300)"), "t"), m3::Error);
  EXPECT_THROW(m3::parse_model_config(config(R"(, "is_mimo": true, "mimo_rank": 1000000000000,)"
                                             R"( "d_state": 1000000000000)"),
                                      "t"),
               m3::Error);
}

}  // namespace
