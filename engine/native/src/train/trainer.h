// The training run loop: sets up the run folder (document.json, events.jsonl, log.txt,
// checkpoints/), builds the model, optimizer and data streams, then per step: gradient
// accumulation over micro-batches, NaN/Inf check (stops naming the layer and tensor, keeping the
// last good checkpoint), global-norm clipping, AdamW with the schedule, MoE bias update, step
// events, periodic held-out evaluation and checkpoints; cancellation saves a checkpoint and stops
// cleanly. Resume loads the newest valid checkpoint (or the one named) and continues
// bit-identically; a fresh run starts from the document's --seed initialization or, with
// init_from, from existing weights (a fine-tune: optimizer, schedule and data start anew).
// This is not the C API or the CLI (they call train()).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "events.h"
#include "io/safetensors.h"
#include "model/config.h"

namespace strata::train {

struct TrainOptions {
  std::string run_dir;
  std::string train_data;    // .stok or .txt
  std::string heldout_data;  // "" -> split off pipeline.dataset.heldout_fraction of train_data
  int64_t steps = 0;         // 0 -> pipeline.training.steps
  bool resume = false;       // continue from run_dir's newest valid checkpoint (or resume_checkpoint)
  std::string resume_checkpoint;  // resume: this checkpoint folder instead of the newest valid one
  // Fresh run only: initial weights from a checkpoint folder or a .safetensors file (shapes are
  // checked against the document, errors name the tensor), or from `init_weights` when set.
  std::string init_from;
  const io::SafetensorsFile* init_weights = nullptr;  // in-memory weights (e.g. a C API session's)
  int keep_checkpoints = 3;
  std::function<bool()> should_cancel;
};

struct TrainOutcome {
  int64_t steps_done = 0;
  double final_loss = 0;
  bool cancelled = false;
  bool stopped_non_finite = false;
  std::string last_checkpoint;

  /** The job result: {steps_done, final_loss, cancelled, checkpoint[, error]} (also the done event's "result"). */
  json::Value to_json() const;
};

TrainOutcome train(const model::DocumentConfig& doc, const TrainOptions& options, EventSink& events);

/** Applies pipeline.training.threads (0 = all cores) to the CPU kernels. */
void apply_thread_setting(int threads);

}  // namespace strata::train
