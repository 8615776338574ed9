// Reads a Strata document (version 2) into ModelConfig/PipelineConfig (see config.h), applying
// the zod schema's defaults and rejecting unknown fields, with messages naming the file, the
// layer index and kind, and the field. Not a migrator and not the UI's validator.
#include "config.h"

#include <cmath>
#include <set>
#include <stdexcept>


namespace strata::model {

const char* block_kind_name(BlockKind kind) {
  switch (kind) {
    case BlockKind::Mamba2: return "mamba2";
    case BlockKind::Attention: return "attention";
    case BlockKind::Moe: return "moe";
    case BlockKind::Mlp: return "mlp";
  }
  return "?";
}

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::Relu2: return "relu2";
    case Activation::Swiglu: return "swiglu";
    case Activation::Gelu: return "gelu";
  }
  return "?";
}

namespace {

// Reads fields of one JSON object, remembering which were seen so unknown ones can be reported.
class Fields {
 public:
  Fields(const json::Value& obj, std::string where) : obj_(obj), where_(std::move(where)) {
    if (!obj_.is_object()) fail("", std::string("expected an object, got ") + json::type_name(obj_.type()));
  }

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw std::runtime_error(where_ + (field.empty() ? "" : ": field " + field) + ": " + what);
  }

  const json::Value* get(const std::string& key) {
    known_.insert(key);
    const json::Value* v = obj_.find(key);
    return v;
  }

  const json::Value& required(const std::string& key) {
    const json::Value* v = get(key);
    if (!v) fail(key, "is required");
    return *v;
  }

  int integer(const std::string& key, const json::Value& v, int64_t min) const {
    if (!v.is_number()) fail(key, std::string("expected an integer, got ") + json::type_name(v.type()));
    double d = v.as_double();
    if (std::floor(d) != d) fail(key, "expected an integer, got " + v.number_text());
    if (d < static_cast<double>(min)) fail(key, "must be >= " + std::to_string(min) + ", got " + v.number_text());
    if (d > 2147483647.0) fail(key, "is too large: " + v.number_text());
    return static_cast<int>(d);
  }

  int pos_int(const std::string& key) { return integer(key, required(key), 1); }
  int pos_int(const std::string& key, int def) {
    const json::Value* v = get(key);
    return v ? integer(key, *v, 1) : def;
  }
  int nonneg_int(const std::string& key, int def) {
    const json::Value* v = get(key);
    return v ? integer(key, *v, 0) : def;
  }
  uint64_t nonneg_u64(const std::string& key, uint64_t def) {
    const json::Value* v = get(key);
    if (!v) return def;
    if (!v->is_number()) fail(key, "expected an integer");
    try {
      return v->as_uint64();
    } catch (const std::exception&) {
      fail(key, "expected a non-negative integer, got " + v->number_text());
    }
  }

  double number(const std::string& key, double def, double min, bool min_exclusive, double max = INFINITY,
                bool max_exclusive = false) {
    const json::Value* v = get(key);
    if (!v) return def;
    return check_number(key, *v, min, min_exclusive, max, max_exclusive);
  }
  double check_number(const std::string& key, const json::Value& v, double min, bool min_exclusive, double max,
                      bool max_exclusive) const {
    if (!v.is_number()) fail(key, std::string("expected a number, got ") + json::type_name(v.type()));
    double d = v.as_double();
    if (min_exclusive ? !(d > min) : !(d >= min)) {
      fail(key, std::string("must be ") + (min_exclusive ? "> " : ">= ") + json::format_double(min) + ", got " +
                    v.number_text());
    }
    if (max_exclusive ? !(d < max) : !(d <= max)) {
      fail(key, std::string("must be ") + (max_exclusive ? "< " : "<= ") + json::format_double(max) + ", got " +
                    v.number_text());
    }
    return d;
  }

  bool boolean(const std::string& key, bool def) {
    const json::Value* v = get(key);
    if (!v) return def;
    if (!v->is_bool()) fail(key, std::string("expected a boolean, got ") + json::type_name(v->type()));
    return v->as_bool();
  }

