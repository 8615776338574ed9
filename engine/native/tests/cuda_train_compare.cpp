// Trains the same tiny hybrid model (Mamba-2, GQA attention with RoPE, MoE with a sigmoid router
// and expert bias, MLP) from the same initial weights on the same batches four times: on the CPU
// backend, and on the CUDA backend with fp32, bf16 and fp8 e4m3 GEMMs, and checks that the loss
// curves track each other:
//   every step |loss_cuda - loss_cpu| <= tol * (loss_cpu + 1), tol = 0.02 for fp32 GEMMs, 0.05 for bf16
//   and 0.15 for fp8 (relative, with an absolute floor once the loss gets small),
//   and every run learns (mean loss of the last 5 steps < 75% of the first step's loss).
// Then the same model under a per-layer precision policy (nvfp4 on the first Mamba-2 layer and the
// MLP, with the wgrad Hadamard transform and stochastic rounding; mxfp8 experts, one gemm() per
// expert; fp8_e4m3 attention on fp8 tensor cores; fp8_e5m2 HYBRID on the second Mamba-2 layer; bf16
// elsewhere) on the CPU (quantize-dequantize around fp32 GEMMs) and on CUDA (ops/quant_gemm.h device
// path): the CUDA curve tracks the CPU one within 0.10, and differs from the plain cuda_bf16 curve by
// more than 0.002 somewhere (the policy is applied, not ignored).
// Also reports milliseconds per optimizer step (after two warm-up steps) of each run; nothing is
// asserted about time. The batches are a deterministic synthetic corpus (random concatenations of
// a fixed set of byte phrases), so there is something to learn within a few dozen steps.
// Writes the curves as CSV to the path given as the first argument (default: stdout only).
// Then the training head in row chunks on the GPU (Model::set_head_chunk_rows, what a run whose
// logits would pass 4 GiB takes): one step of the same model with an MTP head, whole head against
// 200-row chunks (the last one short) on cuda:0, in fp32 and bf16 GEMM modes: the objective and MTP
// loss within 1e-6 (fp32) / 1e-4 (bf16) relative, every gradient entry within 1e-4 / 1e-2 of the
// largest entry of its parameter (the head's weight gradient sums chunks in another order; bf16
// rounds each chunk's operands), NaN never passing.
// Run by scripts/gpu/visit.sh on the GPU machine; it is not a CTest test (CI has no GPU).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/arena.h"
#include "cpu/cpu_backend.h"
#include "cuda/cuda_backend.h"
#include "model/config.h"
#include "model/model.h"
#include "model/precision_hook.h"
#include "train/optimizer.h"

using namespace strata;

namespace {

constexpr int kSteps = 40;
constexpr int kBatch = 8;
constexpr int kTime = 128;
constexpr int kVocab = 256;

const char* kDocument = R"({"format":"strata","version":2,"model":{"name":"tiny-hybrid","vocab_size":256,"d_model":128,
 "stack":[
  {"kind":"mamba2","heads":4,"head_dim":32,"d_state":32,"groups":2,"conv_kernel":4,"chunk":32},
  {"kind":"moe","experts":8,"top_k":2,"expert_ffn":128,"shared_experts":1,"shared_ffn":128,
   "router":{"type":"sigmoid","expert_bias":true,"routed_scaling":1.0}},
  {"kind":"attention","heads":4,"kv_heads":2,"head_dim":32,"rope":{"theta":10000}},
  {"kind":"mamba2","heads":4,"head_dim":32,"d_state":32,"groups":2,"conv_kernel":4,"chunk":32},
  {"kind":"mlp","ffn":256}]},
 "pipeline":{"training":{"steps":40,"batch_size":8,"seq_len":128,"lr":0.003,"warmup_steps":5,"schedule":"constant",
  "weight_decay":0.01,"grad_clip":1.0,"seed":11}}})";

// kDocument with a replacement for the end of its stack ("...mlp...}]}"), e.g. an MTP head or a policy.
std::string document_with(const std::string& stack_end_replacement) {
  std::string document = kDocument;
  const std::string stack_end = "{\"kind\":\"mlp\",\"ffn\":256}]}";
  const size_t at = document.find(stack_end);
  STRATA_CHECK(at != std::string::npos, "cuda_train_compare: the document's stack end moved");
  return document.replace(at, stack_end.size(), stack_end_replacement);
}

