// The training run loop: sets up the run folder (document.json, events.jsonl, log.txt,
// checkpoints/), builds the model, optimizer and data streams, then per step: gradient
// accumulation over micro-batches, NaN/Inf check (stops naming the layer and tensor, keeping the
// last good checkpoint), global-norm clipping, AdamW with the schedule, MoE bias update, step
// events, periodic held-out evaluation and checkpoints; cancellation saves a checkpoint and stops
// cleanly. Resume loads the newest checkpoint and continues bit-identically.
// This is not the C API or the CLI (they call train()).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "events.h"
#include "model/config.h"

namespace strata::train {

struct TrainOptions {
  std::string run_dir;
  std::string train_data;    // .stok or .txt
  std::string heldout_data;  // "" -> split off pipeline.dataset.heldout_fraction of train_data
  int64_t steps = 0;         // 0 -> pipeline.training.steps
  bool resume = false;       // continue from run_dir's newest checkpoint
  int keep_checkpoints = 3;
  std::function<bool()> should_cancel;
};

struct TrainOutcome {
  int64_t steps_done = 0;
  double final_loss = 0;
  bool cancelled = false;
  bool stopped_non_finite = false;
  std::string last_checkpoint;
};

TrainOutcome train(const model::DocumentConfig& doc, const TrainOptions& options, EventSink& events);

/** Applies pipeline.training.threads (0 = all cores) to the CPU kernels. */
void apply_thread_setting(int threads);

}  // namespace strata::train
