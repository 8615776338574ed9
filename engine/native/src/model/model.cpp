// The language model (see model.h): embedding, blocks, final norm, head, cross-entropy, MTP
// modules; forward/backward of a micro-batch, decoding and MTP drafting. Not the optimizer or the
// run loop.
#include "model.h"

#include <algorithm>
#include <cstdio>
#include <tuple>

#include "core/error.h"
#include "ops/cross_entropy.h"
#include "ops/elementwise.h"
#include "ops/embedding.h"
#include "ops/linear.h"
#include "ops/rmsnorm.h"
#include "tensor_util.h"

namespace strata::model {

namespace {

void rmsnorm_fwd(Backend& be, const Tensor& y, const Tensor& rstd, const Tensor& x, const Param& w, float eps) {
  RmsNormFwd f;
  f.y = y;
  f.rstd = rstd;
  f.x = x;
  f.w = w.value;
  f.eps = eps;
  rmsnorm_forward(be, f);
}

void rmsnorm_bwd(Backend& be, const Tensor& dx, const Tensor& dy, const Tensor& x, const Param& w, const Tensor& rstd,
                 bool accumulate) {
  RmsNormBwd b;
  b.dx = dx;
  b.dw = w.grad;
  b.dy = dy;
  b.x = x;
  b.w = w.value;
  b.rstd = rstd;
  b.accumulate = accumulate;
  rmsnorm_backward(be, b);
}

/**
 * Per-row CE into losses/lse; returns the sum of losses (one download of the M per-row losses);
 * `valid` receives the counted rows, taken from the host copy of the targets.
 */
double cross_entropy(Backend& be, Arena& A, const std::string& label, const Tensor& logits, const TensorI32& targets,
                     const std::vector<int32_t>& host_targets, Tensor& losses, Tensor& lse, int64_t& valid) {
  const int64_t M = logits.rows();
  losses = alloc_out(A, label + ".losses", {M});
  lse = alloc_out(A, label + ".lse", {M});
  CrossEntropyFwd f;
  f.losses = losses;
  f.lse = lse;
  f.logits = logits;
  f.targets = targets;
  f.ignore_index = kIgnoreIndex;
  cross_entropy_forward(be, f);
  valid = 0;
  for (int32_t t : host_targets) valid += t != kIgnoreIndex;
  double sum = 0;
  for (float l : download_values(be, losses)) sum += l;
  return sum;
}

Tensor cross_entropy_grad(Backend& be, Arena& A, const std::string& label, const Tensor& logits, const Tensor& lse,
                          const TensorI32& targets, float grad_scale) {
  Tensor d = alloc_out(A, label + ".grad", {logits.rows(), logits.cols()});
  CrossEntropyBwd b;
  b.dlogits = d;
  b.logits = logits;
  b.lse = lse;
  b.targets = targets;
  b.grad_scale = grad_scale;
  b.ignore_index = kIgnoreIndex;
  cross_entropy_backward(be, b);
  return d;
}

}  // namespace

Model::Model(const ModelConfig& config, Backend& backend, uint64_t seed)
    : config_(config), backend_(&backend), params_(backend) {
  Rng rng = Rng::derive(seed, 1);
  const int64_t V = config.vocab_size, D = config.d_model;
  embed_ = &params_.add("backbone.embeddings.weight", {V, D}, "embedding", -1);
  init_normal(*embed_, rng, config.init_std);
  for (int i = 0; i < config.n_layers(); i++) {
    LayerPlace place;
    place.layer = i;
    place.prefix = "backbone.layers." + std::to_string(i) + ".";
    place.label = "layer." + std::to_string(i) + "." + block_kind_name(config.layers[static_cast<size_t>(i)].kind);
    layers_.push_back(std::make_unique<Block>(config.layers[static_cast<size_t>(i)], config, place, params_, rng));
  }
  norm_f_ = &params_.add("backbone.norm_f.weight", {D}, "norm", -1, false);
  init_constant(*norm_f_, 1.0f);
  if (!config.tie_embeddings) {
    lm_head_ = &params_.add("lm_head.weight", {V, D}, "head", -1);
    init_normal(*lm_head_, rng, config.init_std);
  }
  if (config.mtp.depth > 0) {
    const int modules = config.mtp.shared_weights ? 1 : config.mtp.depth;
    mtp_modules_.resize(static_cast<size_t>(modules));
    for (int m = 0; m < modules; m++) {
      MtpModule& mod = mtp_modules_[static_cast<size_t>(m)];
      const std::string p = "mtp.layers." + std::to_string(m) + ".";
      mod.enorm = &params_.add(p + "enorm.weight", {D}, "norm", -1, false);
      mod.hnorm = &params_.add(p + "hnorm.weight", {D}, "norm", -1, false);
      mod.eh_proj = &params_.add(p + "eh_proj.weight", {D, 2 * D}, "mtp", -1);
      mod.final_norm = &params_.add(p + "final_layernorm.weight", {D}, "norm", -1, false);
      init_constant(*mod.enorm, 1.0f);
      init_constant(*mod.hnorm, 1.0f);
      init_constant(*mod.final_norm, 1.0f);
      init_normal(*mod.eh_proj, rng, config.init_std);
      for (size_t j = 0; j < config.mtp.blocks.size(); j++) {
        LayerPlace place;
        place.in_mtp = true;
        place.prefix = p + "blocks." + std::to_string(j) + ".";
        place.label = "mtp." + std::to_string(m) + ".block." + std::to_string(j) + "." +
                      block_kind_name(config.mtp.blocks[j].kind);
        mod.blocks.push_back(std::make_unique<Block>(config.mtp.blocks[j], config, place, params_, rng));
      }
    }
  }
}

Tensor Model::head_logits(StepContext& ctx, const Tensor& hf, const std::string& label) {
  Tensor logits = alloc_out(*ctx.acts, label + ".logits", {hf.rows(), int64_t{config_.vocab_size}});
  linear_forward(*ctx.backend, logits, hf, head_weight().value, Tensor(), "head", -1);
  return logits;
}

int64_t Model::head_chunk_rows(int64_t M) const {
  const int64_t V = config_.vocab_size;
  if (head_chunk_rows_ > 0) return std::min(head_chunk_rows_, M);
  if (M * V * static_cast<int64_t>(sizeof(float)) <= kHeadChunkBytes) return 0;
  return std::max<int64_t>(1, kHeadChunkBytes / 4 / (V * static_cast<int64_t>(sizeof(float))));  // a quarter of it
}

double Model::chunked_head(StepContext& ctx, const std::string& label, const Tensor& hf, const TensorI32& targets,
                           const std::vector<int32_t>& host_targets, float weight, int64_t rows, Tensor& losses,
                           Tensor& lse, int64_t& valid, Tensor& dhf) {
  Backend& be = *ctx.backend;
  Arena& A = *ctx.acts;
  const int64_t M = hf.rows(), D = hf.cols(), V = config_.vocab_size;
  losses = alloc_out(A, label + ".ce.losses", {M});
  lse = alloc_out(A, label + ".ce.lse", {M});
  dhf = alloc_out(A, label + ".hf.grad", {M, D});
  valid = 0;
  for (int32_t t : host_targets) valid += t != kIgnoreIndex;
  const float grad_scale = valid > 0 ? weight / static_cast<float>(valid) : 0.0f;
  const Tensor logits = alloc_out(A, label + ".logits.chunk", {rows, V});  // reused by every chunk
  for (int64_t r0 = 0; r0 < M; r0 += rows) {
    const int64_t n = std::min(rows, M - r0);
    const Tensor hf_rows(hf.data + r0 * D, {n, D}, hf.name);
    const Tensor chunk(logits.data, {n, V}, logits.name);
    linear_forward(be, chunk, hf_rows, head_weight().value, Tensor(), "head", -1);
    CrossEntropyFwd f;
    f.losses = Tensor(losses.data + r0, {n}, losses.name);
    f.lse = Tensor(lse.data + r0, {n}, lse.name);
    f.logits = chunk;
    f.targets = TensorI32(targets.data + r0, {n}, targets.name);
    f.ignore_index = kIgnoreIndex;
    cross_entropy_forward(be, f);
    CrossEntropyBwd b;
    b.dlogits = chunk;  // in place: the chunk's logits become their gradient
    b.logits = chunk;
    b.lse = f.lse;
    b.targets = f.targets;
    b.grad_scale = grad_scale;
    b.ignore_index = kIgnoreIndex;
    cross_entropy_backward(be, b);
    linear_backward(be, Tensor(dhf.data + r0 * D, {n, D}, dhf.name), head_dw_, Tensor(), chunk, hf_rows,
                    head_weight().value, "head", -1);
  }
  double sum = 0;
  for (float l : download_values(be, losses)) sum += l;
  return sum;
}

Tensor Model::run_mtp_blocks(StepContext& ctx, MtpModule& module, const Tensor& x, bool profile) {
  Tensor h = x;
  for (auto& b : module.blocks) h = b->forward(ctx, h, nullptr, profile ? profiler_ : nullptr);
  return h;
}

void Model::mtp_input(StepContext& ctx, int k, const Tensor& hprev, const TensorI32& ids, MtpSaved& s) {
  Backend& be = *ctx.backend;
  Arena& A = *ctx.acts;
  MtpModule& mod = module_for_depth(k);
  const int64_t M = hprev.rows(), D = config_.d_model;
  const float eps = static_cast<float>(config_.norm_eps);
  const std::string n = "mtp.depth." + std::to_string(k);
  s.ids = ids;
  s.hprev = hprev;
  s.e = alloc_out(A, n + ".embedding", {M, D});
  EmbeddingFwd ef;
  ef.out = s.e;
  ef.ids = ids;
  ef.table = embed_->value;
  embedding_forward(be, ef);
  s.en = alloc_out(A, n + ".enorm", {M, D});
  s.e_rstd = alloc_out(A, n + ".enorm.rstd", {M});
  rmsnorm_fwd(be, s.en, s.e_rstd, s.e, *mod.enorm, eps);
  s.hn = alloc_out(A, n + ".hnorm", {M, D});
  s.h_rstd = alloc_out(A, n + ".hnorm.rstd", {M});
  rmsnorm_fwd(be, s.hn, s.h_rstd, hprev, *mod.hnorm, eps);
  s.cat = alloc_out(A, n + ".concat", {M, 2 * D});
  scatter_columns(be, s.cat, s.en, 0);
  scatter_columns(be, s.cat, s.hn, D);
  s.x = alloc_out(A, n + ".eh_proj", {M, D});
  linear_forward(be, s.x, s.cat, mod.eh_proj->value, Tensor(), "mtp", -1);
}

void Model::mtp_forward_depth(StepContext& ctx, int k, const Tensor& hprev, const TensorI32& ids, MtpSaved& s,
                              bool with_logits) {
  Backend& be = *ctx.backend;
  Arena& A = *ctx.acts;
  MtpModule& mod = module_for_depth(k);
  const int64_t M = hprev.rows(), D = config_.d_model;
  const float eps = static_cast<float>(config_.norm_eps);
  const std::string n = "mtp.depth." + std::to_string(k);
  mtp_input(ctx, k, hprev, ids, s);
  s.h_out = run_mtp_blocks(ctx, mod, s.x, true);
  s.hf = alloc_out(A, n + ".final_layernorm", {M, D});
  s.hf_rstd = alloc_out(A, n + ".final_layernorm.rstd", {M});
  rmsnorm_fwd(be, s.hf, s.hf_rstd, s.h_out, *mod.final_norm, eps);
  if (with_logits) s.logits = head_logits(ctx, s.hf, n);
}

ForwardResult Model::forward(Arena& acts, const Batch& batch, bool with_mtp, bool for_backward) {
  Backend& be = *backend_;
  const int64_t B = batch.batch, T = batch.time, M = B * T, D = config_.d_model, V = config_.vocab_size;
  STRATA_CHECK(static_cast<int64_t>(batch.tokens.size()) == B * (T + 1), "batch: expected ", B * (T + 1),
               " tokens (B x (T+1)), got ", batch.tokens.size());
  STRATA_CHECK(batch.mask.empty() || batch.mask.size() == batch.tokens.size(), "batch: mask length differs from tokens");
  const float eps = static_cast<float>(config_.norm_eps);
  StepContext ctx;
  ctx.backend = &be;
  ctx.acts = &acts;
  ctx.batch = B;
  ctx.time = T;
  ctx.count_expert_load = for_backward;
  last_ctx_ = ctx;
  main_ = MainSaved();
  head_dw_ = Tensor();
  const int64_t chunk_rows = for_backward ? head_chunk_rows(M) : 0;  // training heads in row chunks
  main_.batch = B;
  main_.time = T;
  main_.ids = alloc_i32(acts, "tokens.input", {M});
  main_.targets = alloc_i32(acts, "tokens.target", {M});
  auto counted = [&](int64_t index) { return batch.mask.empty() || batch.mask[static_cast<size_t>(index)] != 0; };
  std::vector<int32_t> host_ids(static_cast<size_t>(M)), host_targets(static_cast<size_t>(M));
  for (int64_t b = 0; b < B; b++) {
    for (int64_t t = 0; t < T; t++) {
      const int64_t base = b * (T + 1);
      int32_t id = batch.tokens[static_cast<size_t>(base + t)];
      int32_t next = batch.tokens[static_cast<size_t>(base + t + 1)];
      STRATA_CHECK(id >= 0 && id < V && next >= 0 && next < V, "batch: token id ", std::max(id, next),
                   " is outside the model's vocab_size ", V);
      host_ids[static_cast<size_t>(b * T + t)] = id;
      host_targets[static_cast<size_t>(b * T + t)] = counted(base + t + 1) ? next : kIgnoreIndex;
    }
  }
  upload_values(be, main_.ids, host_ids);
  upload_values(be, main_.targets, host_targets);
  Tensor h = alloc_out(acts, "embedding", {M, D});
  {
    LayerProfile* row = profiler_ ? &profiler_->row("embedding", -1, "embedding") : nullptr;
    ScopedTimer timer(row ? &row->fwd_ms : nullptr, &be);
    EmbeddingFwd ef;
    ef.out = h;
    ef.ids = main_.ids;
    ef.table = embed_->value;
    embedding_forward(be, ef);
  }
  for (auto& layer : layers_) h = layer->forward(ctx, h, nullptr, profiler_);
  main_.h_final = h;

  ForwardResult r;
  Tensor losses;
  {
    LayerProfile* row = profiler_ ? &profiler_->row("head", -1, "head") : nullptr;
    if (profiler_) profiler_->set_active(row, false);
    ScopedTimer timer(row ? &row->fwd_ms : nullptr, &be);
    main_.hf = alloc_out(acts, "norm_f", {M, D});
    main_.hf_rstd = alloc_out(acts, "norm_f.rstd", {M});
    rmsnorm_fwd(be, main_.hf, main_.hf_rstd, h, *norm_f_, eps);
    double sum = 0;
    if (chunk_rows > 0) {
      head_dw_ = alloc(acts, "head.weight.grad.chunks", {V, D});
      sum = chunked_head(ctx, "head", main_.hf, main_.targets, host_targets, 1.0f, chunk_rows, losses, main_.lse,
                         main_.valid, main_.dhf);
    } else {
      main_.logits = head_logits(ctx, main_.hf, "head");
      sum = cross_entropy(be, acts, "head.ce", main_.logits, main_.targets, host_targets, losses, main_.lse,
                          main_.valid);
    }
    r.main_loss = main_.valid > 0 ? sum / static_cast<double>(main_.valid) : 0.0;
    if (profiler_) profiler_->set_active(nullptr, false);
  }
  r.main_tokens = main_.valid;
  r.logits = main_.logits;
  r.token_losses = losses;
  r.targets = host_targets;
  for (auto& layer : layers_) r.aux_loss += layer->mixer().aux_loss();

  double mtp_total = 0;
  mtp_in_last_forward_ = with_mtp && has_mtp();
  mtp_saved_.clear();
  if (mtp_in_last_forward_) {
    const int depth = config_.mtp.depth;
    mtp_saved_.resize(static_cast<size_t>(depth));
    Tensor hprev = main_.h_final;
    for (int k = 1; k <= depth; k++) {
      MtpSaved& s = mtp_saved_[static_cast<size_t>(k - 1)];
      const std::string n = "mtp.depth." + std::to_string(k);
      TensorI32 ids = alloc_i32(acts, n + ".input", {M});
      s.targets = alloc_i32(acts, n + ".target", {M});
      std::vector<int32_t> depth_ids(static_cast<size_t>(M)), depth_targets(static_cast<size_t>(M));
      for (int64_t b = 0; b < B; b++) {
        const int64_t base = b * (T + 1);
        for (int64_t t = 0; t < T; t++) {
          depth_ids[static_cast<size_t>(b * T + t)] = t + k <= T ? batch.tokens[static_cast<size_t>(base + t + k)] : 0;
          bool has_target = t + 1 + k <= T && counted(base + t + 1 + k);
          depth_targets[static_cast<size_t>(b * T + t)] =
              has_target ? batch.tokens[static_cast<size_t>(base + t + 1 + k)] : kIgnoreIndex;
        }
      }
      upload_values(be, ids, depth_ids);
      upload_values(be, s.targets, depth_targets);
      mtp_forward_depth(ctx, k, hprev, ids, s, chunk_rows == 0);
      Tensor mtp_losses;
      const double sum =
          chunk_rows > 0
              ? chunked_head(ctx, n, s.hf, s.targets, depth_targets, static_cast<float>(config_.mtp.loss_weight / depth),
                             chunk_rows, mtp_losses, s.lse, s.valid, s.dhf)
              : cross_entropy(be, acts, n + ".ce", s.logits, s.targets, depth_targets, mtp_losses, s.lse, s.valid);
      double loss = s.valid > 0 ? sum / static_cast<double>(s.valid) : 0.0;
      r.mtp_losses.push_back(loss);
      mtp_total += config_.mtp.loss_weight / depth * loss;
      for (auto& b : module_for_depth(k).blocks) r.aux_loss += b->mixer().aux_loss();
      hprev = s.h_out;
    }
  }
  r.objective = r.main_loss + mtp_total + r.aux_loss;
  return r;
}

void Model::backward(Arena& acts, float loss_scale) {
  Backend& be = *backend_;
  StepContext ctx = last_ctx_;
  ctx.acts = &acts;
  ctx.loss_scale = loss_scale;
  ctx.count_expert_load = false;  // recomputed MTP forwards must not count twice
  const int64_t M = main_.batch * main_.time, D = config_.d_model;

  Tensor dh_final = alloc(acts, "layers.output.grad", {M, D});
  {
    LayerProfile* row = profiler_ ? &profiler_->row("head", -1, "head") : nullptr;
    if (profiler_) profiler_->set_active(row, true);
    ScopedTimer timer(row ? &row->bwd_ms : nullptr, &be);
    if (main_.valid > 0) {
      Tensor dhf = main_.dhf;  // a chunked head's, done in forward at loss_scale 1
      if (dhf.defined()) {
        scale(be, ScaleArgs{dhf, loss_scale});
      } else {
        Tensor dlogits = cross_entropy_grad(be, acts, "head.logits", main_.logits, main_.lse, main_.targets,
                                            loss_scale / static_cast<float>(main_.valid));
        dhf = alloc_out(acts, "norm_f.grad", {M, D});
        linear_backward(be, dhf, head_weight().grad, Tensor(), dlogits, main_.hf, head_weight().value, "head", -1);
      }
      rmsnorm_bwd(be, dh_final, dhf, main_.h_final, *norm_f_, main_.hf_rstd, true);
    }
    // a chunked head's weight gradient (main and MTP heads) from forward, at loss_scale 1
    if (head_dw_.defined()) axpy(be, AxpyArgs{head_weight().grad, head_dw_, loss_scale});
    if (profiler_) profiler_->set_active(nullptr, false);
  }

  if (mtp_in_last_forward_) {
    const int depth = config_.mtp.depth;
    const float weight = static_cast<float>(config_.mtp.loss_weight / depth);
    Tensor dh_next;
    for (int k = depth; k >= 1; k--) {
      MtpSaved& s = mtp_saved_[static_cast<size_t>(k - 1)];
      MtpModule& mod = module_for_depth(k);
      const std::string n = "mtp.depth." + std::to_string(k);
      // Shared blocks hold the saved activations of the last depth run; recompute the others.
      if (config_.mtp.shared_weights && k != depth) run_mtp_blocks(ctx, mod, s.x, false);
      Tensor dh_out = alloc(acts, n + ".output.grad", {M, D});
      if (s.valid > 0 && weight > 0) {
        Tensor dhf = s.dhf;  // a chunked head's, done in forward at loss_scale 1 (weight included)
        if (dhf.defined()) {
          scale(be, ScaleArgs{dhf, loss_scale});
        } else {
          Tensor dlogits = cross_entropy_grad(be, acts, n + ".logits", s.logits, s.lse, s.targets,
                                              loss_scale * weight / static_cast<float>(s.valid));
          dhf = alloc_out(acts, n + ".final_layernorm.grad", {M, D});
          linear_backward(be, dhf, head_weight().grad, Tensor(), dlogits, s.hf, head_weight().value, "head", -1);
        }
        rmsnorm_bwd(be, dh_out, dhf, s.h_out, *mod.final_norm, s.hf_rstd, true);
      }
      if (dh_next.defined()) add_into(be, dh_out, dh_next);
      Tensor dx = dh_out;
      for (auto it = mod.blocks.rbegin(); it != mod.blocks.rend(); ++it) dx = (*it)->backward(ctx, dx, profiler_);
      Tensor dcat = alloc_out(acts, n + ".concat.grad", {M, 2 * D});
      linear_backward(be, dcat, mod.eh_proj->grad, Tensor(), dx, s.cat, mod.eh_proj->value, "mtp", -1);
      Tensor den = alloc_out(acts, n + ".enorm.grad", {M, D});
      Tensor dhn = alloc_out(acts, n + ".hnorm.grad", {M, D});
      copy_columns(be, den, dcat, 0);
      copy_columns(be, dhn, dcat, D);
      Tensor de = alloc_out(acts, n + ".embedding.grad", {M, D});
      rmsnorm_bwd(be, de, den, s.e, *mod.enorm, s.e_rstd, false);
      EmbeddingBwd eb;
      eb.dtable = embed_->grad;
      eb.ids = s.ids;
      eb.dout = de;
      embedding_backward(be, eb);
      Tensor dhprev = alloc_out(acts, n + ".hprev.grad", {M, D});
      rmsnorm_bwd(be, dhprev, dhn, s.hprev, *mod.hnorm, s.h_rstd, false);
      dh_next = dhprev;
    }
    add_into(be, dh_final, dh_next);
  }

  Tensor dh = dh_final;
  for (auto it = layers_.rbegin(); it != layers_.rend(); ++it) dh = (*it)->backward(ctx, dh, profiler_);
  LayerProfile* row = profiler_ ? &profiler_->row("embedding", -1, "embedding") : nullptr;
  ScopedTimer timer(row ? &row->bwd_ms : nullptr, &be);
  EmbeddingBwd eb;
  eb.dtable = embed_->grad;
  eb.ids = main_.ids;
  eb.dout = dh;
  embedding_backward(be, eb);
}

void Model::update_expert_biases() {
  for (auto& layer : layers_) layer->mixer().update_expert_bias();
  for (auto& mod : mtp_modules_) {
    for (auto& b : mod.blocks) b->mixer().update_expert_bias();
  }
}

/** A recorded greedy step: recorded[i] runs, then positional[i] (one fewer positional piece). */
struct DecodeGraph {
  explicit DecodeGraph(Backend& backend) : scratch(backend) {}
  Arena scratch;  // every tensor of the step: the recording holds their addresses
  std::vector<std::unique_ptr<OpRecording>> recorded;
  std::vector<PositionalWork> positional;
  void run(int64_t position) {
    for (size_t i = 0; i < recorded.size(); i++) {
      recorded[i]->replay();
      if (i < positional.size()) positional[i](position);
    }
  }
};

DecodeState::DecodeState(Backend& backend) : arena(backend) {}
DecodeState::~DecodeState() = default;

std::unique_ptr<DecodeState> Model::start_decode(int64_t batch, int64_t capacity, int64_t history_tokens) {
  auto state = std::make_unique<DecodeState>(*backend_);
  state->batch = batch;
  state->capacity = capacity;
  state->history_tokens = history_tokens;
  state->caches.resize(layers_.size());
  for (size_t i = 0; i < layers_.size(); i++) {
    layers_[i]->mixer().init_cache(state->arena, state->caches[i], batch, capacity, history_tokens);
  }
  return state;
}

void Model::prefill(DecodeState& state, Arena& scratch, const std::vector<int32_t>& tokens, int64_t T,
                    std::vector<float>& logits, std::vector<float>* hidden) {
  Backend& be = *backend_;
  const int64_t B = state.batch, M = B * T;
  STRATA_CHECK(static_cast<int64_t>(tokens.size()) == M, "prefill: expected ", M, " tokens, got ", tokens.size());
  STRATA_CHECK(T >= 1 && T <= state.capacity, "prefill: ", T, " tokens do not fit the cache capacity ", state.capacity);
  StepContext ctx;
  ctx.backend = &be;
  ctx.acts = &scratch;
  ctx.batch = B;
  ctx.time = T;
  Tensor h = embed_tokens(scratch, tokens, "prefill");
  for (size_t i = 0; i < layers_.size(); i++) h = layers_[i]->forward(ctx, h, &state.caches[i], nullptr);
  decode_logits(ctx, h, "prefill", logits, hidden);
  state.position = T;
}

Tensor Model::embed_tokens(Arena& scratch, const std::vector<int32_t>& tokens, const std::string& prefix) {
  Backend& be = *backend_;
  const int64_t M = static_cast<int64_t>(tokens.size()), V = config_.vocab_size;
  for (int32_t id : tokens) STRATA_CHECK(id >= 0 && id < V, "decode (", prefix, "): token id ", id, " outside vocab_size ", V);
  TensorI32 ids = alloc_i32(scratch, prefix + ".tokens", {M});
  upload_values(be, ids, tokens);
  return embed_ids(scratch, ids, prefix);
}

Tensor Model::embed_ids(Arena& scratch, const TensorI32& ids, const std::string& prefix) {
  Tensor h = alloc_out(scratch, prefix + ".embedding", {ids.numel(), config_.d_model});
  EmbeddingFwd ef;
  ef.out = h;
  ef.ids = ids;
  ef.table = embed_->value;
  embedding_forward(*backend_, ef);
  return h;
}

void Model::decode_logits(StepContext& ctx, const Tensor& h, const std::string& prefix, std::vector<float>& logits,
                          std::vector<float>* hidden) {
  Backend& be = *backend_;
  Arena& scratch = *ctx.acts;
  const int64_t M = h.shape[0];
  if (hidden) *hidden = download_values(be, h);
  Tensor hf = alloc_out(scratch, prefix + ".norm_f", {M, config_.d_model});
  rmsnorm_fwd(be, hf, alloc_out(scratch, prefix + ".norm_f.rstd", {M}), h, *norm_f_, static_cast<float>(config_.norm_eps));
  logits = download_values(be, head_logits(ctx, hf, prefix + ".head"));
}

void Model::decode_step(DecodeState& state, Arena& scratch, const std::vector<int32_t>& tokens,
                        std::vector<float>& logits, std::vector<float>* hidden) {
  decode_tokens(state, scratch, tokens, 1, false, logits, hidden);
}

void Model::decode_chunk(DecodeState& state, Arena& scratch, const std::vector<int32_t>& tokens, int64_t n,
                         std::vector<float>& logits, std::vector<float>* hidden) {
  STRATA_CHECK(n >= 1 && n <= state.history_tokens, "decode_chunk: ", n, " tokens, the decode state can rewind ",
               state.history_tokens);
  decode_tokens(state, scratch, tokens, n, true, logits, hidden);
}

void Model::rewind_decode(DecodeState& state, int64_t keep) {
  STRATA_CHECK(state.chunk_start >= 0 && keep >= 0 && keep <= state.chunk_tokens, "rewind_decode: cannot keep ", keep,
               " tokens of the last chunk (", state.chunk_start < 0 ? 0 : state.chunk_tokens, " tokens)");
  if (keep < state.chunk_tokens) {
    for (size_t i = 0; i < layers_.size(); i++) layers_[i]->mixer().rewind(*backend_, state.caches[i], keep);
  }
  state.position = state.chunk_start + keep;
  state.chunk_start = -1;
  state.chunk_tokens = 0;
}

void Model::decode_tokens(DecodeState& state, Arena& scratch, const std::vector<int32_t>& tokens, int64_t n,
                          bool record, std::vector<float>& logits, std::vector<float>* hidden) {
  Backend& be = *backend_;
  const int64_t B = state.batch, M = B * n;
  STRATA_CHECK(static_cast<int64_t>(tokens.size()) == M, "decode: expected ", M, " tokens (", B, " x ", n, "), got ",
               tokens.size());
  STRATA_CHECK(state.position + n <= state.capacity, "decode: positions up to ", state.position + n - 1,
               " pass the capacity ", state.capacity);
  StepContext ctx;
  ctx.backend = &be;
  ctx.acts = &scratch;
  ctx.batch = B;
  ctx.time = n;
  ctx.position = state.position;
  ctx.record_history = record;
  Tensor h = embed_tokens(scratch, tokens, "step");
  for (size_t i = 0; i < layers_.size(); i++) {
    LayerProfile* row = nullptr;
    if (profiler_) {
      row = &profiler_->row(layers_[i]->place().label, layers_[i]->place().layer, block_kind_name(layers_[i]->kind()));
      profiler_->set_active(row, false);
      row->calls++;
    }
    ScopedTimer timer(row ? &row->fwd_ms : nullptr, &be);
    h = layers_[i]->step(ctx, h, state.caches[i]);
  }
  if (profiler_) profiler_->set_active(nullptr, false);
  decode_logits(ctx, h, "step", logits, hidden);
  state.chunk_start = record ? state.position : -1;
  state.chunk_tokens = record ? n : 0;
  state.position += n;
}

void Model::greedy_body(StepContext& ctx, DecodeState& state) {
  Backend& be = *backend_;
  Arena& scratch = *ctx.acts;
  const int64_t B = state.batch;
  Tensor h = embed_ids(scratch, state.greedy_ids, "greedy");
  for (size_t i = 0; i < layers_.size(); i++) h = layers_[i]->step(ctx, h, state.caches[i]);
  Tensor hf = alloc_out(scratch, "greedy.norm_f", {B, config_.d_model});
  rmsnorm_fwd(be, hf, alloc_out(scratch, "greedy.norm_f.rstd", {B}), h, *norm_f_, static_cast<float>(config_.norm_eps));
  ArgmaxRows pick;
  pick.ids = state.greedy_ids;
  pick.logits = head_logits(ctx, hf, "greedy.head");
  argmax_rows(be, pick);
}

bool Model::record_greedy_step(DecodeState& state) {
  Backend& be = *backend_;
  auto graph = std::make_unique<DecodeGraph>(be);
  StepContext ctx;
  ctx.backend = &be;
  ctx.acts = &graph->scratch;
  ctx.batch = state.batch;
  ctx.time = 1;
  ctx.position = state.position;
  std::string why;
  // Nothing runs while recording, so a failure anywhere leaves the state as it was.
  struct RecordingFailed {};
  try {
    if (!be.begin_recording(&why)) throw RecordingFailed{};
    ctx.defer_positional = [&](const PositionalWork& work) {
      std::unique_ptr<OpRecording> piece = be.end_recording(&why);
      if (!piece) throw RecordingFailed{};
      graph->recorded.push_back(std::move(piece));
      graph->positional.push_back(work);
      if (!be.begin_recording(&why)) throw RecordingFailed{};
    };
    greedy_body(ctx, state);
    std::unique_ptr<OpRecording> last = be.end_recording(&why);
    if (!last) throw RecordingFailed{};
    graph->recorded.push_back(std::move(last));
  } catch (const RecordingFailed&) {
    graph.reset();
  } catch (const std::exception& error) {
    why = error.what();
    be.end_recording(nullptr);
    graph.reset();
  }
  if (!graph) {
    static bool said = false;
    if (!said && !be.host_accessible()) {  // host backends never record: nothing to say
      std::fprintf(stderr, "strata: greedy decode steps run op by op, not as a CUDA graph: %s\n", why.c_str());
      said = true;
    }
    state.graph_refused = true;
    return false;
  }
  graph->run(state.position);
  state.graph = std::move(graph);
  return true;
}

std::vector<int32_t> Model::decode_greedy(DecodeState& state, const std::vector<int32_t>& tokens) {
  Backend& be = *backend_;
  const int64_t B = state.batch, V = config_.vocab_size;
  STRATA_CHECK(static_cast<int64_t>(tokens.size()) == B, "decode_greedy: expected ", B, " tokens, got ", tokens.size());
  STRATA_CHECK(state.position + 1 <= state.capacity, "decode_greedy: position ", state.position,
               " is past the capacity ", state.capacity);
  if (!state.greedy_ids.defined()) state.greedy_ids = alloc_i32(state.arena, "greedy.ids", {B});
  if (tokens != state.greedy_host) {
    for (int32_t id : tokens) STRATA_CHECK(id >= 0 && id < V, "decode_greedy: token id ", id, " outside vocab_size ", V);
    upload_values(be, state.greedy_ids, tokens);
  }
  bool done = false;
  if (state.graph) {
    state.graph->run(state.position);
    done = true;
  } else if (decode_graphs_ && !profiler_ && !state.graph_refused && state.greedy_steps >= 1) {
    // The first greedy step runs op by op: it settles GEMM plans, scratch sizes and allocator caches.
    done = record_greedy_step(state);
  }
  if (!done) {
    Arena scratch(be);
    StepContext ctx;
    ctx.backend = &be;
    ctx.acts = &scratch;
    ctx.batch = B;
    ctx.time = 1;
    ctx.position = state.position;
    greedy_body(ctx, state);
  }
  state.greedy_host.resize(static_cast<size_t>(B));
  be.download(state.greedy_host.data(), state.greedy_ids.data, state.greedy_host.size() * sizeof(int32_t));
  state.position += 1;
  state.chunk_start = -1;
  state.chunk_tokens = 0;
  state.greedy_steps++;
  return state.greedy_host;
}

std::unique_ptr<MtpDecodeState> Model::start_mtp_decode(int64_t capacity) {
  STRATA_CHECK(has_mtp(), "start_mtp_decode: the model has no MTP modules");
  const int depth = config_.mtp.depth;
  auto state = std::make_unique<MtpDecodeState>(*backend_);
  state->caches.resize(static_cast<size_t>(depth));
  state->committed.assign(static_cast<size_t>(depth), 0);
  state->outputs.resize(static_cast<size_t>(depth));
  for (int k = 1; k <= depth; k++) {
    MtpModule& mod = module_for_depth(k);
    auto& caches = state->caches[static_cast<size_t>(k - 1)];
    caches.resize(mod.blocks.size());
    for (size_t j = 0; j < mod.blocks.size(); j++) {
      // A round runs the positions decided since the last one (depth + 1 at most after the first
      // round) and at most depth - 1 drafted ones, then rewinds past the drafted ones.
      mod.blocks[j]->mixer().init_cache(state->arena, caches[j], 1, capacity, 2 * depth + 1);
      // MTP caches start from the zero state by stepping (no prefill), so recurrent states are cleared.
      for (const Tensor* t : {&caches[j].conv_state, &caches[j].ssm_state}) {
        if (t->defined()) backend_->fill_zero(t->data, sizeof(float) * static_cast<size_t>(t->numel()));
      }
    }
  }
  return state;
}

std::vector<int32_t> Model::mtp_draft(MtpDecodeState& state, Arena& scratch, const std::vector<int32_t>& seq,
                                      const std::vector<float>& hidden) {
  STRATA_CHECK(has_mtp(), "mtp_draft: the model has no MTP modules");
  Backend& be = *backend_;
  const int64_t P = static_cast<int64_t>(seq.size()) - 1, D = config_.d_model;
  STRATA_CHECK(P >= 1 && static_cast<int64_t>(hidden.size()) == P * D, "mtp_draft: need hidden states for ", P,
               " positions");
  const float eps = static_cast<float>(config_.norm_eps);
  std::vector<int32_t> ext = seq, drafts;
  // Outputs of depth k-1 in this round for positions [prev_from, P-1]; older positions are committed.
  std::vector<float> prev_round;
  int64_t prev_from = 0;
  for (int k = 1; k <= config_.mtp.depth; k++) {
    const size_t d = static_cast<size_t>(k - 1);
    MtpModule& mod = module_for_depth(k);
    auto& caches = state.caches[d];
    // Depth k at position t reads x_{t+k}: decided for t <= P-k, a draft above (run, then rewound).
    const int64_t from = state.committed[d], rows = P - from;
    const int64_t commit = std::clamp<int64_t>(P - k - from + 1, 0, rows);
    std::vector<int32_t> ids(static_cast<size_t>(rows));
    std::vector<float> hprev(static_cast<size_t>(rows * D));
    for (int64_t r = 0; r < rows; r++) {
      const int64_t t = from + r;
      ids[static_cast<size_t>(r)] = ext[static_cast<size_t>(t + k)];
      const float* src = k == 1 ? hidden.data() + t * D
                         : t >= prev_from ? prev_round.data() + (t - prev_from) * D
                                          : state.outputs[d - 1].data() + t * D;
      std::copy(src, src + D, hprev.begin() + r * D);
    }
    StepContext ctx;
    ctx.backend = &be;
    ctx.acts = &scratch;
    ctx.batch = 1;
    ctx.time = rows;
    TensorI32 ids_t = alloc_i32(scratch, "draft.input", {rows});
    upload_values(be, ids_t, ids);
    Tensor hprev_t = alloc_out(scratch, "draft.hidden", {rows, D});
    upload_values(be, hprev_t, hprev);
    MtpSaved s;
    mtp_input(ctx, k, hprev_t, ids_t, s);
    std::vector<float> out(static_cast<size_t>(rows * D));
    Tensor last;  // depth k's output at position P-1
    // One pass over all rows, rewound to the committed ones, when the history holds them all (every
    // round but a first one over a long prompt); else the committed rows first, then the drafted ones.
    const bool one_pass = caches.empty() || rows <= caches.front().history_tokens;
    const std::vector<std::tuple<int64_t, int64_t, bool>> parts =
        one_pass ? std::vector<std::tuple<int64_t, int64_t, bool>>{{0, rows, true}}
                 : std::vector<std::tuple<int64_t, int64_t, bool>>{{0, commit, false}, {commit, rows - commit, true}};
    for (const auto& [begin, count, record] : parts) {
      if (count == 0) continue;
      StepContext part = ctx;
      part.time = count;
      part.position = from + begin;
      part.record_history = record;
      Tensor h = Tensor(s.x.data + begin * D, {count, D}, s.x.name);
      for (size_t j = 0; j < mod.blocks.size(); j++) h = mod.blocks[j]->step(part, h, caches[j]);
      const std::vector<float> values = download_values(be, h);
      std::copy(values.begin(), values.end(), out.begin() + begin * D);
      last = Tensor(h.data + (count - 1) * D, {1, D}, h.name);
      if (record && commit - begin < count) {
        for (size_t j = 0; j < mod.blocks.size(); j++) mod.blocks[j]->mixer().rewind(be, caches[j], commit - begin);
      }
    }
    // The draft for x_{P+k}: depth k's head at the last position P-1.
    Tensor hf = alloc_out(scratch, "draft.final_layernorm", {1, D});
    rmsnorm_fwd(be, hf, alloc_out(scratch, "draft.final_layernorm.rstd", {1}), last, *mod.final_norm, eps);
    const std::vector<float> row = download_values(be, head_logits(ctx, hf, "draft.head"));
    const int32_t best = static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
    drafts.push_back(best);
    ext.push_back(best);
    if (k < config_.mtp.depth) {
      state.outputs[d].insert(state.outputs[d].end(), out.begin(), out.begin() + commit * D);
    }
    state.committed[d] = from + commit;
    prev_round = std::move(out);
    prev_from = from;
  }
  return drafts;
}

}  // namespace strata::model
