// The engine's deterministic random numbers: a counter-based generator (splitmix64 of
// seed + counter), so the whole state is two integers that checkpoints store and resume restores
// exactly. Used for initialization, data order and sampling. It is not the stochastic-rounding
// generator of the quantizers (ops/quant_codec.h has its own).
#pragma once

#include <cmath>
#include <cstdint>

namespace strata::model {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0, uint64_t counter = 0) : seed_(seed), counter_(counter) {}

  uint64_t next_u64() {
    uint64_t z = seed_ * 0x9E3779B97F4A7C15ull + (++counter_) * 0xD1B54A32D192ED03ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /** Uniform in [0, 1) with 53 random bits. */
  double uniform() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }
  /** Uniform in [lo, hi). */
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /** Standard normal (Box-Muller; one draw per call, two counters consumed). */
  double normal() {
    double u1 = uniform();
    double u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  /** Uniform integer in [0, n). */
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next_u64() % n; }

  uint64_t seed() const { return seed_; }
  uint64_t counter() const { return counter_; }
  void restore(uint64_t seed, uint64_t counter) { seed_ = seed; counter_ = counter; }

  /** An independent stream derived from this seed and a label (e.g. one per parameter). */
  static Rng derive(uint64_t seed, uint64_t stream) {
    Rng r(seed ^ (stream * 0xA24BAED4963EE407ull + 0x9FB21C651E98DF25ull), 0);
    return r;
  }

 private:
  uint64_t seed_;
  uint64_t counter_;
};

}  // namespace strata::model