  std::string string(const std::string& key, const std::string& def) {
    const json::Value* v = get(key);
    if (!v) return def;
    if (!v->is_string()) fail(key, std::string("expected a string, got ") + json::type_name(v->type()));
    return v->as_string();
  }

  std::string choice(const std::string& key, const std::string& def, const std::vector<std::string>& allowed) {
    const json::Value* v = get(key);
    if (!v && def.empty()) fail(key, "is required");
    std::string s = v ? (v->is_string() ? v->as_string() : "") : def;
    for (const auto& a : allowed) if (a == s) return s;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : "|") + a;
    fail(key, "expected one of " + list + (v && v->is_string() ? ", got \"" + s + "\"" : ""));
  }

  /** Call after reading every field: reports the first unknown key. */
  void finish() const {
    for (const auto& [k, _] : obj_.members()) {
      if (!known_.count(k)) fail("", "unknown field '" + k + "'");
    }
  }

  const std::string& where() const { return where_; }

 private:
  const json::Value& obj_;
  std::string where_;
  std::set<std::string> known_;
};

Activation read_activation(Fields& f) {
  std::string a = f.choice("activation", "relu2", {"relu2", "swiglu", "gelu"});
  if (a == "swiglu") return Activation::Swiglu;
  if (a == "gelu") return Activation::Gelu;
  return Activation::Relu2;
}