const std::string kPolicyDocument = document_with(
    "{\"kind\":\"mlp\",\"ffn\":256}],\"precision\":{\"default\":\"bf16\",\"rules\":["
    "{\"select\":{\"layers\":{\"from\":0,\"to\":0}},\"format\":\"nvfp4\"},"
    "{\"select\":{\"roles\":[\"moe.expert_fc1\",\"moe.expert_fc2\"]},\"format\":\"mxfp8\"},"
    "{\"select\":{\"kinds\":[\"attention\"]},\"format\":\"fp8_e4m3\"},"
    "{\"select\":{\"layers\":{\"from\":3,\"to\":3}},\"format\":\"fp8_e5m2\"},"
    "{\"select\":{\"kinds\":[\"mlp\"]},\"format\":\"nvfp4\"}]}}");

model::Batch make_batch(int step) {
  std::mt19937 phrase_rng(99);  // the same phrase book for every batch
  std::vector<std::vector<int32_t>> phrases(24);
  for (auto& phrase : phrases) {
    phrase.resize(4 + phrase_rng() % 12);
    for (int32_t& token : phrase) token = static_cast<int32_t>(phrase_rng() % kVocab);
  }
  std::mt19937 rng(1000 + step);
  model::Batch batch;
  batch.batch = kBatch;
  batch.time = kTime;
  for (int b = 0; b < kBatch; ++b) {
    std::vector<int32_t> row;
    while (static_cast<int>(row.size()) < kTime + 1) {
      const auto& phrase = phrases[rng() % phrases.size()];
      row.insert(row.end(), phrase.begin(), phrase.end());
    }
    batch.tokens.insert(batch.tokens.end(), row.begin(), row.begin() + kTime + 1);
  }
  return batch;
}

struct Curve {
  std::string label;
  std::vector<double> loss;
  double ms_per_step = 0;
};

// One training step's losses and every parameter's gradient (downloaded), on `backend`.
struct StepGrads {
  model::ForwardResult losses;
  std::vector<std::vector<float>> grads;
};
StepGrads step_grads(Backend& backend, const std::string& document, int64_t head_chunk_rows) {
  const model::DocumentConfig doc = model::read_document_text(document, "cuda_train_compare (chunked head)");
  model::Model model(doc.model, backend, doc.pipeline.training.seed);
  model.set_head_chunk_rows(head_chunk_rows);
  model.params().zero_grads();
  StepGrads out;
  {
    Arena acts(backend);
    out.losses = model.forward(acts, make_batch(0), true, true);
    model.backward(acts, 1.0f);
    out.losses.logits = Tensor();
    out.losses.token_losses = Tensor();
  }
  for (model::Param* p : model.params().all()) {
    std::vector<float> host(static_cast<size_t>(p->numel()));
    backend.download(host.data(), p->grad.data, host.size() * sizeof(float));
    out.grads.push_back(std::move(host));
  }
  return out;
}

// Whole head against 200-row chunks on the GPU in the current GEMM mode; returns the failures.
int check_chunked_head(CudaBackend& gpu, const char* mode, double loss_tol, float grad_tol) {
  const std::string document = document_with(
      "{\"kind\":\"mlp\",\"ffn\":256}],\"mtp\":{\"kind\":\"mtp\",\"depth\":1,"
      "\"blocks\":[{\"kind\":\"mlp\",\"ffn\":256}]}}");
  const StepGrads whole = step_grads(gpu, document, 0), chunked = step_grads(gpu, document, 200);
  int failures = 0;
  auto close = [&](double a, double b) { return std::fabs(a - b) <= loss_tol * std::fabs(a); };
  double worst_loss = std::fabs(whole.losses.objective - chunked.losses.objective) / std::fabs(whole.losses.objective);
  if (!close(whole.losses.objective, chunked.losses.objective)) ++failures;
  if (whole.losses.mtp_losses.size() != 1 || chunked.losses.mtp_losses.size() != 1) {
    std::printf("FAIL chunked head %s: expected one MTP loss\n", mode);
    return failures + 1;
  }
  worst_loss = std::max(worst_loss, std::fabs(whole.losses.mtp_losses[0] - chunked.losses.mtp_losses[0]) /
                                        std::fabs(whole.losses.mtp_losses[0]));
  if (!close(whole.losses.mtp_losses[0], chunked.losses.mtp_losses[0])) ++failures;
  int bad = 0;
  float worst_grad = 0;
  for (size_t i = 0; i < whole.grads.size(); ++i) {
    float largest = 0;
    for (float g : whole.grads[i]) largest = std::max(largest, std::fabs(g));
    for (size_t j = 0; j < whole.grads[i].size(); ++j) {
      const float diff = std::fabs(whole.grads[i][j] - chunked.grads[i][j]);
      if (!(diff <= grad_tol * largest + 1e-9f)) ++bad;  // NaN never passes
      if (largest > 0) worst_grad = std::max(worst_grad, diff / largest);
    }
  }
  failures += bad > 0;
  std::printf("%-4s chunked head (200-row chunks vs whole, main + MTP) %s: objective %.6f vs %.6f, MTP %.6f vs %.6f, "
              "worst loss diff %.2e (limit %.0e), worst gradient diff / largest %.2e (limit %.0e), %d entries over\n",
              failures == 0 ? "ok" : "FAIL", mode, whole.losses.objective, chunked.losses.objective,
              whole.losses.mtp_losses[0], chunked.losses.mtp_losses[0], worst_loss, loss_tol, worst_grad, grad_tol, bad);
  return failures;
}

