// CudaBackend core: device selection, stream and cuBLASLt handle, memory entry points over the
// caching allocator, scratch buffers, op recording into CUDA graphs, per-op completion (launch
// checks; synchronization only in managed mode), deferred reports of validating kernels, the
// op-level GPU timer (OpTimes), the GEMM mode names, and the load-time registration with the
// backend registry.
// Kernels live in the per-family files (cuda/*_cuda.cu).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

#include "cuda_common.cuh"

namespace strata {

const char* cuda_gemm_mode_name(CudaGemmMode mode) {
  switch (mode) {
    case CudaGemmMode::Fp32: return "fp32";
    case CudaGemmMode::Bf16: return "bf16";
    case CudaGemmMode::Fp8E4m3: return "fp8";
  }
  return "fp32";
}

CudaGemmMode parse_cuda_gemm_mode(const std::string& name) {
  if (name == "fp32") return CudaGemmMode::Fp32;
  if (name == "bf16") return CudaGemmMode::Bf16;
  if (name == "fp8" || name == "fp8_e4m3") return CudaGemmMode::Fp8E4m3;
  throw Error("cuda gemm mode must be fp32, bf16 or fp8, got '" + name + "'");
}

void check_launch(const char* op) { STRATA_CUDA_CHECK(cudaGetLastError(), op); }

namespace {
// "layer.12.mamba2.ssd.grad" -> "mamba2.ssd.grad": one timing row for every layer of a kind.
std::string without_layer_prefix(const char* name) {
  if (std::strncmp(name, "layer.", 6) != 0) return name;
  const char* p = name + 6;
  while (*p >= '0' && *p <= '9') ++p;
  return *p == '.' && p > name + 6 ? std::string(p + 1) : std::string(name);
}

// Timers still alive at exit print their tables then (the process-wide backend is never destroyed).
std::mutex& timers_mutex() {
  static std::mutex m;
  return m;
}
std::set<OpTimes*>& live_timers() {
  static std::set<OpTimes*> timers;
  return timers;
}
void print_live_timers() {
  std::lock_guard<std::mutex> lock(timers_mutex());
  for (OpTimes* t : live_timers()) std::fputs(t->table().c_str(), stderr);
  live_timers().clear();
}
}  // namespace

OpTimes::OpTimes(cudaStream_t stream) : stream_(stream) {
  start_ = take_event();
  cudaEventRecord(start_, stream_);
  host_start_ = std::chrono::steady_clock::now();
  static const bool registered = [] {
    live_timers();  // constructed before the handler is registered, so destroyed after it ran
    return std::atexit(print_live_timers) == 0;
  }();
  (void)registered;
  std::lock_guard<std::mutex> lock(timers_mutex());
  live_timers().insert(this);
}

OpTimes::~OpTimes() {
  bool print = false;
  {
    std::lock_guard<std::mutex> lock(timers_mutex());
    print = live_timers().erase(this) > 0;
  }
  if (print) std::fputs(table().c_str(), stderr);
  for (const Pending& p : pending_) cudaEventDestroy(p.event);
  for (cudaEvent_t e : spare_) cudaEventDestroy(e);
  if (start_) cudaEventDestroy(start_);
}

cudaEvent_t OpTimes::take_event() {
  if (!spare_.empty()) {
    cudaEvent_t e = spare_.back();
    spare_.pop_back();
    return e;
  }
  cudaEvent_t e = nullptr;
  STRATA_CUDA_CHECK(cudaEventCreate(&e), "cuda op timing");
  return e;
}

void OpTimes::mark(const char* op, const char* detail) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream_, &capture) != cudaSuccess || capture != cudaStreamCaptureStatusNone) return;
  std::string name = std::strncmp(op, "cuda ", 5) == 0 ? op + 5 : op;
  if (detail && *detail) name += " " + without_layer_prefix(detail);
  const cudaEvent_t event = take_event();
  STRATA_CUDA_CHECK(cudaEventRecord(event, stream_), "cuda op timing");
  const auto now = std::chrono::steady_clock::now();
  pending_.push_back({event, std::move(name), std::chrono::duration<double, std::milli>(now - host_start_).count()});
  host_start_ = now;
  if (pending_.size() >= 8192) {  // bound the events in flight: wait for the newest, count on from it
    STRATA_CUDA_CHECK(cudaEventSynchronize(event), "cuda op timing");
    add_pending();
  }
}

