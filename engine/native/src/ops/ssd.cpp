// Checked entry points of the Mamba-2 SSD scan (chunked forward, exact backward, decode step).
#include "ssd.h"

namespace strata {

int64_t ssd_num_chunks(int64_t time, int64_t chunk) { return chunk <= 0 ? 0 : (time + chunk - 1) / chunk; }

namespace {

struct SsdDims {
  int64_t b, t, h, p, g, n, chunks;
};

SsdDims check_inputs(const char* op, const Tensor& x, const Tensor& dt_raw, const Tensor& dt_bias,
                     const Tensor& a_log, const Tensor& bm, const Tensor& cm, const Tensor& d,
                     const SsdParams& params) {
  STRATA_CHECK(x.ndim == 4, op, ": x '", x.name, "' must be (B,T,H,P), got ", x.shape_string());
  STRATA_CHECK(bm.ndim == 4, op, ": b '", bm.name, "' must be (B,T,G,N), got ", bm.shape_string());
  SsdDims s{x.size(0), x.size(1), x.size(2), x.size(3), bm.size(2), bm.size(3), 0};
  STRATA_CHECK(params.chunk >= 1, op, ": chunk length must be >= 1, got ", params.chunk);
  STRATA_CHECK(s.g >= 1 && s.h % s.g == 0, op, ": heads ", s.h, " must be a multiple of groups ", s.g);
  STRATA_CHECK(!params.dt_limit || params.dt_min < params.dt_max, op, ": dt_limit needs dt_min < dt_max, got [",
               params.dt_min, ", ", params.dt_max, "]");
  s.chunks = ssd_num_chunks(s.t, params.chunk);
  check_shape(op, "dt_raw", dt_raw, {s.b, s.t, s.h});
  check_shape(op, "dt_bias", dt_bias, {s.h});
  check_shape(op, "a_log", a_log, {s.h});
  check_shape(op, "b", bm, {s.b, s.t, s.g, s.n});
  check_shape(op, "c", cm, {s.b, s.t, s.g, s.n});
  if (d.defined()) check_shape(op, "d", d, {s.h});
  return s;
}

}  // namespace

void ssd_forward(Backend& backend, const SsdFwd& a) {
  require_support(backend, OpKind::Ssd, "ssd_forward");
  const char* op = "ssd_forward";
  SsdDims s = check_inputs(op, a.x, a.dt_raw, a.dt_bias, a.a_log, a.b, a.c, a.d, a.params);
  check_shape(op, "y", a.y, {s.b, s.t, s.h, s.p});
  check_shape(op, "dt", a.dt, {s.b, s.t, s.h});
  check_shape(op, "chunk_states", a.chunk_states, {s.b * s.chunks, s.h, s.p, s.n});
  if (a.final_state.defined()) check_shape(op, "final_state", a.final_state, {s.b, s.h, s.p, s.n});
  if (a.initial_state.defined()) check_shape(op, "initial_state", a.initial_state, {s.b, s.h, s.p, s.n});
  backend.ssd_forward(a);
}

void ssd_backward(Backend& backend, const SsdBwd& a) {
  require_support(backend, OpKind::Ssd, "ssd_backward");
  const char* op = "ssd_backward";
  SsdDims s = check_inputs(op, a.x, a.dt_raw, a.dt_bias, a.a_log, a.b, a.c, a.d, a.params);
  check_shape(op, "dy", a.dy, {s.b, s.t, s.h, s.p});
  check_shape(op, "dt", a.dt, {s.b, s.t, s.h});
  check_shape(op, "chunk_states", a.chunk_states, {s.b * s.chunks, s.h, s.p, s.n});
  check_shape(op, "dx", a.dx, {s.b, s.t, s.h, s.p});
  check_shape(op, "ddt_raw", a.ddt_raw, {s.b, s.t, s.h});
  check_shape(op, "ddt_bias", a.ddt_bias, {s.h});
  check_shape(op, "da_log", a.da_log, {s.h});
  check_shape(op, "db", a.db, {s.b, s.t, s.g, s.n});
  check_shape(op, "dc", a.dc, {s.b, s.t, s.g, s.n});
  if (a.d.defined()) check_shape(op, "dd", a.dd, {s.h});
  if (a.dfinal_state.defined()) check_shape(op, "dfinal_state", a.dfinal_state, {s.b, s.h, s.p, s.n});
  if (a.dinitial_state.defined()) check_shape(op, "dinitial_state", a.dinitial_state, {s.b, s.h, s.p, s.n});
  backend.ssd_backward(a);
}

void ssd_step(Backend& backend, const SsdStep& a) {
  require_support(backend, OpKind::Ssd, "ssd_step");
  const char* op = "ssd_step";
  STRATA_CHECK(a.x.ndim == 3, op, ": x '", a.x.name, "' must be (B,H,P), got ", a.x.shape_string());
  STRATA_CHECK(a.b.ndim == 3, op, ": b '", a.b.name, "' must be (B,G,N), got ", a.b.shape_string());
  const int64_t b = a.x.size(0), h = a.x.size(1), p = a.x.size(2), g = a.b.size(1), n = a.b.size(2);
  STRATA_CHECK(g >= 1 && h % g == 0, op, ": heads ", h, " must be a multiple of groups ", g);
  check_shape(op, "y", a.y, {b, h, p});
  check_shape(op, "state", a.state, {b, h, p, n});
  check_shape(op, "dt_raw", a.dt_raw, {b, h});
  check_shape(op, "dt_bias", a.dt_bias, {h});
  check_shape(op, "a_log", a.a_log, {h});
  check_shape(op, "c", a.c, {b, g, n});
  if (a.d.defined()) check_shape(op, "d", a.d, {h});
  backend.ssd_step(a);
}

}  // namespace strata
