// Training run loop (see trainer.h).
#include "trainer.h"

#include <chrono>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "checkpoint.h"
#include "core/backend.h"
#include "data.h"
#include "device.h"
#include "evaluate.h"
#include "io/files.h"
#include "io/tokens.h"
#include "model/model.h"
#include "model/precision_hook.h"
#include "optimizer.h"

#ifdef STRATA_HAVE_OPENMP
#include <omp.h>
#endif

namespace strata::train {

void apply_thread_setting(int threads) {
#ifdef STRATA_HAVE_OPENMP
  if (threads > 0) omp_set_num_threads(threads);
#else
  (void)threads;
#endif
}

namespace {

std::string non_finite_message(int64_t step, const model::Param& p) {
  std::string where = p.layer >= 0 ? "layer " + std::to_string(p.layer) : std::string("model");
  return "step " + std::to_string(step) + ": non-finite gradient (NaN or Inf) in " + where + ", tensor " + p.name +
         "; training stopped, the last good checkpoint is kept";
}

}  // namespace

json::Value TrainOutcome::to_json() const {
  json::Value res = json::Value::object();
  res.set("steps_done", json::Value(steps_done));
  res.set("final_loss", json::Value(final_loss));
  res.set("cancelled", json::Value(cancelled));
  res.set("checkpoint", last_checkpoint);
  if (stopped_non_finite) res.set("error", "non-finite gradient; see the error event");
  return res;
}

TrainOutcome train(const model::DocumentConfig& doc, const TrainOptions& options, EventSink& events) {
  const model::TrainConfig& tc = doc.pipeline.training;
  apply_thread_setting(tc.threads);
  if (options.run_dir.empty()) throw std::runtime_error("train: a run folder is required");
  io::make_dirs(options.run_dir);
  io::write_file_atomic(io::join_path(options.run_dir, "document.json"), json::dump(doc.document, 2) + "\n");
  const int64_t total_steps = options.steps > 0 ? options.steps : tc.steps;

  Backend& backend = select_backend(tc.device, "pipeline.training.device");
  model::Model model(doc.model, backend, tc.seed);
  model::PrecisionHook precision(doc.model, tc.seed, backend.host_accessible());
  AdamW optimizer(model.params(), model.backend());

  // Log lines found while setting up; emitted after the start event (which opens every stream).
  std::vector<std::pair<std::string, const char*>> notes;
  io::TokenData all = io::read_tokens(options.train_data);
  io::TokenData train_tokens, heldout_tokens;
  if (options.heldout_data.empty()) {
    io::split_heldout(all, doc.pipeline.heldout_fraction, train_tokens, heldout_tokens);
  } else {
    train_tokens = std::move(all);
    heldout_tokens = io::read_tokens(options.heldout_data);
  }
  BatchStream train_stream(std::move(train_tokens), tc.batch_size, tc.seq_len, doc.model.vocab_size);
  std::unique_ptr<BatchStream> heldout_stream;
  try {
    heldout_stream = std::make_unique<BatchStream>(std::move(heldout_tokens), tc.batch_size, tc.seq_len,
                                                   doc.model.vocab_size);
  } catch (const std::runtime_error& e) {
    notes.emplace_back(std::string("held-out evaluation disabled: ") + e.what(), "warning");
  }
  int64_t heldout_batches = 8;
  for (const auto& ev : doc.pipeline.evaluations) {
    if (ev.kind == "heldout") heldout_batches = ev.batches;
  }

  model::Rng run_rng(tc.seed, 0);
  int64_t start_step = 0;
  TrainOutcome outcome;
  if (options.resume) {
    std::string ckpt = options.resume_checkpoint;
    if (ckpt.empty()) {
      std::vector<std::string> skipped;
      ckpt = latest_valid_checkpoint(options.run_dir, &skipped);
      if (ckpt.empty()) {
        std::string why = skipped.empty() ? "" : " (" + skipped.front() + ")";
        throw std::runtime_error(options.run_dir + ": no valid checkpoint to resume from" + why);
      }
      for (const auto& s : skipped) notes.emplace_back("skipped a corrupt checkpoint: " + s, "warning");
      if (!skipped.empty()) notes.emplace_back("falling back to the newest valid checkpoint " + ckpt, "warning");
    }
    CheckpointState st = read_checkpoint_state(ckpt);
    load_checkpoint(ckpt, model, &optimizer);
    start_step = st.step;
    train_stream.seek(st.data_position);
    run_rng.restore(st.rng_seed, st.rng_counter);
    outcome.last_checkpoint = ckpt;
    outcome.final_loss = st.loss;
    notes.emplace_back("resumed from " + ckpt + " at step " + std::to_string(start_step), "info");
  } else if (options.init_weights || !options.init_from.empty()) {
    const std::string label = options.init_from.empty() ? std::string("initial weights") : options.init_from;
    try {
      if (options.init_weights) model.params().load_safetensors(*options.init_weights, label);
      else load_checkpoint(options.init_from, model, nullptr);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(std::string("init from ") + e.what() + " (the weights must match the document's model)");
    }
    notes.emplace_back("initialized from " + label + " (optimizer, schedule and data position start anew)", "info");
  }

  json::Value start = events.make("start");
  start.set("job", "train");
  start.set("steps", json::Value(total_steps));
  start.set("start_step", json::Value(start_step));
  start.set("params", json::Value(model.params().count()));
  start.set("trainable_params", json::Value(model.params().trainable_count()));
  start.set("tokens_per_step", json::Value(int64_t{tc.batch_size} * train_stream.time() * tc.grad_accum));
  start.set("backend", model.backend().name());
  start.set("gemm", gemm_mode_name(model.backend()));
  if (options.resume) start.set("resumed_from", outcome.last_checkpoint);
  if (!options.resume && !options.init_from.empty()) start.set("init_from", options.init_from);
  events.emit(start);
  for (const auto& [message, level] : notes) events.log(message, level);
  note_device_precision(model.backend(), precision, events);
  events.emit(precision.table_event(events.make("precision")));

  auto checkpoint = [&](int64_t step, double loss) {
    CheckpointState st;
    st.step = step;
    st.data_position = train_stream.cursor();
    st.rng_seed = run_rng.seed();
    st.rng_counter = run_rng.counter();
    st.loss = loss;
    st.document = doc.document;
    st.job = json::Value::object();
    st.job.set("train_data", options.train_data);
    st.job.set("heldout_data", options.heldout_data);
    st.job.set("steps", json::Value(total_steps));
    if (!options.init_from.empty()) st.job.set("init_from", options.init_from);
    outcome.last_checkpoint = save_checkpoint(options.run_dir, model, &optimizer, st, options.keep_checkpoints);
    json::Value e = events.make("checkpoint");
    e.set("step", json::Value(step));
    e.set("path", outcome.last_checkpoint);
    events.emit(e);
  };
  auto run_eval = [&](int64_t step) {
    if (!heldout_stream) return;
    EvalResult r = evaluate(model, *heldout_stream, heldout_batches);
    json::Value e = r.to_json(false);
    json::Value ev = events.make("eval");
    ev.set("step", json::Value(step));
    for (const auto& [k, v] : e.members()) ev.set(k, v);
    events.emit(ev);
    for (const auto& p : precision.take_inspection_events(events.seconds())) events.emit(p);
  };

  int64_t step = start_step;
  double last_loss = outcome.final_loss;
  for (; step < total_steps; step++) {
    if (options.should_cancel && options.should_cancel()) {
      outcome.cancelled = true;
      break;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const bool inspect = tc.eval_every > 0 && ((step + 1) % tc.eval_every == 0 || step + 1 == total_steps);
    precision.begin_step(step, inspect);
    model.params().zero_grads();
    double loss = 0, objective = 0, aux = 0;
    std::vector<double> mtp;
    int64_t tokens = 0;
    for (int micro = 0; micro < tc.grad_accum; micro++) {
      model::Batch batch = train_stream.next();
      Arena acts(model.backend());
      model::ForwardResult r = model.forward(acts, batch, true, true);
      model.backward(acts, 1.0f / static_cast<float>(tc.grad_accum));
      loss += r.main_loss / tc.grad_accum;
      objective += r.objective / tc.grad_accum;
      aux += r.aux_loss / tc.grad_accum;
      if (mtp.empty()) mtp.assign(r.mtp_losses.size(), 0.0);
      for (size_t k = 0; k < r.mtp_losses.size(); k++) mtp[k] += r.mtp_losses[k] / tc.grad_accum;
      tokens += batch.batch * batch.time;
    }
    // A non-finite gradient makes the norm non-finite, so the (device-side) norm is the check; the
    // offending tensor is searched for only then.
    const double norm = global_grad_norm(model.backend(), model.params());
    if (!std::isfinite(objective) || !std::isfinite(norm)) {
      const model::Param* bad = first_non_finite_grad(model.params());
      std::string msg = bad ? non_finite_message(step + 1, *bad)
                            : "step " + std::to_string(step + 1) +
                                  ": the loss is not finite; training stopped, the last good checkpoint is kept";
      events.error(msg);
      outcome.stopped_non_finite = true;
      break;
    }
    const double clip = tc.grad_clip > 0 && norm > tc.grad_clip ? tc.grad_clip / norm : 1.0;
    const double lr = learning_rate(tc, step, total_steps);
    optimizer.step(tc, lr, clip);
    model.update_expert_biases();
    last_loss = loss;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    json::Value e = events.make("step");
    e.set("step", json::Value(step + 1));
    e.set("loss", json::Value(loss));
    e.set("lr", json::Value(lr));
    e.set("tokens_per_s", json::Value(seconds > 0 ? static_cast<double>(tokens) / seconds : 0.0));
    e.set("grad_norm", json::Value(norm));
    e.set("objective", json::Value(objective));
    if (!mtp.empty()) {
      json::Value arr = json::Value::array();
      for (double v : mtp) arr.push_back(json::Value(v));
      e.set("mtp_loss", arr);
    }
    if (aux != 0) e.set("aux_loss", json::Value(aux));
    e.set("tokens", json::Value(tokens));
    events.emit(e);

    const int64_t done = step + 1;
    if (tc.eval_every > 0 && done % tc.eval_every == 0 && done != total_steps) run_eval(done);
    if (tc.checkpoint_every > 0 && done % tc.checkpoint_every == 0 && done != total_steps) checkpoint(done, loss);
  }
  outcome.steps_done = step;
  outcome.final_loss = last_loss;
  if (!outcome.stopped_non_finite) {
    if (!outcome.cancelled) run_eval(step);
    if (step > start_step || outcome.last_checkpoint.empty()) checkpoint(step, last_loss);
  }
  json::Value done = events.make("done");
  done.set("reason", outcome.stopped_non_finite ? "error" : outcome.cancelled ? "stopped" : "finished");
  done.set("steps_done", json::Value(step));
  done.set("final_loss", json::Value(last_loss));
  done.set("result", outcome.to_json());
  events.emit(done);
  return outcome;
}

}  // namespace strata::train
