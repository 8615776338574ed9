// Engine jobs driven by JSON requests, shared by the C API (include/strata/engine.h, used by the
// Node binding) and the native CLI: train, eval, generate, profile, init, grads, logits. Request fields
// follow engine/runtime/engine.ts (snake_case); each job streams events through an EventSink and
// returns a result object. Errors throw std::runtime_error with a message naming the file/field.
// This is not the binding (engine-host owns src/node) and not argument parsing (cli/).
#pragma once

#include <functional>
#include <string>

#include "events.h"
#include "io/json.h"

namespace strata::train {

using CancelFn = std::function<bool()>;

/**
 * Runs one job. kind: train | eval | generate | profile | init | grads | logits.
 *   train    {document, run_dir, train_data, heldout_data?, steps?, resume?, checkpoint?, init_from?}
 *            -> {steps_done, final_loss, cancelled, checkpoint}
 *            resume continues from `checkpoint` or the newest valid one; init_from (checkpoint folder
 *            or .safetensors) starts a new run from those weights instead of the seed's initialization.
 *   eval     {document, run_dir?, data, checkpoint?, batches?} -> {loss, ppl, bpb, accuracy, nll_by_position, ...}
 *   generate {document, checkpoint?, prompt_ids, max_new_tokens, temperature?, top_p?, seed?, stop_id?,
 *             speculative?, think_open_id?, think_close_id?, think_budget?}
 *            -> {ids, tokens_per_s, prefill_ms, decode_ms, drafted, accepted, acceptance_rate}
 *   profile  {document, run_dir?, checkpoint?, modes?, contexts?, batch?, decode_steps?} -> {rows}
 *   init     {document, out, seed?} -> {params, out}
 *   grads    {document, weights, data, out} -> {loss, tokens, out}   (fp32, main head, no MTP)
 *   logits   {document, weights, data, out} -> {loss, tokens, batch, seq_len, vocab, out}: the main
 *            head's raw logits of the first batch of `data`, written to `out` as a safetensors file
 *            with one F32 tensor "logits" (B, T, V) (CPU, under the document's precision policy, main
 *            head only; loss is its mean cross-entropy)
 * "checkpoint" of eval/generate/profile may also be a run folder: its newest checkpoint that
 * verifies is used (newer corrupt ones are skipped with a warning log event).
 * `events_callback` receives every event line; jobs with a run_dir also write RUN/events.jsonl.
 * The last event is done (reason finished | stopped | error) with the result in its "result" field,
 * or error when the job failed.
 */
json::Value run_job(const std::string& kind, const json::Value& request, const EventSink::Callback& events_callback,
                    const CancelFn& should_cancel);

/** {"version", "backends", "formats", "jobs"}. */
json::Value engine_info();

}  // namespace strata::train