BlockConfig read_block(const json::Value& v, const std::string& where_prefix, int index_for_message,
                       const std::string& source) {
  std::string kind_text = v.is_object() && v.find("kind") && v.at("kind").is_string() ? v.at("kind").as_string() : "?";
  Fields f(v, source + ": " + where_prefix + " " + std::to_string(index_for_message) + " (" + kind_text + ")");
  f.get("id");
  f.get("label");
  BlockConfig b;
  std::string kind = f.choice("kind", "", {"mamba2", "attention", "moe", "mlp"});
  if (kind == "mamba2") {
    b.kind = BlockKind::Mamba2;
    auto& m = b.mamba;
    m.heads = f.pos_int("heads");
    m.head_dim = f.pos_int("head_dim");
    m.d_state = f.pos_int("d_state");
    m.groups = f.pos_int("groups");
    m.conv_kernel = f.pos_int("conv_kernel");
    m.conv_bias = f.boolean("conv_bias", true);
    m.chunk = f.pos_int("chunk");
    m.bias = f.boolean("bias", false);
    m.dt_min = f.number("dt_min", 0.001, 0, true);
    m.dt_max = f.number("dt_max", 0.1, 0, true);
    m.dt_init_floor = f.number("dt_init_floor", 1e-4, 0, true);
    const json::Value* lim = f.get("dt_limit");
    if (lim && !lim->is_null()) {
      if (!lim->is_array() || lim->size() != 2) f.fail("dt_limit", "expected [min, max] or null");
      m.has_dt_limit = true;
      m.dt_limit_lo = f.check_number("dt_limit", (*lim)[0], 0, false, INFINITY, false);
      m.dt_limit_hi = f.check_number("dt_limit", (*lim)[1], 0, true, INFINITY, false);
    }
    m.norm_before_gate = f.boolean("norm_before_gate", false);
    if (m.heads % m.groups != 0) {
      f.fail("groups", "heads " + std::to_string(m.heads) + " must be divisible by groups " + std::to_string(m.groups));
    }
    if (m.dt_min > m.dt_max) f.fail("dt_min", "must not exceed dt_max");
  } else if (kind == "attention") {
    b.kind = BlockKind::Attention;
    auto& a = b.attention;
    a.heads = f.pos_int("heads");
    a.kv_heads = f.pos_int("kv_heads");
    a.head_dim = f.pos_int("head_dim");
    const json::Value* rope = f.get("rope");
    if (rope && !rope->is_null()) {
      Fields r(*rope, f.where() + ": field rope");
      a.has_rope = true;
      a.rope_theta = r.number("theta", NAN, 0, true);
      if (std::isnan(a.rope_theta)) r.fail("theta", "is required");
      a.rope_fraction = r.number("fraction", 1, 0, true, 1, false);
      r.finish();
      int rotated = static_cast<int>(std::lround(a.head_dim * a.rope_fraction));
      if (rotated % 2 != 0) f.fail("rope", "rotated dimensions (head_dim * fraction) must be even");
    }
    a.qk_norm = f.boolean("qk_norm", false);
    a.bias = f.boolean("bias", false);
    const json::Value* sw = f.get("sliding_window");
    if (sw && !sw->is_null()) a.sliding_window = f.integer("sliding_window", *sw, 1);
    if (a.heads % a.kv_heads != 0) {
      f.fail("kv_heads", "heads " + std::to_string(a.heads) + " must be divisible by kv_heads " + std::to_string(a.kv_heads));
    }
  } else if (kind == "moe") {
    b.kind = BlockKind::Moe;
    auto& m = b.moe;
    m.experts = f.pos_int("experts");
    m.top_k = f.pos_int("top_k");
    m.expert_ffn = f.pos_int("expert_ffn");
    m.activation = read_activation(f);
    m.shared_experts = f.nonneg_int("shared_experts", 0);
    m.shared_ffn = f.nonneg_int("shared_ffn", 0);
    Fields r(f.required("router"), f.where() + ": field router");
    m.router.sigmoid = r.choice("type", "", {"softmax", "sigmoid"}) == "sigmoid";
    m.router.expert_bias = r.boolean("expert_bias", false);
    m.router.bias_update_rate = r.number("bias_update_rate", 1e-3, 0, false);
    m.router.norm_topk = r.boolean("norm_topk", true);
    m.router.routed_scaling = r.number("routed_scaling", 1, 0, true);
    m.router.aux_loss_coeff = r.number("aux_loss_coeff", 0, 0, false);
    r.finish();
    const json::Value* lat = f.get("latent");
    if (lat && !lat->is_null()) m.latent = f.integer("latent", *lat, 1);
    m.bias = f.boolean("bias", false);
    if (m.top_k > m.experts) f.fail("top_k", "top_k " + std::to_string(m.top_k) + " exceeds experts " + std::to_string(m.experts));
    if (m.shared_experts > 0 && m.shared_ffn == 0) f.fail("shared_ffn", "must be > 0 when shared_experts > 0");
  } else {
    b.kind = BlockKind::Mlp;
    b.mlp.ffn = f.pos_int("ffn");
    b.mlp.activation = read_activation(f);
    b.mlp.bias = f.boolean("bias", false);
  }
  f.finish();
  return b;
}

std::vector<BlockKind> read_kinds(const json::Value& v, Fields& f, const std::string& key) {
  std::vector<BlockKind> out;
  if (!v.is_array()) f.fail(key, "expected an array");
  for (const auto& item : v.items()) {
    std::string s = item.is_string() ? item.as_string() : "";
    if (s == "mamba2") out.push_back(BlockKind::Mamba2);
    else if (s == "attention") out.push_back(BlockKind::Attention);
    else if (s == "moe") out.push_back(BlockKind::Moe);
    else if (s == "mlp") out.push_back(BlockKind::Mlp);
    else f.fail(key, "unknown block kind \"" + s + "\"");
  }
  return out;
}

std::vector<std::string> read_strings(const json::Value& v, Fields& f, const std::string& key) {
  std::vector<std::string> out;
  if (!v.is_array()) f.fail(key, "expected an array");
  for (const auto& item : v.items()) {
    if (!item.is_string()) f.fail(key, "expected strings");
    out.push_back(item.as_string());
  }
  return out;
}

const std::vector<std::string> kFormats = {"fp32", "bf16", "fp8_e4m3", "fp8_e5m2", "mxfp8", "nvfp4"};

