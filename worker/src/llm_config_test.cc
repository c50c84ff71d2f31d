#include "braid/worker/llm_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace braid::worker {
namespace {

using testing::HasSubstr;

constexpr char kLlama[] = R"({"model_type": "llama", "vocab_size": 32, "hidden_size": 16,
  "intermediate_size": 24, "num_hidden_layers": 1, "num_attention_heads": 4,
  "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "hidden_act": "silu" %s})";

std::string Llama(const std::string& extra) {
  char buf[1024];
  std::snprintf(buf, sizeof buf, kLlama, extra.c_str());
  return buf;
}

TEST(LlmConfigTest, ReadsLlamaWithDefaults) {
  auto c = ParseDecoderConfig(Llama(""));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->family, DecoderFamily::kLlama);
  EXPECT_EQ(c->head_dim, 4);
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_EQ(c->rope_theta, 10000.0);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_FALSE(c->qkv_bias);
}

TEST(LlmConfigTest, Qwen2HasQkvBiasesButNoOutputBias) {
  auto c = ParseDecoderConfig(R"({"model_type": "qwen2", "vocab_size": 32, "hidden_size": 16,
    "intermediate_size": 24, "num_hidden_layers": 1, "num_attention_heads": 4, "rope_theta": 1000000.0,
    "use_sliding_window": false, "sliding_window": 4096})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_FALSE(c->o_bias);
  EXPECT_FALSE(c->sliding_window.has_value());
  EXPECT_EQ(c->rope_theta, 1e6);
}

TEST(LlmConfigTest, Gpt2InnerDefaultsToFourTimesWidthAndTiesEmbeddings) {
  auto c = ParseDecoderConfig(R"({"model_type": "gpt2", "vocab_size": 50, "n_embd": 8, "n_layer": 2,
    "n_head": 2, "n_positions": 16, "n_inner": null, "activation_function": "gelu_new"})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->intermediate_size, 32);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_EQ(c->activation, Activation::kGeluTanh);
}

TEST(LlmConfigTest, RefusalsNameTheField) {
  struct Case {
    std::string json, message;
  } cases[] = {
      {Llama(R"(, "rope_scaling": {"rope_type": "yarn", "factor": 4.0})"),
       R"(config.json: rope_scaling: type "yarn" is not supported)"},
      {Llama(R"(, "hidden_act": "tanh")"), R"(config.json: hidden_act: activation "tanh" is not supported)"},
      {Llama(R"(, "num_key_value_heads": 3)"), "config.json: num_key_value_heads: 3 does not divide"},
      {Llama(R"(, "vocab_size": "32")"), "config.json: vocab_size: must be an integer"},
      {R"({"model_type": "bert"})", R"(config.json: model_type: "bert" is not supported)"},
      {R"({"model_type": "qwen2", "vocab_size": 32, "hidden_size": 16, "intermediate_size": 24,
          "num_hidden_layers": 1, "num_attention_heads": 4, "use_sliding_window": true})",
       "config.json: use_sliding_window: true is not supported"},
      {R"({"model_type": "gpt2", "vocab_size": 50, "n_embd": 8, "n_layer": 2, "n_head": 2, "n_positions": 16,
          "scale_attn_by_inverse_layer_idx": true})",
       "config.json: scale_attn_by_inverse_layer_idx: true is not supported"},
      {R"({"model_type": "llama", "vocab_size": 32})", "config.json: hidden_size: is required"},
      {"{not json", "config.json: not valid JSON"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseDecoderConfig(c.json);
    ASSERT_FALSE(parsed.ok()) << c.json;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(c.message));
  }
}

}  // namespace
}  // namespace braid::worker
