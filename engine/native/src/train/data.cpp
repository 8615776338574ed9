// Batch windows over token data (see data.h).
#include "data.h"

#include <stdexcept>

namespace strata::train {

BatchStream::BatchStream(io::TokenData data, int64_t batch, int64_t time, int vocab_size)
    : data_(std::move(data)), batch_(batch), time_(time) {
  const std::string& src = data_.source;
  if (data_.vocab > static_cast<uint32_t>(vocab_size)) {
    throw std::runtime_error(src + ": data vocabulary " + std::to_string(data_.vocab) + " exceeds the model's vocab_size " +
                             std::to_string(vocab_size));
  }
  const int64_t n = static_cast<int64_t>(data_.tokens.size());
  if (data_.seq_len > 0) {
    if (data_.seq_len < 2) throw std::runtime_error(src + ": seq_len must be at least 2");
    time_ = data_.seq_len - 1;
    units_ = n / data_.seq_len;
  } else {
    if (n < time_ + 1) {
      throw std::runtime_error(src + ": " + std::to_string(n) + " tokens are fewer than one sequence of " +
                               std::to_string(time_ + 1));
    }
    units_ = (n - 1) / time_;
  }
  if (units_ < 1) throw std::runtime_error(src + ": no complete sample in the data");
}

int64_t BatchStream::batches_per_pass() const { return std::max<int64_t>(1, units_ / batch_); }

void BatchStream::seek(int64_t cursor) {
  if (cursor < 0) throw std::runtime_error(data_.source + ": negative data position");
  cursor_ = cursor;
}

model::Batch BatchStream::next() {
  model::Batch b;
  b.batch = batch_;
  b.time = time_;
  const int64_t window = time_ + 1;
  b.tokens.resize(static_cast<size_t>(batch_ * window));
  if (data_.has_mask()) b.mask.resize(b.tokens.size());
  for (int64_t i = 0; i < batch_; i++) {
    const int64_t unit = cursor_ % units_;
    const int64_t start = data_.seq_len > 0 ? unit * data_.seq_len : unit * time_;
    for (int64_t t = 0; t < window; t++) {
      b.tokens[static_cast<size_t>(i * window + t)] = static_cast<int32_t>(data_.tokens[static_cast<size_t>(start + t)]);
      if (data_.has_mask()) b.mask[static_cast<size_t>(i * window + t)] = data_.mask[static_cast<size_t>(start + t)];
    }
    cursor_++;
  }
  return b;
}

}  // namespace strata::train