PrecisionConfig read_precision(const json::Value* v, const std::string& where) {
  PrecisionConfig p;
  if (!v) return p;
  Fields f(*v, where + ": model.precision");
  f.string("preset", "");
  p.default_format = f.choice("default", "", kFormats);
  const json::Value& rules = f.required("rules");
  if (!rules.is_array()) f.fail("rules", "expected an array");
  for (size_t i = 0; i < rules.size(); i++) {
    Fields rf(rules[i], where + ": precision rule " + std::to_string(i));
    PrecisionRuleConfig r;
    r.format = rf.choice("format", "", kFormats);
    rf.string("note", "");
    Fields sel(rf.required("select"), rf.where() + ": select");
    if (const json::Value* k = sel.get("kinds")) r.kinds = read_kinds(*k, sel, "kinds");
    if (const json::Value* l = sel.get("layers")) {
      Fields lf(*l, sel.where() + ": layers");
      r.layers_from = lf.nonneg_int("from", -1);
      r.layers_to = lf.nonneg_int("to", -1);
      if (r.layers_from < 0 || r.layers_to < 0) lf.fail("from", "layers needs both from and to");
      lf.finish();
    }
    r.first_n = sel.pos_int("first_n", 0);
    r.last_n = sel.pos_int("last_n", 0);
    r.last_percent = sel.number("last_percent", 0, 0, true, 100, false);
    if (const json::Value* ro = sel.get("roles")) r.roles = read_strings(*ro, sel, "roles");
    if (const json::Value* pa = sel.get("passes")) r.passes = read_strings(*pa, sel, "passes");
    sel.finish();
    rf.finish();
    p.rules.push_back(std::move(r));
  }
  f.finish();
  return p;
}

TrainConfig read_training(const json::Value* v, const std::string& where) {
  TrainConfig t;
  if (!v) return t;
  Fields f(*v, where + ": pipeline.training");
  t.steps = f.pos_int("steps", t.steps);
  t.batch_size = f.pos_int("batch_size", t.batch_size);
  t.seq_len = f.pos_int("seq_len", t.seq_len);
  t.grad_accum = f.pos_int("grad_accum", t.grad_accum);
  t.lr = f.number("lr", t.lr, 0, true);
  t.min_lr_ratio = f.number("min_lr_ratio", t.min_lr_ratio, 0, false, 1, false);
  t.warmup_steps = f.nonneg_int("warmup_steps", t.warmup_steps);
  std::string sched = f.choice("schedule", "cosine", {"cosine", "wsd", "constant"});
  t.schedule = sched == "wsd" ? Schedule::Wsd : sched == "constant" ? Schedule::Constant : Schedule::Cosine;
  t.decay_fraction = f.number("decay_fraction", t.decay_fraction, 0, true, 1, false);
  t.weight_decay = f.number("weight_decay", t.weight_decay, 0, false);
  t.beta1 = f.number("beta1", t.beta1, 0, false, 1, true);
  t.beta2 = f.number("beta2", t.beta2, 0, false, 1, true);
  t.adam_eps = f.number("adam_eps", t.adam_eps, 0, true);
  t.grad_clip = f.number("grad_clip", t.grad_clip, 0, false);
  t.seed = f.nonneg_u64("seed", t.seed);
  t.eval_every = f.nonneg_int("eval_every", t.eval_every);
  t.checkpoint_every = f.nonneg_int("checkpoint_every", t.checkpoint_every);
  t.device = f.choice("device", "cpu", {"cpu", "cuda"});
  t.threads = f.nonneg_int("threads", t.threads);
  f.finish();
  return t;
}