void OpTimes::add_pending() {
  for (Pending& p : pending_) {
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, start_, p.event);
    Row& row = rows_[p.name];
    row.gpu_ms += ms;
    row.host_ms += p.host_ms;
    ++row.calls;
    spare_.push_back(start_);
    start_ = p.event;
  }
  pending_.clear();
}

void OpTimes::collect() {
  add_pending();
  // The stream was idle: the next op's time starts now, not at the last op's end.
  cudaEventRecord(start_, stream_);
  host_start_ = std::chrono::steady_clock::now();
}

void OpTimes::restart() {
  collect();
  rows_.clear();
}

std::string OpTimes::table() {
  cudaStreamSynchronize(stream_);
  collect();
  std::vector<std::pair<std::string, Row>> rows(rows_.begin(), rows_.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.gpu_ms > b.second.gpu_ms; });
  double total = 0.0;
  for (const auto& [name, row] : rows) total += row.gpu_ms;
  std::string out = "strata: CUDA op times (STRATA_CUDA_OP_TIMES=1; GPU ms between consecutive op ends, measured work)\n";
  char line[512];
  std::snprintf(line, sizeof line, "%12s %8s %10s %7s %12s  %s\n", "gpu ms", "calls", "mean ms", "share", "host ms", "op");
  out += line;
  for (const auto& [name, row] : rows) {
    std::snprintf(line, sizeof line, "%12.3f %8lld %10.4f %6.2f%% %12.3f  %s\n", row.gpu_ms,
                  static_cast<long long>(row.calls), row.gpu_ms / static_cast<double>(row.calls),
                  total > 0 ? 100.0 * row.gpu_ms / total : 0.0, row.host_ms, name.c_str());
    out += line;
  }
  std::snprintf(line, sizeof line, "%12.3f  total\n", total);
  out += line;
  return out;
}

void* CudaBackendState::scratch_bytes(int slot, std::size_t bytes, const char* op) {
  STRATA_CHECK(slot >= 0 && slot < static_cast<int>(sizeof(scratch) / sizeof(scratch[0])), op,
               ": scratch slot ", slot, " out of range");
  ScratchBuffer& buffer = scratch[slot];
  if (buffer.bytes < bytes) {
    STRATA_CHECK(!recording, op, ": scratch slot ", slot, " must grow to ", bytes,
                 " bytes while ops are being recorded (run the work once unrecorded first)");
    if (buffer.data && live_recordings > 0) {
      retired_scratch.push_back(buffer.data);  // a recorded graph may still use it
      buffer.data = nullptr;
      buffer.bytes = 0;
    } else if (buffer.data) {
      STRATA_CUDA_CHECK(cudaStreamSynchronize(stream), op);
      STRATA_CUDA_CHECK(cudaFree(buffer.data), op);
      buffer.data = nullptr;
      buffer.bytes = 0;
    }
    const std::size_t grown = CachingAllocator::rounded_size(bytes + bytes / 2);
    STRATA_CUDA_CHECK(cudaMalloc(&buffer.data, grown), op);
    buffer.bytes = grown;
  }
  return buffer.data;
}

DeviceErrorFlag* CudaBackendState::error_record(DeviceErrorReporter report, const char* op) {
  if (pending_reports.size() >= static_cast<std::size_t>(kErrorRecords)) synchronize_and_report(op);
  DeviceErrorFlag* record = error_records + pending_reports.size();
  record->code = 0;
  record->index = 0;
  record->value = 0;
  pending_reports.push_back(std::move(report));
  return record;
}

