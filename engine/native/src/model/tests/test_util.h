// Minimal test helpers for the native model tests (registered with CTest by model/sources.cmake):
// a CHECK macro that records failures with file/line, a runner, and tiny Strata documents built
// from block JSON. This is not a test framework (no fixtures, no filtering).
#pragma once

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace strata::test {

inline int& failures() {
  static int count = 0;
  return count;
}

#define CHECK(cond, ...)                                                              \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s ", __FILE__, __LINE__, #cond);    \
      std::fprintf(stderr, __VA_ARGS__);                                              \
      std::fprintf(stderr, "\n");                                                     \
      ::strata::test::failures()++;                                                   \
    }                                                                                 \
  } while (0)

struct TestCase {
  const char* name;
  std::function<void()> body;
};

inline int run_tests(const std::vector<TestCase>& tests) {
  for (const auto& t : tests) {
    int before = failures();
    try {
      t.body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: unexpected exception: %s\n", t.name, e.what());
      failures()++;
    }
    std::printf("%s %s\n", failures() == before ? "PASS" : "FAIL", t.name);
  }
  std::printf("%d failure(s)\n", failures());
  return failures() == 0 ? 0 : 1;
}

/** A version-2 document with the given stack (JSON array text) and optional extra model fields. */
inline std::string tiny_document(const std::string& stack_json, int vocab = 48, int d_model = 16,
                                 const std::string& extra_model_fields = "", const std::string& training = "{}") {
  return std::string(R"({"format":"strata","version":2,"model":{"name":"tiny","vocab_size":)") +
         std::to_string(vocab) + R"(,"d_model":)" + std::to_string(d_model) + R"(,"stack":)" + stack_json +
         extra_model_fields + R"(},"pipeline":{"training":)" + training + "}}";
}

inline const char* kMambaBlock =
    R"({"kind":"mamba2","heads":4,"head_dim":4,"d_state":8,"groups":2,"conv_kernel":4,"chunk":4})";
inline const char* kAttentionBlock = R"({"kind":"attention","heads":4,"kv_heads":2,"head_dim":4})";
inline const char* kRopeAttentionBlock =
    R"({"kind":"attention","heads":2,"kv_heads":1,"head_dim":8,"rope":{"theta":10000},"qk_norm":true})";
inline const char* kMoeBlock =
    R"({"kind":"moe","experts":4,"top_k":2,"expert_ffn":12,"shared_experts":1,"shared_ffn":16,)"
    R"("router":{"type":"sigmoid","expert_bias":true,"routed_scaling":2.5}})";
inline const char* kLatentMoeBlock =
    R"({"kind":"moe","experts":4,"top_k":2,"expert_ffn":8,"latent":8,"router":{"type":"softmax","aux_loss_coeff":0.01}})";
inline const char* kMlpBlock = R"({"kind":"mlp","ffn":24})";

}  // namespace strata::test