// Without a policy document the CUDA runs multiply in the backend's GEMM mode (set_gemm_mode) and the
// CPU in fp32: no precision hook (the documents' default policy would make every GEMM bf16).
Curve train_on(Backend& backend, const std::string& label, const std::string& document = kDocument) {
  const model::DocumentConfig doc = model::read_document_text(document, "cuda_train_compare");
  const model::TrainConfig& tc = doc.pipeline.training;
  std::optional<model::PrecisionHook> precision;
  if (document != kDocument) precision.emplace(doc.model, tc.seed, backend.host_accessible());
  model::Model model(doc.model, backend, tc.seed);
  train::AdamW optimizer(model.params(), backend);
  Curve curve{label, {}, 0};
  double timed = 0;
  for (int step = 0; step < kSteps; ++step) {
    const auto start = std::chrono::steady_clock::now();
    if (precision) precision->begin_step(step, false);
    model.params().zero_grads();
    model::Batch batch = make_batch(step);
    double loss = 0;
    {
      Arena acts(backend);
      model::ForwardResult r = model.forward(acts, batch, true, true);
      model.backward(acts, 1.0f);
      loss = r.main_loss;
    }
    const double norm = train::global_grad_norm(backend, model.params());
    const double clip = tc.grad_clip > 0 && norm > tc.grad_clip ? tc.grad_clip / norm : 1.0;
    optimizer.step(tc, train::learning_rate(tc, step, kSteps), clip);
    model.update_expert_biases();
    backend.synchronize();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (step >= 2) timed += ms;
    curve.loss.push_back(loss);
    STRATA_CHECK(std::isfinite(loss), label, ": loss is not finite at step ", step + 1);
  }
  curve.ms_per_step = timed / (kSteps - 2);
  return curve;
}

}  // namespace