void CudaBackendState::synchronize_and_report(const char* op) {
  STRATA_CHECK(!recording, op, ": cannot wait for the GPU while ops are being recorded");
  note_op();  // also ends helpers that queue work without finish_op (fake quantization, sum_squares)
  STRATA_CUDA_CHECK(cudaStreamSynchronize(stream), op);
  if (op_times) op_times->collect();
  std::vector<DeviceErrorReporter> reports;
  reports.swap(pending_reports);
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const DeviceErrorFlag record = error_records[i];
    if (record.code != 0) reports[i](record);
  }
}

CudaBackend::CudaBackend(const CudaBackendOptions& options)
    : name_("cuda:" + std::to_string(options.device)),
      memory_(options.memory),
      gemm_mode_(options.gemm_mode),
      state_(std::make_unique<CudaBackendState>(options.memory)) {
  const char* op = "cuda backend";
  int count = 0;
  STRATA_CUDA_CHECK(cudaGetDeviceCount(&count), op);
  STRATA_CHECK(options.device >= 0 && options.device < count, op, ": device ", options.device,
               " does not exist (", count, " GPUs)");
  CudaBackendState& s = *state_;
  s.device = options.device;
  STRATA_CUDA_CHECK(cudaSetDevice(s.device), op);
  STRATA_CUDA_CHECK(cudaGetDeviceProperties(&s.properties, s.device), op);
  STRATA_CUDA_CHECK(cudaStreamCreate(&s.stream), op);
  STRATA_CUBLAS_CHECK(cublasLtCreate(&s.lt), op);
  s.lt_workspace_bytes = std::size_t(32) << 20;
  STRATA_CUDA_CHECK(cudaMalloc(&s.lt_workspace, s.lt_workspace_bytes), op);
  STRATA_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&s.error_records), kErrorRecords * sizeof(DeviceErrorFlag),
                                  cudaHostAllocMapped),
                    op);
  STRATA_CUDA_CHECK(cudaMalloc(&s.fp8_scales, 32 * sizeof(float)), op);
  STRATA_CUDA_CHECK(cudaMalloc(&s.fp8_site_amax, CudaBackendState::kFp8Sites * sizeof(unsigned int)), op);
  STRATA_CUDA_CHECK(cudaMemset(s.fp8_site_amax, 0, CudaBackendState::kFp8Sites * sizeof(unsigned int)), op);
  STRATA_CUDA_CHECK(cudaMalloc(&s.reduce_slot, sizeof(double)), op);
  if (const char* env = std::getenv("STRATA_CUDA_GEMM")) gemm_mode_ = parse_cuda_gemm_mode(env);
  if (const char* env = std::getenv("STRATA_CUDA_OP_TIMES"); env && std::string(env) == "1") {
    s.op_times = std::make_unique<OpTimes>(s.stream);
  }
}

CudaBackend::~CudaBackend() {
  CudaBackendState& s = *state_;
  cudaSetDevice(s.device);
  if (s.stream) cudaStreamSynchronize(s.stream);
  s.op_times.reset();
  for (ScratchBuffer& buffer : s.scratch) cudaFree(buffer.data);
  for (void* retired : s.retired_scratch) cudaFree(retired);
  for (auto& [key, pack] : s.weight_packs) cudaFree(pack.data);
  cudaFree(s.lt_workspace);
  cudaFreeHost(s.error_records);
  cudaFree(s.fp8_scales);
  cudaFree(s.fp8_site_amax);
  cudaFree(s.reduce_slot);
  if (s.blas) cublasDestroy(s.blas);
  if (s.lt) cublasLtDestroy(s.lt);
  if (s.stream) cudaStreamDestroy(s.stream);
}

bool CudaBackend::supports(OpKind) const { return true; }
bool CudaBackend::host_accessible() const { return memory_ == CudaMemoryMode::Managed; }

