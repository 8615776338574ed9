/*
 * Public C interface of the Strata native engine, for the Node binding (engine/native/src/node)
 * and any other host. Plain C, no C++ types cross it. Two layers:
 *
 *  1. Jobs: strata_run_job(kind, request_json, ...) runs one job (train, eval, generate, profile,
 *     init, grads, logits) to completion on the calling thread; request fields are those of
 *     engine/runtime/engine.ts (snake_case JSON). Call it from a worker thread for long jobs.
 *  2. Sessions: a model built once from a document, then trained, evaluated, sampled, profiled,
 *     saved/loaded and differentiated (grads) without rebuilding it.
 *
 * Events are JSON lines {"type":"start"|"step"|"eval"|"profile"|"precision"|"checkpoint"|"log"|
 * "done"|"error","t":seconds_since_start,...}; step carries step, loss, lr, tokens_per_s,
 * grad_norm; profile rows carry layer, kind, op, fwd_ms, bwd_ms, flops, bytes. Jobs with a run
 * folder also write RUN/events.jsonl, RUN/document.json, RUN/log.txt and RUN/checkpoints/.
 * Callbacks are invoked on the thread that runs the job. should_cancel is polled between steps;
 * returning non-zero stops the job cleanly (train saves a checkpoint first).
 *
 * Return codes: STRATA_OK, STRATA_ERROR (message in *error_out), STRATA_CANCELLED (result set).
 * Every char* handed out (result_json, error_out, strata_engine_info) is freed with strata_free.
 * This header is not the TypeScript API (engine/runtime/engine.ts) and has no thread pool.
 */
#ifndef STRATA_ENGINE_H
#define STRATA_ENGINE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_OK 0
#define STRATA_ERROR 1
#define STRATA_CANCELLED 2

typedef void (*strata_event_fn)(const char* json_line, void* user);
typedef int (*strata_cancel_fn)(void* user);

/* {"version","backends","jobs","formats",...} as JSON. */
char* strata_engine_info(void);

/* kind: "train" | "eval" | "generate" | "profile" | "init" | "grads" | "logits" (request shapes: jobs.h;
   logits writes the main head's raw fp32 logits of one batch to a safetensors file).
   train takes init_from (checkpoint folder or .safetensors: a new run from those weights) and, with
   resume, checkpoint (that checkpoint instead of the newest valid one). */
int strata_run_job(const char* kind, const char* request_json, strata_event_fn on_event,
                   strata_cancel_fn should_cancel, void* user, char** result_json, char** error_out);

typedef struct strata_session strata_session;

/* options_json: {"seed": N, "threads": N, "backend": "cpu", "checkpoint": PATH} (all optional). */
strata_session* strata_session_create(const char* document_json, const char* options_json, char** error_out);
void strata_session_destroy(strata_session* session);

/* Trains the session's model: a new run (resume = 0) starts from the session's current weights
   (its seed's initialization, or the checkpoint it was created with or loaded); resume = 1
   continues run_dir's newest valid checkpoint. Afterwards the session holds the trained weights. */
int strata_session_train(strata_session* session, const char* run_dir, const char* train_data,
                         const char* heldout_data, int64_t steps, int resume, strata_event_fn on_event,
                         strata_cancel_fn should_cancel, void* user, char** result_json, char** error_out);
/* Held-out evaluation of the session's weights on a .stok/.txt file. */
int strata_session_eval(strata_session* session, const char* data_path, int64_t batches, strata_event_fn on_event,
                        void* user, char** result_json, char** error_out);
/* request_json: {prompt_ids, max_new_tokens, temperature, top_p, seed, stop_id, speculative,
   think_open_id, think_close_id, think_budget}. */
int strata_session_generate(strata_session* session, const char* request_json, strata_event_fn on_event,
                            strata_cancel_fn should_cancel, void* user, char** result_json, char** error_out);
/* request_json: {modes, contexts, batch, decode_steps}. */
int strata_session_profile(strata_session* session, const char* request_json, strata_event_fn on_event,
                           strata_cancel_fn should_cancel, void* user, char** result_json, char** error_out);
/* Weights as safetensors with HF nemotron_h names (atomic write). */
int strata_session_save(strata_session* session, const char* path, char** error_out);
/* From a checkpoint folder or a .safetensors file. */
int strata_session_load(strata_session* session, const char* path, char** error_out);
/* Loss and the gradient of every parameter for the first batch of data_path, written to out_path. */
int strata_session_grads(strata_session* session, const char* data_path, const char* out_path, char** result_json,
                         char** error_out);

void strata_free(char* text);

#ifdef __cplusplus
}
#endif

#endif /* STRATA_ENGINE_H */