int main(int argc, char** argv) {
  CudaBackend* cuda = cuda_backend_if_present();
  if (!cuda) {
    std::printf("FAIL no CUDA device: the training comparison needs a GPU\n");
    return 1;
  }
  std::printf("device %s; CPU GEMM kernel %s\n", cuda->device_description().c_str(), cpu_gemm_kernel_name());
  std::vector<Curve> curves;
  std::vector<double> limits;
  int failures = 0;
  const struct {
    const char* label;
    bool gpu;
    CudaGemmMode mode;
    double limit;
  } runs[] = {{"cpu", false, CudaGemmMode::Fp32, 0.0},
              {"cuda_fp32", true, CudaGemmMode::Fp32, 0.02},
              {"cuda_bf16", true, CudaGemmMode::Bf16, 0.05},
              {"cuda_fp8", true, CudaGemmMode::Fp8E4m3, 0.15}};
  for (const auto& run : runs) {
    try {
      cuda->set_gemm_mode(run.mode);
      curves.push_back(train_on(run.gpu ? static_cast<Backend&>(*cuda) : cpu_backend(), run.label));
      limits.push_back(run.limit);
    } catch (const std::exception& error) {
      std::printf("FAIL %s: exception: %s\n", run.label, error.what());
      ++failures;
      if (!run.gpu) return 1;  // no reference curve
    }
  }
  cuda->set_gemm_mode(CudaGemmMode::Fp32);
  std::string csv = "step";
  for (const Curve& c : curves) csv += "," + c.label;
  csv += "\n";
  for (int s = 0; s < kSteps; ++s) {
    csv += std::to_string(s + 1);
    for (const Curve& c : curves) csv += "," + std::to_string(c.loss[s]);
    csv += "\n";
  }
  std::fputs(csv.c_str(), stdout);
  if (argc > 1) {
    const std::string tmp = std::string(argv[1]) + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fputs(csv.c_str(), f);
      std::fclose(f);
      std::rename(tmp.c_str(), argv[1]);
    }
  }
  const Curve& ref = curves[0];
  for (size_t i = 0; i < curves.size(); ++i) {
    const Curve& c = curves[i];
    double worst = 0;
    for (int s = 0; s < kSteps; ++s) worst = std::max(worst, std::fabs(c.loss[s] - ref.loss[s]) / (ref.loss[s] + 1.0));
    double tail = 0;
    for (int s = kSteps - 5; s < kSteps; ++s) tail += c.loss[s] / 5;
    const bool learns = tail < 0.75 * c.loss[0];
    const bool tracks = i == 0 || worst <= limits[i];
    if (!learns || !tracks) ++failures;
    std::printf("%-4s %-10s first %.4f last5 %.4f max diff vs cpu / (loss+1) %.4f (limit %.2f)  %.1f ms/step (B%d T%d)\n",
                learns && tracks ? "ok" : "FAIL", c.label.c_str(), c.loss[0], tail, worst, limits[i], c.ms_per_step,
                kBatch, kTime);
  }
  for (size_t i = 1; i < curves.size(); ++i) {
    std::printf("speedup %s vs cpu: %.1fx\n", curves[i].label.c_str(), ref.ms_per_step / curves[i].ms_per_step);
  }
  const struct {
    CudaGemmMode mode;
    double loss_tol;
    float grad_tol;
  } head_checks[] = {{CudaGemmMode::Fp32, 1e-6, 1e-4f}, {CudaGemmMode::Bf16, 1e-4, 1e-2f}};
  for (const auto& check : head_checks) {
    try {
      cuda->set_gemm_mode(check.mode);
      failures += check_chunked_head(*cuda, cuda_gemm_mode_name(check.mode), check.loss_tol, check.grad_tol);
    } catch (const std::exception& error) {
      std::printf("FAIL chunked head %s: exception: %s\n", cuda_gemm_mode_name(check.mode), error.what());
      ++failures;
    }
  }
  // The per-layer precision policy on the CPU and on CUDA (bf16 mode outside the policy's cells).
  try {
    cuda->set_gemm_mode(CudaGemmMode::Bf16);
    const Curve cpu_policy = train_on(cpu_backend(), "cpu_policy", kPolicyDocument);
    const Curve cuda_policy = train_on(*cuda, "cuda_policy", kPolicyDocument);
    const Curve* cuda_bf16 = nullptr;
    for (const Curve& c : curves) cuda_bf16 = c.label == "cuda_bf16" ? &c : cuda_bf16;
    double worst = 0, from_bf16 = 0;
    for (int s = 0; s < kSteps; ++s) {
      worst = std::max(worst, std::fabs(cuda_policy.loss[s] - cpu_policy.loss[s]) / (cpu_policy.loss[s] + 1.0));
      if (cuda_bf16) from_bf16 = std::max(from_bf16, std::fabs(cuda_policy.loss[s] - cuda_bf16->loss[s]) /
                                                         (cuda_bf16->loss[s] + 1.0));
    }
    double tail = 0;
    for (int s = kSteps - 5; s < kSteps; ++s) tail += cuda_policy.loss[s] / 5;
    const bool ok = worst <= 0.10 && cuda_bf16 && from_bf16 > 0.002 && tail < 0.75 * cuda_policy.loss[0];
    failures += !ok;
    std::printf("%-4s per-layer policy (nvfp4 / mxfp8 experts / fp8_e4m3 / fp8_e5m2 / bf16): cpu first %.4f last %.4f, "
                "cuda first %.4f last5 %.4f, max diff cuda vs cpu / (loss+1) %.4f (limit 0.10), vs plain cuda_bf16 "
                "%.4f (must exceed 0.002); %.1f ms/step cpu, %.1f cuda\n",
                ok ? "ok" : "FAIL", cpu_policy.loss[0], cpu_policy.loss[kSteps - 1], cuda_policy.loss[0], tail, worst,
                from_bf16, cpu_policy.ms_per_step, cuda_policy.ms_per_step);
    std::printf("policy curves (step, cpu, cuda):");
    for (int s = 0; s < kSteps; s += 5) std::printf(" %d %.4f %.4f;", s + 1, cpu_policy.loss[s], cuda_policy.loss[s]);
    std::printf("\n");
  } catch (const std::exception& error) {
    std::printf("FAIL per-layer policy: exception: %s\n", error.what());
    ++failures;
  }
  cuda->set_gemm_mode(CudaGemmMode::Fp32);
  return failures == 0 ? 0 : 1;
}