void* CudaBackend::allocate(std::size_t bytes) {
  cudaSetDevice(state_->device);
  return state_->allocator.allocate(bytes);
}
void CudaBackend::release(void* pointer) {
  if (const std::size_t bytes = state_->parameters.remove(pointer)) state_->drop_weight_packs(pointer, bytes);
  state_->allocator.release(pointer);
}

// Managed memory is written by host code directly, so its parameters are never packed once for reuse.
void CudaBackend::note_parameter_memory(const void* pointer, std::size_t bytes) {
  if (memory_ == CudaMemoryMode::Device) state_->parameters.add(pointer, bytes);
}

void CudaBackend::fill_zero(void* pointer, std::size_t bytes) {
  if (bytes == 0) return;
  state_->parameters.note_write(pointer, bytes);
  STRATA_CUDA_CHECK(cudaMemsetAsync(pointer, 0, bytes, state_->stream), "cuda fill_zero");
  finish_op("cuda fill_zero");
}

void CudaBackend::fill_bytes(void* pointer, std::size_t bytes, unsigned char value) {
  if (bytes == 0) return;
  state_->parameters.note_write(pointer, bytes);
  STRATA_CUDA_CHECK(cudaMemsetAsync(pointer, value, bytes, state_->stream), "cuda fill_bytes");
  finish_op("cuda fill_bytes");
}

// A host-to-device copy from pageable memory is staged by the driver before cudaMemcpyAsync
// returns, so the caller may reuse its buffer at once; device memory needs no wait. Managed memory
// waits, because host code may read the destination right after.
void CudaBackend::upload(void* device_destination, const void* host_source, std::size_t bytes) {
  if (bytes == 0) return;
  state_->parameters.note_write(device_destination, bytes);
  state_->note_op();
  STRATA_CUDA_CHECK(cudaMemcpyAsync(device_destination, host_source, bytes, cudaMemcpyDefault, state_->stream),
                    "cuda upload");
  if (state_->op_times) state_->op_times->mark("upload", nullptr);
  if (memory_ == CudaMemoryMode::Managed) state_->synchronize_and_report("cuda upload");
}

void CudaBackend::download(void* host_destination, const void* device_source, std::size_t bytes) {
  if (bytes == 0) return;
  STRATA_CUDA_CHECK(cudaMemcpyAsync(host_destination, device_source, bytes, cudaMemcpyDefault, state_->stream),
                    "cuda download");
  if (state_->op_times) state_->op_times->mark("download", nullptr);
  state_->synchronize_and_report("cuda download");
}

void CudaBackend::synchronize() { state_->synchronize_and_report("cuda synchronize"); }

void CudaBackend::restart_counters() {
  CudaBackendState& s = *state_;
  if (!s.op_times) return;
  s.synchronize_and_report("cuda restart_counters");
  s.op_times->restart();
}

namespace {
// One instantiated CUDA graph on the backend's stream. It reads the weight packs that were current
// when it was recorded: a replay first packs again those whose parameters changed since.
class CudaRecording final : public OpRecording {
 public:
  CudaRecording(CudaBackendState& state, cudaGraphExec_t exec, std::vector<WeightPackKey> packs)
      : state_(state), exec_(exec), packs_(std::move(packs)) {
    ++state_.live_recordings;
  }
  ~CudaRecording() override {
    cudaStreamSynchronize(state_.stream);
    cudaGraphExecDestroy(exec_);
    if (--state_.live_recordings == 0) {
      for (void* retired : state_.retired_scratch) cudaFree(retired);
      state_.retired_scratch.clear();
    }
  }
  void replay() override {
    for (const WeightPackKey& key : packs_) {
      STRATA_CHECK(state_.weight_pack(key, false, "cuda graph replay") != nullptr,
                   "cuda graph replay: a parameter the recording reads was freed; record the step again");
    }
    STRATA_CUDA_CHECK(cudaGraphLaunch(exec_, state_.stream), "cuda graph replay");
    state_.note_op();
  }

 private:
  CudaBackendState& state_;
  cudaGraphExec_t exec_;
  std::vector<WeightPackKey> packs_;  // weight packs the graph reads
};
}  // namespace

