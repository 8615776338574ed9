// Hardware profiles the analytics estimate time on: dense peak FLOP/s per number format, memory
// bandwidth and capacity, and which formats the chip multiplies natively.
//
// Conventions:
// - Peaks are DENSE datasheet figures (no 2:4 sparsity), per GPU. H100 SXM and H200: BF16 989 and
//   FP8 1979 TFLOP/s (Hopper multiplies FP8 natively, not MXFP8 or NVFP4); HBM 3.35 TB/s (H100)
//   and 4.8 TB/s (H200). B200: the per-GPU share of the DGX B200 datasheet, BF16 2.25, FP8 and
//   MXFP8 4.5, NVFP4 9 PFLOP/s (Blackwell runs all three low-precision formats natively), HBM
//   8 TB/s, 180 GB.
// - `measured` holds figures measured on a real chip (H200: BF16 GEMM about 775 TFLOP/s, FP8
//   about 1415 TFLOP/s, copy about 4.3 TB/s), used when the caller asks for measured rates.
// - A format the chip does not multiply natively is emulated (quantize-dequantize, then a BF16
//   GEMM): it runs at the BF16 rate, while its weights are still read as stored (packed bytes).
// - `fp32` GEMMs and everything off the tensor cores (the depthwise conv) run at `vector_fp32`.
//   Attention score/value products and the SSD scan run on tensor cores at the BF16 rate.
// - The CPU profile is a nominal 8-core AVX2 desktop (8 cores x 3.5 GHz x 32 fp32 FLOP/cycle,
//   dual-channel DDR5-5600); the CPU engine computes in fp32, so every format runs at that rate.
//
// Not here: the estimates themselves (analytics/roofline.ts).
import type { PrecisionFormat } from './document.js';

export interface MeasuredRates {
  bf16: number;
  fp8: number;
  bandwidth: number;
  source: string;
}

export interface HardwareProfile {
  id: string;
  name: string;
  /** Device memory in bytes. */
  memory_bytes: number;
  /** Memory bandwidth in bytes/s (datasheet). */
  bandwidth: number;
  /** Dense FLOP/s of the formats the chip multiplies natively. */
  peak: Partial<Record<PrecisionFormat, number>>;
  /** Non-tensor-core fp32 FLOP/s. */
  vector_fp32: number;
  measured?: MeasuredRates;
  notes: string;
}

const T = 1e12;
const GB = 1e9;

export const HARDWARE: Record<string, HardwareProfile> = {
  h100: {
    id: 'h100',
    name: 'NVIDIA H100 SXM',
    memory_bytes: 80 * GB,
    bandwidth: 3.35e12,
    peak: { bf16: 989 * T, fp8_e4m3: 1979 * T, fp8_e5m2: 1979 * T },
    vector_fp32: 67 * T,
    notes: 'Hopper: FP8 native; MXFP8 and NVFP4 emulated at the BF16 rate.',
  },
  h200: {
    id: 'h200',
    name: 'NVIDIA H200',
    memory_bytes: 141 * GB,
    bandwidth: 4.8e12,
    peak: { bf16: 989 * T, fp8_e4m3: 1979 * T, fp8_e5m2: 1979 * T },
    vector_fp32: 67 * T,
    measured: { bf16: 775 * T, fp8: 1415 * T, bandwidth: 4.3e12, source: 'GEMM and copy measured on one H200' },
    notes: 'Hopper: FP8 native; MXFP8 and NVFP4 emulated at the BF16 rate.',
  },
  b200: {
    id: 'b200',
    name: 'NVIDIA B200',
    memory_bytes: 180 * GB,
    bandwidth: 8e12,
    peak: { bf16: 2250 * T, fp8_e4m3: 4500 * T, fp8_e5m2: 4500 * T, mxfp8: 4500 * T, nvfp4: 9000 * T },
    vector_fp32: 80 * T,
    notes: 'Blackwell: FP8, MXFP8 and NVFP4 native.',
  },
  cpu: {
    id: 'cpu',
    name: 'CPU (nominal 8-core AVX2 desktop)',
    memory_bytes: 64 * GB,
    bandwidth: 89.6 * GB,
    peak: { fp32: 0.896 * T },
    vector_fp32: 0.896 * T,
    notes: 'The CPU engine computes in fp32: every format runs at the fp32 rate (low-precision formats are emulated).',
  },
};

export const HARDWARE_IDS = Object.keys(HARDWARE);

export type RateSource = 'datasheet' | 'measured';

/** Looks a profile up by id (case-insensitive); throws a message listing the known ids. */
export function hardwareProfile(id: string): HardwareProfile {
  const profile = HARDWARE[id.toLowerCase()];
  if (!profile) throw new Error(`unknown hardware '${id}' (known: ${HARDWARE_IDS.join(', ')})`);
  return profile;
}

/** True when the chip multiplies `format` natively. */
export function isNative(profile: HardwareProfile, format: PrecisionFormat): boolean {
  return profile.peak[format] !== undefined;
}

/** The format a chip's fallback GEMM runs in: BF16 on GPUs, fp32 on the CPU. */
function fallbackRate(profile: HardwareProfile, source: RateSource): number {
  if (profile.peak.bf16 !== undefined) return source === 'measured' && profile.measured ? profile.measured.bf16 : profile.peak.bf16;
  return profile.vector_fp32;
}

/** GEMM FLOP/s for inputs in `format` (emulated formats at the fallback rate; fp32 at vector_fp32 on GPUs). */
export function gemmRate(profile: HardwareProfile, format: PrecisionFormat, source: RateSource = 'datasheet'): number {
  if (format === 'fp32') return profile.peak.fp32 ?? profile.vector_fp32;
  const native = profile.peak[format];
  if (native === undefined) return fallbackRate(profile, source);
  if (source === 'measured' && profile.measured) {
    if (format === 'bf16') return profile.measured.bf16;
    if (format === 'fp8_e4m3' || format === 'fp8_e5m2') return profile.measured.fp8;
  }
  return native;
}

/** Rate of the tensor-core work that is not a weight GEMM (attention products, SSD scan). */
export function matmulRate(profile: HardwareProfile, source: RateSource = 'datasheet'): number {
  return fallbackRate(profile, source);
}

export function bandwidth(profile: HardwareProfile, source: RateSource = 'datasheet'): number {
  return source === 'measured' && profile.measured ? profile.measured.bandwidth : profile.bandwidth;
}
