// TypeScript mirror of the native quantizers (engine/native/src/ops/quant*.h) for the UI's
// inspection preview: BF16, FP8 E4M3/E5M2 with tensor scaling, MXFP8 (round-up or OCP scale rule),
// NVFP4 (1x16 or 16x16 blocks, 16-point random Hadamard transform, stochastic rounding) and the same
// statistics (amax, scale statistics, relative error, SNR, underflow, clipped, log2 histogram).
// Every fp32 step of the C++ is reproduced with Math.fround in the same order, so codes and values
// are bit-identical to the engine's (checked against tests/fixtures/quant-vectors.json).
//
// Stated behaviour (same as the C++): NaN propagates; Inf stays Inf in BF16/E5M2, becomes NaN in
// E4M3; an NVFP4 block containing NaN or Inf decodes to NaN entirely; finite overflow saturates;
// zeros keep their sign; amax and scales use finite values only.
//
// This is a preview tool, single-threaded and unoptimized; the engine's training never runs it. It is
// not format metadata (precision-formats.ts) and not policy resolution (precision.ts).
import type { PrecisionFormat } from './document.js';

export type ElementFormat = 'e4m3' | 'e5m2' | 'e2m1';
export type Rounding = 'nearest_even' | 'stochastic';
export type MxScaleRule = 'round_up' | 'ocp';
export type BlockLayout = 'row' | 'column' | 'tile2d';
export type HadamardAxis = 'row' | 'column';

interface MinifloatSpec {
  exponentBits: number;
  mantissaBits: number;
  bias: number;
  maxFinite: number;
  hasInf: boolean;
  hasNan: boolean;
}

const SPECS: Record<ElementFormat, MinifloatSpec> = {
  e4m3: { exponentBits: 4, mantissaBits: 3, bias: 7, maxFinite: 448, hasInf: false, hasNan: true },
  e5m2: { exponentBits: 5, mantissaBits: 2, bias: 15, maxFinite: 57344, hasInf: true, hasNan: true },
  e2m1: { exponentBits: 2, mantissaBits: 1, bias: 1, maxFinite: 6, hasInf: false, hasNan: false },
};

const FLT_MAX = 3.4028234663852886e38;
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const f64 = new Float64Array(1);
const u32of64 = new Uint32Array(f64.buffer); // little-endian: [low, high]

/** fp32 bit pattern of a number (rounded to fp32 first). */
export function floatBits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

/** The fp32 value of a bit pattern. */
export function floatFromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0]!;
}

/** 2^k exactly, for any integer k an fp32 computation can need. */
function pow2(k: number): number {
  if (k < -1022) return pow2(k + 200) * pow2(-200);
  if (k > 1023) return pow2(k - 200) * pow2(200);
  u32of64[0] = 0;
  u32of64[1] = (k + 1023) << 20;
  return f64[0]!;
}

/** floor(log2(a)) for finite a > 0, exactly (from the double's exponent bits). */
function floorLog2(a: number): number {
  f64[0] = a;
  const biased = (u32of64[1]! >>> 20) & 0x7ff;
  if (biased === 0) return floorLog2(a * pow2(200)) - 200; // double subnormal
  return biased - 1023;
}

function signBit(x: number): boolean {
  return x < 0 || Object.is(x, -0) || (Number.isNaN(x) && floatBits(x) >>> 31 === 1);
}

// ---------------------------------------------------------------------------------------------
// Scalar codecs
// ---------------------------------------------------------------------------------------------