PipelineConfig read_pipeline(const json::Value* v, const std::string& where) {
  PipelineConfig p;
  if (!v) return p;
  Fields f(*v, where + ": pipeline");
  if (const json::Value* ds = f.get("dataset")) {
    Fields d(*ds, where + ": pipeline.dataset");
    p.dataset_source = d.choice("source", "", {"corpus", "file", "task"});
    if (p.dataset_source == "corpus") {
      p.heldout_fraction = d.number("heldout_fraction", 0.05, 0, true, 1, true);
    } else if (p.dataset_source == "file") {
      p.dataset_path = d.string("path", "");
      if (p.dataset_path.empty()) d.fail("path", "is required");
      d.string("text_field", "text");
      p.heldout_fraction = d.number("heldout_fraction", 0.05, 0, true, 1, true);
    } else {
      p.dataset_task = d.choice("task", "", {"mqar", "needle", "copy"});
      d.pos_int("num_pairs", 8);
      d.pos_int("distance", 256);
    }
    d.finish();
  }
  if (const json::Value* tok = f.get("tokenizer")) {
    Fields t(*tok, where + ": pipeline.tokenizer");
    p.tokenizer = t.choice("kind", "", {"byte", "gpt2"});
    t.finish();
  }
  p.training = read_training(f.get("training"), where);
  if (const json::Value* ev = f.get("evaluations")) {
    if (!ev->is_array()) f.fail("evaluations", "expected an array");
    p.evaluations.clear();
    for (size_t i = 0; i < ev->size(); i++) {
      Fields e((*ev)[i], where + ": pipeline.evaluations[" + std::to_string(i) + "]");
      EvalConfig c;
      c.kind = e.choice("kind", "", {"heldout", "nll_by_position", "mqar", "needle", "copy"});
      c.batches = e.pos_int("batches", 8);
      e.finish();
      p.evaluations.push_back(c);
    }
  }
  if (const json::Value* pr = f.get("profiling")) {
    Fields pf(*pr, where + ": pipeline.profiling");
    if (const json::Value* modes = pf.get("modes")) {
      p.profiling.modes = read_strings(*modes, pf, "modes");
      for (const auto& m : p.profiling.modes) {
        if (m != "train" && m != "prefill" && m != "decode") pf.fail("modes", "unknown mode \"" + m + "\"");
      }
    }
    if (const json::Value* ctx = pf.get("contexts")) {
      if (!ctx->is_array()) pf.fail("contexts", "expected an array");
      p.profiling.contexts.clear();
      for (const auto& c : ctx->items()) p.profiling.contexts.push_back(pf.integer("contexts", c, 1));
    }
    p.profiling.batch = pf.pos_int("batch", 1);
    p.profiling.hardware = pf.string("hardware", "h200");
    pf.finish();
  }
  f.finish();
  return p;
}

}  // namespace

std::string PrecisionConfig::resolve(int layer, BlockKind kind, const std::string& role, const std::string& pass,
                                     int n_layers) const {
  // Same rules as engine/spec/precision.ts: the embedding and the head stay in high precision
  // (the default when it is fp32 or bf16, else bf16) unless a rule names their role and nothing
  // else; MTP GEMMs (role "mtp") take rules that name "mtp" or have no criteria besides passes.
  const bool global = layer < 0 && (role == "head" || role == "embedding");
  std::string format = default_format;
  if (global && format != "fp32" && format != "bf16") format = "bf16";
  for (const auto& r : rules) {
    const bool positional = !r.kinds.empty() || r.layers_from >= 0 || r.first_n > 0 || r.last_n > 0 || r.last_percent > 0;
    if (layer < 0) {
      if (positional) continue;
      if (global) {
        bool named = false;
        for (const auto& ro : r.roles) named = named || ro == role;
        if (!named) continue;
      }
    } else {
      if (!r.kinds.empty()) {
        bool any = false;
        for (BlockKind k : r.kinds) any = any || k == kind;
        if (!any) continue;
      }
      if (r.layers_from >= 0 && (layer < r.layers_from || layer > r.layers_to)) continue;
      if (r.first_n > 0 && layer >= r.first_n) continue;
      if (r.last_n > 0 && layer < n_layers - r.last_n) continue;
      if (r.last_percent > 0) {
        int count = static_cast<int>(std::ceil(r.last_percent / 100.0 * n_layers - 1e-9));
        if (layer < n_layers - count) continue;
      }
    }
    if (!r.roles.empty()) {
      bool any = false;
      for (const auto& ro : r.roles) any = any || ro == role;
      if (!any) continue;
    }
    if (!r.passes.empty()) {
      bool any = false;
      for (const auto& pa : r.passes) any = any || pa == pass;
      if (!any) continue;
    }
    format = r.format;
  }
  return format;
}

