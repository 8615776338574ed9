// Training checkpoints: a folder RUN/checkpoints/step_000100/ holding model.safetensors (HF
// names, fp32), optimizer.safetensors (AdamW moments + step) and state.json (the document, step,
// data position, RNG state, file sizes and FNV-1a hashes). The folder is written under a temporary
// name and renamed, so a checkpoint either exists whole or not at all; the last N are kept.
// Loading verifies sizes, hashes and every tensor and refuses corrupt or truncated checkpoints with
// a message naming the file. This is not the run loop (trainer.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/json.h"
#include "model/model.h"
#include "model/rng.h"
#include "optimizer.h"

namespace strata::train {

struct CheckpointState {
  int64_t step = 0;            // optimizer steps completed
  int64_t data_position = 0;   // BatchStream cursor
  uint64_t rng_seed = 0, rng_counter = 0;
  double loss = 0;             // last step's loss, informational
  json::Value document;        // the document the run uses
  json::Value job;             // what resume needs: {train_data, heldout_data, steps}
};

/** Writes RUN/checkpoints/step_NNNNNN atomically and prunes all but the newest `keep`. Returns its path. */
std::string save_checkpoint(const std::string& run_dir, model::Model& model, const AdamW* optimizer,
                            const CheckpointState& state, int keep);

/** The newest complete checkpoint folder of a run ("" when none). Its files are not verified. */
std::string latest_checkpoint(const std::string& run_dir);

/** Complete checkpoint folders of a run, oldest first. */
std::vector<std::string> list_checkpoints(const std::string& run_dir);

/**
 * The newest checkpoint of a run whose state and files verify ("" when none). Each newer one that
 * fails verification is skipped and described in `skipped` (path and reason), so callers can say
 * which checkpoint they fell back from.
 */
std::string latest_valid_checkpoint(const std::string& run_dir, std::vector<std::string>* skipped);

/**
 * Reads and verifies state.json (and the file hashes it lists). Errors name the file and end with
 * "; refusing to use this checkpoint".
 */
CheckpointState read_checkpoint_state(const std::string& checkpoint_dir);

/**
 * Loads weights (and optimizer state when `optimizer` is given) from a checkpoint folder, or
 * weights only from a .safetensors file. Throws with the file name on any mismatch or corruption.
 */
void load_checkpoint(const std::string& path, model::Model& model, AdamW* optimizer);

/** 64-bit FNV-1a of a byte string, as 16 hex digits. */
std::string fnv1a64_hex(const std::string& bytes);

}  // namespace strata::train
