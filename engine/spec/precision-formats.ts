// Metadata of the precision formats a GEMM input can use (the document's PrecisionFormat): element
// type and bits, block size, scale format, storage cost per element including scale overhead, range,
// and whether each GPU generation multiplies the format natively or emulates it (quantize-dequantize
// then a higher-precision GEMM). Pure data and arithmetic; no Node, DOM or React.
//
// Facts: /work/shared/reference/formats.md. Hopper (H100/H200) multiplies FP8 natively but not MXFP8
// or NVFP4; Blackwell (B200/GB200) multiplies FP8, MXFP8 and NVFP4; Ampere has no FP8 at all. The CPU
// engine computes in fp32, so every lower format is emulated there.
//
// Not here: the quantizers (engine/native/src/ops/quant.h, mirrored in precision-quantize.ts), the
// policy that assigns formats to GEMMs (precision.ts) and the speed of each format (hardware.ts).
import { PRECISION_FORMATS, type PrecisionFormat } from './document.js';

export type ElementType = 'fp32' | 'bf16' | 'e4m3' | 'e5m2' | 'e2m1';
export type ScaleType = 'none' | 'fp32' | 'e8m0' | 'e4m3';

export interface FormatInfo {
  format: PrecisionFormat;
  title: string;
  /** Element type; MXFP8 lists its default (E4M3; E5M2 is a per-tensor option of the quantizer). */
  element: ElementType;
  elementBits: number;
  /** Elements that share one block scale along the reduction axis; null when there are no block scales. */
  blockSize: number | null;
  /** Block size of weights when they use 2D tiles (NVFP4: 16x16 = 256 elements share one scale). */
  weightTileElements: number | null;
  blockScale: ScaleType;
  blockScaleBits: number;
  /** One fp32 scale for the whole tensor (FP8 current scaling, NVFP4 second-level scale). */
  tensorScale: boolean;
  /** Largest finite element magnitude (before scaling). */
  maxFinite: number;
  /** Smallest positive element magnitude (subnormal where the format has them). */
  minPositive: number;
  /** Mantissa bits of the element (relative precision about 2^-(bits+1)). */
  mantissaBits: number;
  summary: string;
}

export const FORMAT_INFO: Record<PrecisionFormat, FormatInfo> = {
  fp32: {
    format: 'fp32',
    title: 'FP32',
    element: 'fp32',
    elementBits: 32,
    blockSize: null,
    weightTileElements: null,
    blockScale: 'none',
    blockScaleBits: 0,
    tensorScale: false,
    maxFinite: 3.4028234663852886e38,
    minPositive: 1.401298464324817e-45,
    mantissaBits: 23,
    summary: 'IEEE single precision: the reference, no quantization.',
  },
  bf16: {
    format: 'bf16',
    title: 'BF16',
    element: 'bf16',
    elementBits: 16,
    blockSize: null,
    weightTileElements: null,
    blockScale: 'none',
    blockScaleBits: 0,
    tensorScale: false,
    maxFinite: 3.3895313892515355e38,
    minPositive: 9.183549615799121e-41,
    mantissaBits: 7,
    summary: 'Top 16 bits of fp32, round to nearest even: fp32 range, 8 significant bits.',
  },
  fp8_e4m3: {
    format: 'fp8_e4m3',
    title: 'FP8 E4M3',
    element: 'e4m3',
    elementBits: 8,
    blockSize: null,
    weightTileElements: null,
    blockScale: 'none',
    blockScaleBits: 0,
    tensorScale: true,
    maxFinite: 448,
    minPositive: 2 ** -9,
    mantissaBits: 3,
    summary: 'OCP FP8 E4M3 (max 448, NaN, no Inf) with one fp32 current scale per tensor (448 / amax).',
  },
  fp8_e5m2: {
    format: 'fp8_e5m2',
    title: 'FP8 E5M2',
    element: 'e5m2',
    elementBits: 8,
    blockSize: null,
    weightTileElements: null,
    blockScale: 'none',
    blockScaleBits: 0,
    tensorScale: true,
    maxFinite: 57344,
    minPositive: 2 ** -16,
    mantissaBits: 2,
    summary: 'OCP FP8 E5M2 (max 57344, Inf and NaN) with one fp32 current scale per tensor; used for gradients.',
  },
  mxfp8: {
    format: 'mxfp8',
    title: 'MXFP8',
    element: 'e4m3',
    elementBits: 8,
    blockSize: 32,
    weightTileElements: null,
    blockScale: 'e8m0',
    blockScaleBits: 8,
    tensorScale: false,
    maxFinite: 448,
    minPositive: 2 ** -9,
    mantissaBits: 3,
    summary: 'OCP MX: 32 consecutive E4M3 elements share a power-of-two E8M0 scale (rounded up, as TransformerEngine).',
  },
  nvfp4: {
    format: 'nvfp4',
    title: 'NVFP4',
    element: 'e2m1',
    elementBits: 4,
    blockSize: 16,
    weightTileElements: 256,
    blockScale: 'e4m3',
    blockScaleBits: 8,
    tensorScale: true,
    maxFinite: 6,
    minPositive: 0.5,
    mantissaBits: 1,
    summary:
      'E2M1 elements {0, 0.5, 1, 1.5, 2, 3, 4, 6}; one E4M3 scale per 16 elements (16x16 tiles for weights) plus an fp32 tensor scale.',
  },
};