export function bf16Encode(x: number): number {
  const bits = floatBits(x);
  if (Number.isNaN(x)) {
    let high = bits >>> 16;
    if ((high & 0x7f) === 0) high |= 0x40;
    return high;
  }
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16Decode(code: number): number {
  return floatFromBits((code & 0xffff) << 16);
}

export function bf16Round(x: number): number {
  return bf16Decode(bf16Encode(x));
}

function roundMagnitudeUnbounded(a: number, spec: MinifloatSpec, rounding: Rounding, randomBits: number): number {
  if (a === 0) return 0;
  const minNormalExponent = 1 - spec.bias;
  const exponent = Math.max(floorLog2(a), minNormalExponent);
  const ulp = pow2(exponent - spec.mantissaBits);
  const steps = a / ulp;
  const lower = Math.floor(steps);
  const fraction = steps - lower;
  let chosen = lower;
  if (rounding === 'nearest_even') {
    if (fraction > 0.5 || (fraction === 0.5 && lower % 2 !== 0)) chosen = lower + 1;
  } else if (randomBits < fraction * 4294967296) {
    chosen = lower + 1;
  }
  return chosen * ulp;
}

function magnitudeCode(magnitude: number, spec: MinifloatSpec): number {
  if (magnitude === 0) return 0;
  const minNormalExponent = 1 - spec.bias;
  const exponent = floorLog2(magnitude);
  if (exponent < minNormalExponent) return magnitude / pow2(minNormalExponent - spec.mantissaBits);
  const mantissa = (magnitude / pow2(exponent) - 1) * pow2(spec.mantissaBits);
  return ((exponent + spec.bias) << spec.mantissaBits) | mantissa;
}

function allOnesExponent(spec: MinifloatSpec): number {
  return (1 << spec.exponentBits) - 1;
}

function nanCode(spec: MinifloatSpec, negative: boolean, nanBits: number): number {
  const sign = negative ? 1 << (spec.exponentBits + spec.mantissaBits) : 0;
  const exponentField = allOnesExponent(spec) << spec.mantissaBits;
  const mantissaMask = (1 << spec.mantissaBits) - 1;
  if (!spec.hasInf) return sign | exponentField | mantissaMask;
  const payload = nanBits & mantissaMask;
  return sign | exponentField | (payload === 0 ? mantissaMask : payload);
}

/** Code of x (rounded to fp32 first, like the C++ float parameter) in an element format. */
export function encodeElement(x: number, format: ElementFormat, rounding: Rounding = 'nearest_even', randomBits = 0): number {
  const spec = SPECS[format];
  const value = Math.fround(x);
  const negative = signBit(value);
  const sign = negative ? 1 << (spec.exponentBits + spec.mantissaBits) : 0;
  if (Number.isNaN(value)) return spec.hasNan ? nanCode(spec, negative, floatBits(value)) : 0;
  if (!Number.isFinite(value)) {
    if (spec.hasInf) return sign | (allOnesExponent(spec) << spec.mantissaBits);
    if (spec.hasNan) return nanCode(spec, negative, 0);
    return sign | magnitudeCode(spec.maxFinite, spec);
  }
  const rounded = Math.min(roundMagnitudeUnbounded(Math.abs(value), spec, rounding, randomBits), spec.maxFinite);
  return sign | magnitudeCode(rounded, spec);
}

export function decodeElement(code: number, format: ElementFormat): number {
  const spec = SPECS[format];
  const negative = ((code >> (spec.exponentBits + spec.mantissaBits)) & 1) !== 0;
  const mantissaMask = (1 << spec.mantissaBits) - 1;
  const mantissa = code & mantissaMask;
  const exponentField = (code >> spec.mantissaBits) & allOnesExponent(spec);
  if (exponentField === allOnesExponent(spec)) {
    if (spec.hasInf) return mantissa === 0 ? (negative ? -Infinity : Infinity) : NaN;
    if (spec.hasNan && mantissa === mantissaMask) return NaN;
  }
  const magnitude =
    exponentField === 0
      ? mantissa * pow2(1 - spec.bias - spec.mantissaBits)
      : (1 + mantissa * pow2(-spec.mantissaBits)) * pow2(exponentField - spec.bias);
  return negative ? -magnitude : magnitude;
}

export function roundElement(x: number, format: ElementFormat, rounding: Rounding = 'nearest_even', randomBits = 0): number {
  return decodeElement(encodeElement(x, format, rounding, randomBits), format);
}

/** True when nearest-even rounding of finite x would leave the element range (what "clipped" counts). */
export function saturates(x: number, format: ElementFormat): boolean {
  const value = Math.fround(x);
  if (!Number.isFinite(value)) return false;
  const spec = SPECS[format];
  return roundMagnitudeUnbounded(Math.abs(value), spec, 'nearest_even', 0) > spec.maxFinite;
}

export function e8m0FromExponent(exponent: number): number {
  return Math.min(Math.max(exponent, -127), 127) + 127;
}

export function e8m0Decode(code: number): number {
  return code === 0xff ? NaN : Math.fround(pow2(code - 127));
}

// ---------------------------------------------------------------------------------------------
// Counter-based random numbers and the Hadamard transform
// ---------------------------------------------------------------------------------------------

const MASK64 = (1n << 64n) - 1n;

/** SplitMix64 output of seed + (counter + 1) * golden ratio (same bits as counter_random64). */
export function counterRandom64(seed: bigint, counter: bigint): bigint {
  let z = (seed + (counter + 1n) * 0x9e3779b97f4a7c15n) & MASK64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

export function counterRandom32(seed: bigint, counter: bigint): number {
  return Number(counterRandom64(seed, counter) >> 32n);
}

export const HADAMARD_SIZE = 16;
export const DEFAULT_HADAMARD_SEED = 0x5354524154413136n; // "STRATA16"

export function hadamardSigns(seed: bigint = DEFAULT_HADAMARD_SEED): number[] {
  return Array.from({ length: HADAMARD_SIZE }, (_, i) => (counterRandom64(seed, BigInt(i)) >> 63n ? -1 : 1));
}

function walshHadamard16(v: Float32Array): void {
  for (let half = 1; half < HADAMARD_SIZE; half *= 2) {
    for (let start = 0; start < HADAMARD_SIZE; start += 2 * half) {
      for (let i = start; i < start + half; i++) {
        const a = v[i]!;
        const b = v[i + half]!;
        v[i] = a + b;
        v[i + half] = a - b;
      }
    }
  }
}

function transformRun(v: Float32Array, signs: readonly number[], inverse: boolean): void {
  if (inverse) {
    for (let i = 0; i < HADAMARD_SIZE; i++) v[i] = v[i]! * signs[i]!;
    walshHadamard16(v);
    for (let i = 0; i < HADAMARD_SIZE; i++) v[i] = v[i]! * 0.25;
  } else {
    walshHadamard16(v);
    for (let i = 0; i < HADAMARD_SIZE; i++) v[i] = Math.fround(v[i]! * signs[i]!) * 0.25;
  }
}

/** In place: H (or H^T) on every complete run of 16 along `axis` of a row-major [rows, cols] matrix. */
export function hadamard16Apply(
  data: Float32Array,
  rows: number,
  cols: number,
  axis: HadamardAxis,
  signs: readonly number[] = hadamardSigns(),
  inverse = false,
): void {
  const run = new Float32Array(HADAMARD_SIZE);
  if (axis === 'row') {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c + HADAMARD_SIZE <= cols; c += HADAMARD_SIZE) {
        const view = data.subarray(r * cols + c, r * cols + c + HADAMARD_SIZE);
        transformRun(view, signs, inverse);
      }
    }
    return;
  }
  for (let r0 = 0; r0 + HADAMARD_SIZE <= rows; r0 += HADAMARD_SIZE) {
    for (let c = 0; c < cols; c++) {
      for (let i = 0; i < HADAMARD_SIZE; i++) run[i] = data[(r0 + i) * cols + c]!;
      transformRun(run, signs, inverse);
      for (let i = 0; i < HADAMARD_SIZE; i++) data[(r0 + i) * cols + c] = run[i]!;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Tensor quantization
// ---------------------------------------------------------------------------------------------

export interface QuantConfig {
  format: PrecisionFormat;
  mxElement?: 'e4m3' | 'e5m2';
  mxScaleRule?: MxScaleRule;
  layout?: BlockLayout;
  rounding?: Rounding;
  seed?: bigint;
  hadamard?: boolean;
  hadamardSeed?: bigint;
}

export const HISTOGRAM_MIN_EXPONENT = -48;
export const HISTOGRAM_BINS = 64;

/** Inspection statistics; same names and meaning as the engine's `precision` events. */
export interface QuantStats {
  elements: number;
  nonfinite: number;
  nonzero: number;
  underflow: number;
  clipped: number;
  amax: number;
  scale_blocks: number;
  zero_scale_blocks: number;
  scale_min: number;
  scale_max: number;
  scale_mean: number;
  /** ||x - q|| / ||x||. */
  rel_err: number;
  /** 10 log10(signal / error); Infinity when the error is zero. */
  snr_db: number;
  histogram_zeros: number;
  /** Counts of floor(log2|x|), bin 0 = 2^HISTOGRAM_MIN_EXPONENT, clamped at both ends. */
  log2_histogram: number[];
  /** Sum of x^2 and of (x - q)^2 over finite inputs with finite outputs (to merge statistics). */
  signal_energy: number;
  error_energy: number;
}

export interface Encoded {
  elements: Uint8Array;
  blockScales: Uint8Array;
  scaleRows: number;
  scaleCols: number;
  tensorScale: number;
}

export interface QuantResult {
  /** Q(x) (with the Hadamard transform: H^T Q(H x)). */
  output: Float32Array;
  stats: QuantStats;
  /** Stored codes and scales (FP8 / MXFP8 / NVFP4). */
  encoded: Encoded | null;
}

interface Resolved {
  format: PrecisionFormat;
  element: ElementFormat;
  mxScaleRule: MxScaleRule;
  layout: BlockLayout;
  rounding: Rounding;
  seed: bigint;
  hadamard: boolean;
  hadamardSeed: bigint;
  blockRows: number;
  blockCols: number;
}

function resolveConfig(config: QuantConfig): Resolved {
  const { format } = config;
  const layout = config.layout ?? 'row';
  const rounding = config.rounding ?? 'nearest_even';
  const hadamard = config.hadamard ?? false;
  const blockFormat = format === 'mxfp8' || format === 'nvfp4';
  if (layout === 'tile2d' && format !== 'nvfp4') throw new Error(`quantize ${format}: 16x16 tiles exist only for nvfp4`);
  if (hadamard && (format !== 'nvfp4' || layout === 'tile2d'))
    throw new Error(`quantize ${format}: the Hadamard transform applies only to nvfp4 with 1x16 blocks`);
  if (rounding === 'stochastic' && (format === 'fp32' || format === 'bf16'))
    throw new Error(`quantize ${format}: stochastic rounding is defined for fp8, mxfp8 and nvfp4 elements only`);
  const element: ElementFormat =
    format === 'fp8_e5m2' ? 'e5m2' : format === 'nvfp4' ? 'e2m1' : format === 'mxfp8' ? (config.mxElement ?? 'e4m3') : 'e4m3';
  const size = format === 'mxfp8' ? 32 : 16;
  const whole = Number.MAX_SAFE_INTEGER;
  const [blockRows, blockCols] = !blockFormat
    ? [whole, whole]
    : layout === 'row'
      ? [1, size]
      : layout === 'column'
        ? [size, 1]
        : [size, size];
  return {
    format,
    element,
    mxScaleRule: config.mxScaleRule ?? 'round_up',
    layout: blockFormat ? layout : 'row',
    rounding,
    seed: config.seed ?? 0n,
    hadamard,
    hadamardSeed: config.hadamardSeed ?? DEFAULT_HADAMARD_SEED,
    blockRows,
    blockCols,
  };
}

type BlockFn = (block: number, r0: number, c0: number, nr: number, nc: number) => void;

function forEachBlock(rows: number, cols: number, blockRows: number, blockCols: number, fn: BlockFn): void {
  let block = 0;
  for (let r0 = 0; r0 < rows; r0 += blockRows) {
    for (let c0 = 0; c0 < cols; c0 += blockCols) fn(block++, r0, c0, Math.min(blockRows, rows - r0), Math.min(blockCols, cols - c0));
  }
}

function finiteAmax(x: Float32Array, cols: number, r0: number, c0: number, nr: number, nc: number): { amax: number; nonfinite: boolean } {
  let amax = 0;
  let nonfinite = false;
  for (let r = r0; r < r0 + nr; r++) {
    for (let c = c0; c < c0 + nc; c++) {
      const v = x[r * cols + c]!;
      if (!Number.isFinite(v)) nonfinite = true;
      else amax = Math.max(amax, Math.abs(v));
    }
  }
  return { amax, nonfinite };
}

function mxBlockExponent(amax: number, element: ElementFormat, rule: MxScaleRule): number {
  if (amax === 0) return 0;
  const elementMax = SPECS[element].maxFinite;
  if (rule === 'ocp') return floorLog2(amax) - floorLog2(elementMax);
  const ratio = amax / elementMax;
  let exponent = floorLog2(ratio);
  if (ratio > pow2(exponent)) exponent++;
  return exponent;
}

interface BlockScaling {
  factor: number;
  mxPower: number;
  decodeScale: number;
  nanBlock: boolean;
  zeroBlock: boolean;
}

function scalingOfBlock(r: Resolved, enc: Encoded, block: number): BlockScaling {
  const s: BlockScaling = { factor: 1, mxPower: 1, decodeScale: 1, nanBlock: false, zeroBlock: false };
  if (r.format === 'fp8_e4m3' || r.format === 'fp8_e5m2') {
    s.factor = enc.tensorScale;
    s.decodeScale = Math.fround(1 / enc.tensorScale);
  } else if (r.format === 'mxfp8') {
    const exponent = enc.blockScales[block]! - 127;
    s.factor = Math.fround(pow2(-exponent));
    s.mxPower = Math.fround(pow2(exponent));
    s.decodeScale = s.mxPower;
  } else if (r.format === 'nvfp4') {
    const stored = decodeElement(enc.blockScales[block]!, 'e4m3');
    s.nanBlock = Number.isNaN(stored);
    s.factor = Math.fround(stored / enc.tensorScale);
    s.decodeScale = s.factor;
    s.zeroBlock = !s.nanBlock && s.factor === 0;
  }
  return s;
}

function scaleIntoElement(x: number, format: PrecisionFormat, factor: number): number {
  return Math.fround(format === 'nvfp4' ? x / factor : x * factor);
}

function scaleFromElement(element: number, format: PrecisionFormat, s: BlockScaling): number {
  if (format === 'fp8_e4m3' || format === 'fp8_e5m2') return Math.fround(element / s.factor);
  if (format === 'mxfp8') return Math.fround(element * s.mxPower);
  return Math.fround(element * s.factor);
}

function encodeBlocks(x: Float32Array, rows: number, cols: number, r: Resolved): Encoded {
  const scaleRows = rows === 0 ? 0 : Math.ceil(rows / r.blockRows);
  const scaleCols = cols === 0 ? 0 : Math.ceil(cols / r.blockCols);
  const enc: Encoded = { elements: new Uint8Array(rows * cols), blockScales: new Uint8Array(0), scaleRows, scaleCols, tensorScale: 1 };
  const tensorAmax = finiteAmax(x, cols, 0, 0, rows, cols).amax;
  if (r.format === 'fp8_e4m3' || r.format === 'fp8_e5m2') {
    let scale = tensorAmax > 0 ? Math.fround(SPECS[r.element].maxFinite / tensorAmax) : 1;
    if (!Number.isFinite(scale)) scale = FLT_MAX;
    enc.tensorScale = scale;
  } else {
    enc.blockScales = new Uint8Array(scaleRows * scaleCols);
    if (r.format === 'mxfp8') {
      forEachBlock(rows, cols, r.blockRows, r.blockCols, (b, r0, c0, nr, nc) => {
        enc.blockScales[b] = e8m0FromExponent(mxBlockExponent(finiteAmax(x, cols, r0, c0, nr, nc).amax, r.element, r.mxScaleRule));
      });
    } else {
      let globalScale = tensorAmax > 0 ? Math.fround(2688 / tensorAmax) : 1;
      if (!Number.isFinite(globalScale)) globalScale = FLT_MAX;
      enc.tensorScale = globalScale;
      forEachBlock(rows, cols, r.blockRows, r.blockCols, (b, r0, c0, nr, nc) => {
        const { amax, nonfinite } = finiteAmax(x, cols, r0, c0, nr, nc);
        enc.blockScales[b] = nonfinite ? 0x7f : encodeElement(Math.fround(Math.fround(amax / 6) * globalScale), 'e4m3');
      });
    }
  }
  const signBitOfElement = r.element === 'e2m1' ? 0x08 : 0x80;
  forEachBlock(rows, cols, r.blockRows, r.blockCols, (b, r0, c0, nr, nc) => {
    const s = scalingOfBlock(r, enc, b);
    for (let row = r0; row < r0 + nr; row++) {
      for (let c = c0; c < c0 + nc; c++) {
        const i = row * cols + c;
        if (s.nanBlock) continue;
        if (s.zeroBlock) {
          enc.elements[i] = signBit(x[i]!) ? signBitOfElement : 0;
          continue;
        }
        const randomBits = r.rounding === 'stochastic' ? counterRandom32(r.seed, BigInt(i)) : 0;
        enc.elements[i] = encodeElement(scaleIntoElement(x[i]!, r.format, s.factor), r.element, r.rounding, randomBits);
      }
    }
  });
  return enc;
}

function decodeBlocks(enc: Encoded, rows: number, cols: number, r: Resolved, out: Float32Array): void {
  forEachBlock(rows, cols, r.blockRows, r.blockCols, (b, r0, c0, nr, nc) => {
    const s = scalingOfBlock(r, enc, b);
    for (let row = r0; row < r0 + nr; row++) {
      for (let c = c0; c < c0 + nc; c++) {
        const i = row * cols + c;
        out[i] = s.nanBlock ? NaN : scaleFromElement(decodeElement(enc.elements[i]!, r.element), r.format, s);
      }
    }
  });
}

class StatsAccumulator {
  elements = 0;
  nonfinite = 0;
  nonzero = 0;
  underflow = 0;
  clipped = 0;
  amax = 0;
  scaleBlocks = 0;
  zeroScaleBlocks = 0;
  scaleMin = 0;
  scaleMax = 0;
  scaleSum = 0;
  signal = 0;
  error = 0;
  histogramZeros = 0;
  histogram = new Array<number>(HISTOGRAM_BINS).fill(0);

  addScale(decodeScale: number, storedZero: boolean): void {
    this.scaleMin = this.scaleBlocks === 0 ? decodeScale : Math.min(this.scaleMin, decodeScale);
    this.scaleMax = this.scaleBlocks === 0 ? decodeScale : Math.max(this.scaleMax, decodeScale);
    this.scaleSum += decodeScale;
    this.scaleBlocks++;
    if (storedZero) this.zeroScaleBlocks++;
  }

  addElement(x: number, q: number, clipped: boolean): void {
    this.elements++;
    if (!Number.isFinite(x)) {
      this.nonfinite++;
      return;
    }
    this.amax = Math.max(this.amax, Math.abs(x));
    if (clipped) this.clipped++;
    if (x === 0) {
      this.histogramZeros++;
    } else {
      this.nonzero++;
      if (q === 0) this.underflow++;
      const bin = Math.min(Math.max(floorLog2(Math.abs(x)) - HISTOGRAM_MIN_EXPONENT, 0), HISTOGRAM_BINS - 1);
      this.histogram[bin]!++;
    }
    if (Number.isFinite(q)) {
      const e = x - q;
      this.signal += x * x;
      this.error += e * e;
    }
  }

  finish(): QuantStats {
    return {
      elements: this.elements,
      nonfinite: this.nonfinite,
      nonzero: this.nonzero,
      underflow: this.underflow,
      clipped: this.clipped,
      amax: this.amax,
      scale_blocks: this.scaleBlocks,
      zero_scale_blocks: this.zeroScaleBlocks,
      scale_min: this.scaleMin,
      scale_max: this.scaleMax,
      scale_mean: this.scaleBlocks > 0 ? this.scaleSum / this.scaleBlocks : 0,
      rel_err: this.signal > 0 ? Math.sqrt(this.error / this.signal) : 0,
      snr_db: this.error === 0 ? Infinity : 10 * Math.log10(this.signal / this.error),
      histogram_zeros: this.histogramZeros,
      log2_histogram: this.histogram,
      signal_energy: this.signal,
      error_energy: this.error,
    };
  }
}

function measure(x: Float32Array, q: Float32Array, rows: number, cols: number, r: Resolved, enc: Encoded | null): QuantStats {
  const acc = new StatsAccumulator();
  if (!enc) {
    for (let i = 0; i < rows * cols; i++) acc.addElement(x[i]!, q[i]!, Number.isFinite(x[i]!) && !Number.isFinite(q[i]!) && !Number.isNaN(q[i]!));
    return acc.finish();
  }
  forEachBlock(rows, cols, r.blockRows, r.blockCols, (b, r0, c0, nr, nc) => {
    const s = scalingOfBlock(r, enc, b);
    if (finiteAmax(x, cols, r0, c0, nr, nc).amax > 0 && !s.nanBlock) acc.addScale(s.decodeScale, s.zeroBlock);
    for (let row = r0; row < r0 + nr; row++) {
      for (let c = c0; c < c0 + nc; c++) {
        const i = row * cols + c;
        const v = x[i]!;
        const clipped = Number.isFinite(v) && !s.nanBlock && !s.zeroBlock && saturates(scaleIntoElement(v, r.format, s.factor), r.element);
        acc.addElement(v, q[i]!, clipped);
      }
    }
  });
  return acc.finish();
}

/**
 * Quantize-dequantize a row-major [rows, cols] fp32 tensor with the engine's formulas; returns the
 * values, the statistics and (for FP8 / MXFP8 / NVFP4) the stored codes and scales.
 */
export function fakeQuantize(input: Float32Array, rows: number, cols: number, config: QuantConfig): QuantResult {
  if (input.length !== rows * cols) throw new Error(`quantize ${config.format}: ${input.length} values for shape [${rows}, ${cols}]`);
  const r = resolveConfig(config);
  if (r.format === 'fp32' || r.format === 'bf16') {
    const output = r.format === 'bf16' ? input.map(bf16Round) : input.slice();
    return { output, stats: measure(input, output, rows, cols, r, null), encoded: null };
  }
  const signs = r.hadamard ? hadamardSigns(r.hadamardSeed) : [];
  const axis: HadamardAxis = r.layout === 'column' ? 'column' : 'row';
  const x = input.slice();
  if (r.hadamard) hadamard16Apply(x, rows, cols, axis, signs);
  const encoded = encodeBlocks(x, rows, cols, r);
  const output = new Float32Array(rows * cols);
  decodeBlocks(encoded, rows, cols, r, output);
  const stats = measure(x, output, rows, cols, r, encoded);
  if (r.hadamard) hadamard16Apply(output, rows, cols, axis, signs, true);
  return { output, stats, encoded };
}

/** The statistics of several quantizations seen as one (same rules as the engine's `accumulate`). */
export function mergeStats(a: QuantStats, b: QuantStats): QuantStats {
  const blocks = a.scale_blocks + b.scale_blocks;
  const signal = a.signal_energy + b.signal_energy;
  const error = a.error_energy + b.error_energy;
  return {
    elements: a.elements + b.elements,
    nonfinite: a.nonfinite + b.nonfinite,
    nonzero: a.nonzero + b.nonzero,
    underflow: a.underflow + b.underflow,
    clipped: a.clipped + b.clipped,
    amax: Math.max(a.amax, b.amax),
    scale_blocks: blocks,
    zero_scale_blocks: a.zero_scale_blocks + b.zero_scale_blocks,
    scale_min: a.scale_blocks === 0 ? b.scale_min : b.scale_blocks === 0 ? a.scale_min : Math.min(a.scale_min, b.scale_min),
    scale_max: a.scale_blocks === 0 ? b.scale_max : b.scale_blocks === 0 ? a.scale_max : Math.max(a.scale_max, b.scale_max),
    scale_mean: blocks > 0 ? (a.scale_mean * a.scale_blocks + b.scale_mean * b.scale_blocks) / blocks : 0,
    rel_err: signal > 0 ? Math.sqrt(error / signal) : 0,
    snr_db: error === 0 ? Infinity : 10 * Math.log10(signal / error),
    histogram_zeros: a.histogram_zeros + b.histogram_zeros,
    log2_histogram: a.log2_histogram.map((count, i) => count + b.log2_histogram[i]!),
    signal_energy: signal,
    error_energy: error,
  };
}
