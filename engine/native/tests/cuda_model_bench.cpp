// strata_cuda_model_bench: whole-model timing of the CUDA backend for scripts/gpu/visit.sh (a GPU
// tool, not a CTest test: CI has no GPU). It runs the engine's own Model and AdamW (the classes the
// trainer uses) on the process-wide CUDA backend and prints one JSON object per measurement:
//   train DOC.json B T STEPS [MODES [MICROBATCHES]]
//                                optimizer steps on random tokens (warm-up steps excluded): median
//                                step time, tokens/s, first/last loss, GPU memory peak; once per
//                                GEMM mode in MODES (comma-separated fp32|bf16|fp8, default bf16) on
//                                the same model, so one initialization serves every mode. With
//                                MICROBATCHES > 1 each optimizer step accumulates the gradients of
//                                that many B x T microbatches, as the trainer's grad_accum does
//                                (tokens/s counts every microbatch's tokens). STRATA_HEAD_CHUNK_ROWS=N
//                                runs the training head in N-row chunks (Model::set_head_chunk_rows;
//                                by default only logits above 4 GiB are chunked); "head_chunk_rows"
//                                says which ran (0: the whole head). STRATA_BENCH_POLICY=1 applies
//                                the document's precision policy as the trainer does (model::
//                                PrecisionHook: per-GEMM arithmetic, nvfp4 / mxfp8 / fp8_e5m2
//                                quantized on the GPU); "policy" says its default format and rule
//                                count ("" when off)
//   decode DOC.json B STEPS CONTEXT[,CONTEXT...]
//                                greedy decode steps at each context length: the KV caches (and
//                                Mamba states) are sized for the context and the position is set to
//                                it, so each step attends over CONTEXT cached positions; the cache
//                                holds zeros instead of a prefill (decode cost does not depend on
//                                values, and a 64k prefill would take most of the visit). Three
//                                paths per context (logits download + host argmax, device argmax op
//                                by op, device argmax replaying a CUDA graph), each line saying
//                                whether its chosen ids equal the first path's, and "env": the
//                                decode kernel switches set (STRATA_CUDA_DECODE_ATTN,
//                                STRATA_CUDA_MOE_GEMV; empty for the defaults). Under
//                                STRATA_CUDA_OP_TIMES=1 only the op-by-op greedy path runs and the
//                                op table (stderr, at exit) covers its timed steps of the last context
// Decode runs in BF16 GEMM mode unless STRATA_CUDA_GEMM says otherwise. Nothing here asserts on
// time. This is not the op harness or the CPU-vs-CUDA comparison (cuda_compare.cpp).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cuda/cuda_backend.h"
#include "io/files.h"
#include "io/json.h"
#include "model/config.h"
#include "model/model.h"
#include "model/precision_hook.h"
#include "train/optimizer.h"

using namespace strata;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

std::vector<int32_t> random_tokens(int64_t count, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(count));
  for (int32_t& id : ids) id = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  return ids;
}

model::DocumentConfig load(const std::string& path) {
  return model::read_document(json::parse(io::read_file(path), path), path);
}

