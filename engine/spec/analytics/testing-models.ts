// Small hand-checkable designs shared by the analytics tests (test support only; nothing in the
// product imports it). Each block's dimensions are chosen so the expected figures in the tests can
// be derived by hand.
import { type Block, type BlockInput, type ModelSpec, type ModelSpecInput, parseModel } from '../document.js';

/** d 8: H 2 x P 4 (d_inner 8), N 4, G 1, conv 4 with bias, chunk 4. */
export const smallMamba = { kind: 'mamba2', heads: 2, head_dim: 4, d_state: 4, groups: 1, conv_kernel: 4, chunk: 4 } satisfies BlockInput;

/** d 8: 4 routed experts (top-2, relu2 ffn 6), 1 shared expert (ffn 4), sigmoid router with expert bias. */
export const smallMoe = {
  kind: 'moe',
  experts: 4,
  top_k: 2,
  expert_ffn: 6,
  activation: 'relu2',
  shared_experts: 1,
  shared_ffn: 4,
  router: { type: 'sigmoid', expert_bias: true },
} satisfies BlockInput;

export function smallModel(overrides: Partial<ModelSpecInput> = {}) {
  return parseModel({ name: 'small', vocab_size: 16, d_model: 8, stack: [smallMamba, smallMoe], ...overrides });
}

/** The block at stack position `i` of a model whose stack has no repeat groups. */
export function blockAt(model: ModelSpec, i: number): Block {
  const item = model.stack[i];
  if (!item || item.kind === 'repeat') throw new Error(`stack item ${i} is not a block`);
  return item;
}
