// Tests of the format metadata (precision-formats.ts): storage cost with scale overhead, ranges
// cross-checked against the quantizer mirror's codecs, and native-vs-emulated support per GPU
// generation cross-checked against the hardware profiles the analytics use.
import { describe, expect, it } from 'vitest';
import { PRECISION_FORMATS } from './document.js';
import { HARDWARE, isNative } from './hardware.js';
import {
  FORMAT_INFO,
  bitsPerElement,
  computeTargetOf,
  emulatedFormats,
  formatSupport,
  scaleOverheadBits,
  storageBytes,
} from './precision-formats.js';
import { bf16Decode, decodeElement } from './precision-quantize.js';

describe('storage cost', () => {
  it('counts block scales per element', () => {
    expect(bitsPerElement('fp32')).toBe(32);
    expect(bitsPerElement('bf16')).toBe(16);
    expect(bitsPerElement('fp8_e4m3')).toBe(8);
    expect(bitsPerElement('mxfp8')).toBe(8.25);
    expect(bitsPerElement('nvfp4')).toBe(4.5);
    expect(bitsPerElement('nvfp4', { weight2d: true })).toBe(4.03125);
    expect(scaleOverheadBits('mxfp8', { weight2d: true })).toBe(0.25); // MXFP8 has no 2D tiles
    expect(storageBytes('nvfp4', 4096 * 4096)).toBe(4096 * 4096 * 0.5625);
  });
});

describe('ranges agree with the codecs', () => {
  it('largest finite and smallest positive values', () => {
    expect(FORMAT_INFO.fp8_e4m3.maxFinite).toBe(decodeElement(0x7e, 'e4m3'));
    expect(FORMAT_INFO.fp8_e4m3.minPositive).toBe(decodeElement(0x01, 'e4m3'));
    expect(FORMAT_INFO.fp8_e5m2.maxFinite).toBe(decodeElement(0x7b, 'e5m2'));
    expect(FORMAT_INFO.fp8_e5m2.minPositive).toBe(decodeElement(0x01, 'e5m2'));
    expect(FORMAT_INFO.nvfp4.maxFinite).toBe(decodeElement(0x7, 'e2m1'));
    expect(FORMAT_INFO.nvfp4.minPositive).toBe(decodeElement(0x1, 'e2m1'));
    expect(FORMAT_INFO.bf16.maxFinite).toBe(bf16Decode(0x7f7f));
    expect(FORMAT_INFO.bf16.minPositive).toBe(bf16Decode(0x0001));
    expect(FORMAT_INFO.mxfp8.maxFinite).toBe(FORMAT_INFO.fp8_e4m3.maxFinite);
  });
  it('describes every document format', () => {
    for (const f of PRECISION_FORMATS) expect(FORMAT_INFO[f].format).toBe(f);
  });
});

describe('native support', () => {
  it('Hopper runs FP8 natively, MXFP8 and NVFP4 only on Blackwell', () => {
    expect(formatSupport('fp8_e4m3', 'hopper')).toBe('native');
    expect(formatSupport('mxfp8', 'hopper')).toBe('emulated');
    expect(formatSupport('nvfp4', 'hopper')).toBe('emulated');
    expect(formatSupport('nvfp4', 'blackwell')).toBe('native');
    expect(formatSupport('fp8_e5m2', 'ampere')).toBe('emulated');
    expect(emulatedFormats('cpu')).toEqual(['bf16', 'fp8_e4m3', 'fp8_e5m2', 'mxfp8', 'nvfp4']);
  });
  it('agrees with the hardware profiles of the analytics', () => {
    for (const profile of Object.values(HARDWARE)) {
      const target = computeTargetOf(profile.id);
      for (const f of PRECISION_FORMATS) {
        if (f === 'fp32' && target !== 'cpu') continue; // GPUs run fp32 off the tensor cores (vector rate)
        expect(formatSupport(f, target) === 'native', `${profile.id} ${f}`).toBe(isNative(profile, f));
      }
    }
  });
  it('names an unknown chip', () => {
    expect(() => computeTargetOf('tpu-v5')).toThrow(/unknown hardware 'tpu-v5'/);
  });
});