/** Block-scale bits per element (the per-tensor fp32 scale is negligible and not included). */
export function scaleOverheadBits(format: PrecisionFormat, options: { weight2d?: boolean } = {}): number {
  const info = FORMAT_INFO[format];
  if (info.blockSize === null) return 0;
  const elementsPerScale = options.weight2d && info.weightTileElements !== null ? info.weightTileElements : info.blockSize;
  return info.blockScaleBits / elementsPerScale;
}

/** Storage bits per element including block scales: NVFP4 4.5 (1x16) or 4.03125 (16x16), MXFP8 8.25. */
export function bitsPerElement(format: PrecisionFormat, options: { weight2d?: boolean } = {}): number {
  return FORMAT_INFO[format].elementBits + scaleOverheadBits(format, options);
}

/** Bytes to store `elements` values in `format`, block scales included, per-tensor scale excluded. */
export function storageBytes(format: PrecisionFormat, elements: number, options: { weight2d?: boolean } = {}): number {
  return (elements * bitsPerElement(format, options)) / 8;
}

// ---------------------------------------------------------------------------------------------
// Native support
// ---------------------------------------------------------------------------------------------

export const COMPUTE_TARGETS = ['cpu', 'ampere', 'hopper', 'blackwell'] as const;
export type ComputeTarget = (typeof COMPUTE_TARGETS)[number];
export type FormatSupport = 'native' | 'emulated';

const NATIVE_FORMATS: Record<ComputeTarget, readonly PrecisionFormat[]> = {
  cpu: ['fp32'],
  ampere: ['fp32', 'bf16'],
  hopper: ['fp32', 'bf16', 'fp8_e4m3', 'fp8_e5m2'],
  blackwell: ['fp32', 'bf16', 'fp8_e4m3', 'fp8_e5m2', 'mxfp8', 'nvfp4'],
};

/** Whether `target` multiplies `format` natively; otherwise the engine fake-quantizes (emulates) it. */
export function formatSupport(format: PrecisionFormat, target: ComputeTarget): FormatSupport {
  return NATIVE_FORMATS[target].includes(format) ? 'native' : 'emulated';
}

/** The generation of a hardware profile id of hardware.ts (h100, h200 -> hopper; b200 -> blackwell). */
export function computeTargetOf(hardwareId: string): ComputeTarget {
  const id = hardwareId.toLowerCase();
  if (id === 'cpu') return 'cpu';
  if (/^(a100|a10|a30|a40|rtx30)/.test(id)) return 'ampere';
  if (/^(h100|h200|h20|h800|gh200)/.test(id)) return 'hopper';
  if (/^(b100|b200|b300|gb200|gb300|rtx50)/.test(id)) return 'blackwell';
  throw new Error(`unknown hardware '${hardwareId}': cannot tell its GPU generation`);
}

/** Formats the target emulates, in document order (for the UI's "emulated on this GPU" notes). */
export function emulatedFormats(target: ComputeTarget): PrecisionFormat[] {
  return PRECISION_FORMATS.filter((f) => formatSupport(f, target) === 'emulated');
}