bool CudaBackend::begin_recording(std::string* why_not) {
  CudaBackendState& s = *state_;
  auto refuse = [&](const std::string& why) {
    if (why_not) *why_not = why;
    return false;
  };
  if (memory_ == CudaMemoryMode::Managed) return refuse("managed memory waits for the GPU after every op");
  if (s.recording) return refuse("a recording is already open");
  const cudaError_t status = cudaStreamBeginCapture(s.stream, cudaStreamCaptureModeRelaxed);
  if (status != cudaSuccess) {
    cudaGetLastError();
    return refuse(std::string("cudaStreamBeginCapture: ") + cudaGetErrorString(status));
  }
  s.recording = true;
  s.recorded_packs.clear();
  s.note_op();  // scratch packs made before the capture are not part of the graph
  return true;
}

std::unique_ptr<OpRecording> CudaBackend::end_recording(std::string* why_not) {
  CudaBackendState& s = *state_;
  auto refuse = [&](const char* what, cudaError_t status) -> std::unique_ptr<OpRecording> {
    cudaGetLastError();
    if (why_not) *why_not = std::string(what) + ": " + cudaGetErrorString(status);
    return nullptr;
  };
  if (!s.recording) {
    if (why_not) *why_not = "no recording is open";
    return nullptr;
  }
  s.recording = false;
  s.note_op();  // the captured packs never ran
  cudaGraph_t graph = nullptr;
  cudaError_t status = cudaStreamEndCapture(s.stream, &graph);
  if (status != cudaSuccess || !graph) return refuse("cudaStreamEndCapture", status);
  cudaGraphExec_t exec = nullptr;
  status = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (status != cudaSuccess) return refuse("cudaGraphInstantiate", status);
  std::vector<WeightPackKey> packs = std::move(s.recorded_packs);
  s.recorded_packs.clear();
  return std::make_unique<CudaRecording>(s, exec, std::move(packs));
}

void CudaBackend::finish_op(const char* op, const char* detail) {
  state_->note_op();
  check_launch(op);
  if (state_->op_times) state_->op_times->mark(op, detail);
  if (memory_ == CudaMemoryMode::Managed) state_->synchronize_and_report(op);
}

CudaGemmMode CudaBackend::supported_gemm_mode(CudaGemmMode requested) const {
  return requested == CudaGemmMode::Fp8E4m3 && compute_capability() < 89 ? CudaGemmMode::Bf16 : requested;
}

CudaAllocatorStats CudaBackend::allocator_stats() const { return state_->allocator.stats(); }
void CudaBackend::empty_cache() { state_->allocator.empty_cache(); }

int CudaBackend::compute_capability() const {
  return state_->properties.major * 10 + state_->properties.minor;
}

std::string CudaBackend::device_description() const {
  const cudaDeviceProp& p = state_->properties;
  char text[768];
  std::snprintf(text, sizeof text, "%s (sm_%d%d, %.0f GiB, %d SMs)", p.name, p.major, p.minor,
                static_cast<double>(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0), p.multiProcessorCount);
  return text;
}

bool cuda_device_present() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return count > 0;
}

CudaBackend* cuda_backend_if_present() {
  static CudaBackend* instance = []() -> CudaBackend* {
    if (!cuda_device_present()) return nullptr;
    if (const char* env = std::getenv("STRATA_CUDA_DISABLE"); env && std::string(env) == "1") return nullptr;
    // Deliberately leaked: kernels may still reference it during static destruction of other objects.
    CudaBackendOptions options;
    options.memory = CudaMemoryMode::Device;
    return new CudaBackend(options);
  }();
  return instance;
}

namespace {
// Load-time registration: every executable that links the CUDA objects lists the GPU backend.
const bool registered = []() {
  try {
    if (CudaBackend* backend = cuda_backend_if_present()) register_backend(backend);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "strata: CUDA backend unavailable: %s\n", error.what());
  }
  return true;
}();
}  // namespace

}  // namespace strata