long long parse_int(const char* text, const char* what) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (!end || *end != '\0' || v <= 0) throw Error(std::string("cuda_model_bench: ") + what + " must be a positive integer");
  return v;
}

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> items;
  for (size_t pos = 0; pos <= list.size();) {
    const size_t comma = std::min(list.find(',', pos), list.size());
    items.push_back(list.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return items;
}

void run_train(CudaBackend& gpu, const std::string& path, int64_t B, int64_t T, int steps,
               const std::vector<std::string>& modes, int microbatches) {
  const model::DocumentConfig doc = load(path);
  const auto t_init = Clock::now();
  model::Model m(doc.model, gpu, doc.pipeline.training.seed);
  train::AdamW optimizer(m.params(), gpu);
  gpu.synchronize();
  const double init_s = seconds_since(t_init);
  if (const char* rows = std::getenv("STRATA_HEAD_CHUNK_ROWS")) m.set_head_chunk_rows(parse_int(rows, "STRATA_HEAD_CHUNK_ROWS"));
  const char* policy_env = std::getenv("STRATA_BENCH_POLICY");
  std::optional<model::PrecisionHook> policy;
  if (policy_env && std::string(policy_env) == "1") policy.emplace(doc.model, doc.pipeline.training.seed, false);
  const std::string policy_name =
      policy ? doc.model.precision.default_format + " default, " + std::to_string(doc.model.precision.rules.size()) + " rules"
             : "";
  const int warmup = std::min(2, steps - 1);
  int64_t batch_seed = 1000;
  for (const std::string& mode : modes) {
    gpu.set_gemm_mode(parse_cuda_gemm_mode(mode));
    std::vector<double> step_s;
    double first_loss = 0, last_loss = 0;
    for (int s = 0; s < steps; ++s) {
      std::vector<model::Batch> batches(static_cast<size_t>(microbatches));
      for (model::Batch& batch : batches) {
        batch.batch = B;
        batch.time = T;
        batch.tokens = random_tokens(B * (T + 1), doc.model.vocab_size, static_cast<uint64_t>(batch_seed++));
      }
      const auto t0 = Clock::now();
      if (policy) policy->begin_step(s, false);
      m.params().zero_grads();
      double loss = 0;
      for (const model::Batch& batch : batches) {
        Arena acts(gpu);
        loss += m.forward(acts, batch, true, true).main_loss / microbatches;
        m.backward(acts, 1.0f / static_cast<float>(microbatches));
      }
      const double norm = train::global_grad_norm(gpu, m.params());
      optimizer.step(doc.pipeline.training, 1e-4, norm > 1.0 ? 1.0 / norm : 1.0);
      m.update_expert_biases();
      gpu.synchronize();
      if (s >= warmup) step_s.push_back(seconds_since(t0));
      if (s == 0) first_loss = loss;
      last_loss = loss;
    }
    const double step = median(step_s);
    const CudaAllocatorStats stats = gpu.allocator_stats();
    std::printf(
        "{\"mode\":\"train\",\"doc\":\"%s\",\"gemm\":\"%s\",\"params\":%lld,\"batch\":%lld,\"seq_len\":%lld,"
        "\"microbatches\":%d,\"steps_timed\":%zu,\"init_s\":%.3f,\"step_s\":%.6f,\"tokens_per_s\":%.1f,\"first_loss\":%.5f,"
        "\"last_loss\":%.5f,\"peak_bytes\":%zu,\"head_chunk_rows\":%lld,\"policy\":\"%s\"}\n",
        path.c_str(), cuda_gemm_mode_name(gpu.effective_gemm_mode()), static_cast<long long>(m.params().count()),
        static_cast<long long>(B), static_cast<long long>(T), microbatches, step_s.size(), init_s, step,
        step > 0 ? static_cast<double>(B * T * microbatches) / step : 0.0, first_loss, last_loss, stats.peak_bytes,
        static_cast<long long>(m.head_chunk_rows(B * T)), policy_name.c_str());
    std::fflush(stdout);
  }
}

// One decode path from a fresh state at `context`: 2 warm-up steps, then `steps` timed greedy steps,
// each step's input the previous step's choice. Returns the step time and the chosen ids.
//   logits: decode_step() downloads the logits, the host picks (the path before device greedy)
//   greedy: decode_greedy() op by op (argmax on the device, only ids come back)
//   graph : decode_greedy() replaying the recorded step (CUDA graph)
struct DecodeRun {
  double step_s = 0;
  std::size_t state_bytes = 0;
  std::vector<int32_t> ids;
};
DecodeRun run_decode_path(CudaBackend& gpu, model::Model& m, const std::string& path, int64_t B, int steps,
                          int64_t context, int64_t vocab) {
  auto state = m.start_decode(B, context + steps + 2);
  state->position = context;
  m.set_decode_graphs(path == "graph");
  std::vector<int32_t> tokens = random_tokens(B, vocab, 7);
  std::vector<float> logits;
  DecodeRun run;
  auto step = [&]() {
    if (path == "logits") {
      Arena scratch(gpu);
      m.decode_step(*state, scratch, tokens, logits, nullptr);
      for (int64_t b = 0; b < B; ++b) {
        const float* row = logits.data() + b * vocab;
        tokens[static_cast<size_t>(b)] = static_cast<int32_t>(std::max_element(row, row + vocab) - row);
      }
    } else {
      tokens = m.decode_greedy(*state, tokens);
    }
    run.ids.insert(run.ids.end(), tokens.begin(), tokens.end());
  };
  for (int s = 0; s < 2; ++s) step();  // warm-up: GEMM plans, allocator cache, the graph recording
  gpu.synchronize();
  gpu.restart_counters();  // the op times (STRATA_CUDA_OP_TIMES=1) cover the timed steps only
  const auto t0 = Clock::now();
  for (int s = 0; s < steps; ++s) step();
  gpu.synchronize();
  run.step_s = seconds_since(t0) / steps;
  run.state_bytes = state->arena.bytes();
  return run;
}

// The decode kernel switches set in the environment (for A/B runs), e.g. "STRATA_CUDA_DECODE_ATTN=group";
// empty when the defaults run.
std::string decode_kernel_env() {
  std::string text;
  for (const char* name : {"STRATA_CUDA_DECODE_ATTN", "STRATA_CUDA_MOE_GEMV"}) {
    const char* value = std::getenv(name);
    if (!value) continue;
    if (!text.empty()) text += ' ';
    text.append(name).append("=").append(value);
  }
  return text;
}

void run_decode(CudaBackend& gpu, const std::string& path, int64_t B, int steps, const std::vector<int64_t>& contexts) {
  const model::DocumentConfig doc = load(path);
  const std::string env = decode_kernel_env();
  model::Model m(doc.model, gpu, doc.pipeline.training.seed);
  gpu.synchronize();
  for (int64_t context : contexts) {
    std::vector<int32_t> reference_ids;
    const char* op_times_env = std::getenv("STRATA_CUDA_OP_TIMES");
    const bool op_times = op_times_env && std::string(op_times_env) == "1";
    for (const char* decode_path : {"logits", "greedy", "graph"}) {
      if (op_times && std::string(decode_path) != "greedy") continue;
      const DecodeRun run = run_decode_path(gpu, m, decode_path, B, steps, context, doc.model.vocab_size);
      if (reference_ids.empty()) reference_ids = run.ids;
      std::printf(
          "{\"mode\":\"decode\",\"path\":\"%s\",\"doc\":\"%s\",\"gemm\":\"%s\",\"batch\":%lld,"
          "\"context\":%lld,\"steps\":%d,\"step_s\":%.6f,\"tokens_per_s\":%.1f,\"state_bytes\":%zu,"
          "\"ids_match_logits_path\":%s,\"env\":\"%s\"}\n",
          decode_path, path.c_str(), cuda_gemm_mode_name(gpu.effective_gemm_mode()), static_cast<long long>(B),
          static_cast<long long>(context), steps, run.step_s, static_cast<double>(B) / run.step_s, run.state_bytes,
          run.ids == reference_ids ? "true" : "false", env.c_str());
      std::fflush(stdout);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    CudaBackend* gpu = cuda_backend_if_present();
    if (!gpu) {
      std::fprintf(stderr, "cuda_model_bench: no GPU\n");
      return 1;
    }
    if (!std::getenv("STRATA_CUDA_GEMM")) gpu->set_gemm_mode(CudaGemmMode::Bf16);
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "train" && argc >= 6 && argc <= 8) {
      run_train(*gpu, argv[2], parse_int(argv[3], "B"), parse_int(argv[4], "T"),
                static_cast<int>(parse_int(argv[5], "STEPS")), split_list(argc >= 7 ? argv[6] : "bf16"),
                argc == 8 ? static_cast<int>(parse_int(argv[7], "MICROBATCHES")) : 1);
    } else if (mode == "decode" && argc == 6) {
      std::vector<int64_t> contexts;
      for (const std::string& item : split_list(argv[5])) contexts.push_back(parse_int(item.c_str(), "CONTEXT"));
      run_decode(*gpu, argv[2], parse_int(argv[3], "B"), static_cast<int>(parse_int(argv[4], "STEPS")), contexts);
    } else {
      std::fprintf(stderr,
                   "usage: strata_cuda_model_bench train DOC.json B T STEPS [fp32|bf16|fp8[,...] [MICROBATCHES]]\n"
                   "       strata_cuda_model_bench decode DOC.json B STEPS CONTEXT[,CONTEXT...]\n");
      return 2;
    }
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "cuda_model_bench: %s\n", error.what());
    return 1;
  }
}
