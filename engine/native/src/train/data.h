// Batches from token data for training and evaluation. A continuous stream is cut into windows
// of T+1 tokens advancing by T (so every token is a target exactly once per pass), wrapping at
// the end; fixed-length sample files (seq_len set, as synthetic tasks write) yield whole samples
// (T = seq_len - 1). The cursor counts the windows/samples taken so far, without wrapping (a pass
// wraps only when reading): it is the whole data state, so checkpoints store it and resume sees the
// same batches, and a resume over data that was extended since (more synthetic samples) continues
// with the new samples instead of starting over. This is not a tokenizer or a shuffler.
#pragma once

#include <cstdint>

#include "io/tokens.h"
#include "model/model.h"

namespace strata::train {

class BatchStream {
 public:
  /** `time` is T for continuous streams; fixed-length data uses its own seq_len - 1. */
  BatchStream(io::TokenData data, int64_t batch, int64_t time, int vocab_size);

  model::Batch next();
  int64_t cursor() const { return cursor_; }
  void seek(int64_t cursor);
  int64_t time() const { return time_; }
  int64_t batch() const { return batch_; }
  /** How many distinct batches one pass over the data holds (at least 1). */
  int64_t batches_per_pass() const;
  const io::TokenData& data() const { return data_; }

 private:
  io::TokenData data_;
  int64_t batch_, time_;
  int64_t units_;   // windows (stream) or samples (fixed-length)
  int64_t cursor_ = 0;  // units taken so far (not wrapped)
};

}  // namespace strata::train
