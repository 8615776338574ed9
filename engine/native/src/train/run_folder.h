// The metadata files of a run folder that the app reads besides the engine's own events.jsonl,
// log.txt, document.json and checkpoints/, written by the native CLI so that a run made on a
// machine without Node (a GPU box) opens in the app like one the TypeScript CLI made:
//   run.json        {runId, kind, name, model, device, createdAt, steps, data?, parent?}, the fields
//                   of engine/runtime/runs.ts RunMeta and electron/host/run-folders.ts
//   precision.json  {policy, layers, rows: [{scope, layer, kind, role, fprop, dgrad, wgrad}]}, the
//                   resolved table in the order of engine/spec/precision.ts resolvePrecision
// All are written atomically, with document.json. This is not the event stream (events.h) or checkpoints (checkpoint.h).
#pragma once

#include <cstdint>
#include <string>

#include "io/json.h"
#include "model/config.h"

namespace strata::train {

struct RunMetaFields {
  std::string kind;        // train | eval | generate | profile
  std::string data;        // short description of the data ("" when none)
  std::string parent;      // runId of the run this one continues or evaluates ("" when none)
  int64_t steps = -1;      // planned steps of a training run; -1 writes null
};

/** precision.json's content for a document (policy as the document gives it, then the resolved rows). */
json::Value precision_table_json(const model::DocumentConfig& doc);

/**
 * Writes RUN/run.json (a new one whose runId is the folder name, or the existing one with its planned
 * steps updated when `fields.steps` >= 0), RUN/document.json (the document as run) and
 * RUN/precision.json. createdAt is the current UTC time in ISO 8601 with milliseconds.
 */
void write_run_metadata(const std::string& run_dir, const model::DocumentConfig& doc, const RunMetaFields& fields);

}  // namespace strata::train