DocumentConfig read_document(const json::Value& doc, const std::string& source) {
  DocumentConfig out;
  out.document = doc;
  Fields top(doc, source);
  const json::Value& fmt = top.required("format");
  if (!fmt.is_string() || fmt.as_string() != "strata") top.fail("format", "expected \"strata\"");
  const json::Value& ver = top.required("version");
  if (!ver.is_number() || ver.as_double() != 2) {
    top.fail("version", "expected 2 (the native engine reads version-2 documents; open and save older ones in "
                        "Strata Studio or run `strata convert` to migrate)");
  }
  Fields m(top.required("model"), source + ": model");
  ModelConfig& mc = out.model;
  mc.name = m.string("name", "");
  if (mc.name.empty()) m.fail("name", "is required");
  mc.vocab_size = m.pos_int("vocab_size");
  mc.d_model = m.pos_int("d_model");
  mc.norm_eps = m.number("norm_eps", 1e-5, 0, true);
  mc.tie_embeddings = m.boolean("tie_embeddings", false);
  mc.max_position_embeddings = m.pos_int("max_position_embeddings", 4096);
  mc.init_std = m.number("init_std", 0.02, 0, true);
  const json::Value& stack = m.required("stack");
  if (!stack.is_array() || stack.size() == 0) m.fail("stack", "expected a non-empty array");
  for (size_t i = 0; i < stack.size(); i++) {
    const json::Value& item = stack[i];
    if (item.is_object() && item.find("kind") && item.at("kind").is_string() && item.at("kind").as_string() == "repeat") {
      Fields g(item, source + ": stack item " + std::to_string(i) + " (repeat)");
      g.get("kind");
      g.get("id");
      g.get("label");
      g.boolean("collapsed", false);
      int count = g.pos_int("count");
      const json::Value& blocks = g.required("blocks");
      if (!blocks.is_array() || blocks.size() == 0) g.fail("blocks", "expected a non-empty array");
      g.finish();
      for (int r = 0; r < count; r++) {
        for (size_t j = 0; j < blocks.size(); j++) {
          mc.layers.push_back(read_block(blocks[j], "layer", mc.n_layers(), source));
        }
      }
    } else {
      mc.layers.push_back(read_block(item, "layer", mc.n_layers(), source));
    }
  }
  if (const json::Value* cuts = m.get("pipeline_cuts")) {
    if (!cuts->is_array()) m.fail("pipeline_cuts", "expected an array");
    for (const auto& c : cuts->items()) mc.pipeline_cuts.push_back(m.integer("pipeline_cuts", c, 1));
  }
  const json::Value* mtp = m.get("mtp");
  if (mtp && !mtp->is_null()) {
    Fields f(*mtp, source + ": model.mtp");
    f.choice("kind", "", {"mtp"});
    mc.mtp.depth = f.pos_int("depth");
    const json::Value& blocks = f.required("blocks");
    if (!blocks.is_array() || blocks.size() == 0) f.fail("blocks", "expected a non-empty array");
    for (size_t j = 0; j < blocks.size(); j++) mc.mtp.blocks.push_back(read_block(blocks[j], "mtp layer", static_cast<int>(j), source));
    mc.mtp.loss_weight = f.number("loss_weight", 0.3, 0, false);
    mc.mtp.shared_weights = f.boolean("shared_weights", true);
    f.finish();
  }
  mc.precision = read_precision(m.get("precision"), source);
  m.finish();
  out.pipeline = read_pipeline(top.get("pipeline"), source);
  top.get("view");
  top.finish();
  return out;
}

DocumentConfig read_document_text(const std::string& text, const std::string& source) {
  json::Value doc;
  try {
    doc = json::parse(text, source);
  } catch (const json::ParseError& e) {
    throw std::runtime_error(e.what());
  }
  return read_document(doc, source);
}

}  // namespace strata::model
