// The model's parameters: one entry per tensor with its Hugging Face nemotron_h name and layout
// (torch.nn.Linear [out, in] row-major, conv1d [C, 1, K], ...), its fp32 value and gradient, the
// tensor role (for precision and reports), and whether weight decay applies. Routed experts are
// held as one (E, O, I) tensor for the grouped GEMMs but saved as HF's per-expert tensors
// ("...experts.{e}.up_proj.weight"), so a safetensors export is a plain copy.
// This is not the optimizer (train/optimizer.h) and not initialization (each layer initializes
// its own parameters).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/arena.h"
#include "core/backend.h"
#include "core/tensor.h"
#include "io/safetensors.h"

namespace strata::model {

struct Param {
  std::string name;  // HF name; for split experts the grouped name ("...mixer.experts.up_proj")
  std::vector<int64_t> shape;
  Tensor value;
  Tensor grad;
  std::string role;        // document tensor role or a descriptive label ("norm", "mamba.A_log")
  int layer = -1;          // main-stack layer, -1 for embeddings/head/final norm/MTP
  bool trainable = true;   // false: updated by a rule, not by gradients (expert bias)
  bool decay = true;       // AdamW weight decay applies (matrices); false for norms, biases, SSM scalars
  bool split_experts = false;  // saved as shape[0] tensors named prefix.{e}.suffix.weight
  Backend* backend = nullptr;  // where value and grad live (set by ParamStore::add)

  int64_t numel() const;
  /** Names as stored on disk (one per expert when split). */
  std::vector<std::string> disk_names() const;
};

class ParamStore {
 public:
  explicit ParamStore(Backend& backend) : arena_(backend) {}

  Param& add(const std::string& name, const std::vector<int64_t>& shape, const std::string& role, int layer,
             bool decay = true, bool trainable = true);
  Param* find(const std::string& name);
  const Param* find(const std::string& name) const;
  Param& get(const std::string& name);

  std::vector<Param*> all();
  std::vector<const Param*> all() const;
  int64_t count() const;            // number of scalars
  int64_t trainable_count() const;

  void zero_grads();

  /** Values (or gradients) as safetensors tensors with HF names, in parameter order. */
  io::SafetensorsFile to_safetensors(bool gradients, io::DType dtype = io::DType::F32) const;
  /**
   * Loads values from a safetensors file. Every parameter must be present with the right shape
   * (errors name the file and the tensor); unknown tensors are an error unless they start with
   * one of `ignore_prefixes`.
   */
  void load_safetensors(const io::SafetensorsFile& file, const std::string& label,
                        const std::vector<std::string>& ignore_prefixes = {});

 private:
  Arena arena_;
  std::deque<Param> params_;
};

}  // namespace strata::model
