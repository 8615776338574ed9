// The weight inventory of a design: every parameter tensor of every block, embedding, head and
// MTP module, with its shape, how many copies exist (routed experts), how many of those copies one
// token uses, and the precision role of the GEMM that multiplies it. Parameter counts, GEMM FLOPs
// and weight bytes are all derived from this one list, so the three can never disagree.
//
// Conventions (as /work/shared/reference/published-models.md counts them):
// - Every block is one residual layer x + mixer(RMSNorm(x)); its pre-norm weight (d) belongs to it.
// - Linear weights are [in, out]; a GEMM tensor costs 2*in*out FLOPs per token per used copy.
// - Mamba-2: in_proj d -> 2*d_inner + 2*G*N + H (z, x, B, C, dt); depthwise conv over
//   [x, B, C] with kernel k (+ bias when conv_bias); dt_bias, A_log and D (H each); gated RMSNorm
//   weight (d_inner); out_proj d_inner -> d.
// - Attention: q d -> H*hd, k and v d -> kv*hd, o H*hd -> d (the three input projections share the
//   role attention.qkv); QK-norm adds one head_dim weight for q and one for k.
// - MoE: router d -> E (plus E expert-bias entries when expert_bias is set, used for selection
//   only but stored, so counted); routed experts fc1 w -> ffn (2*ffn for SwiGLU's gate and up) and
//   fc2 ffn -> w, where w is the latent size l for LatentMoE, else d; LatentMoE's down (d -> l)
//   and up (l -> d) projections; shared experts at width d. Only top_k of E routed copies are
//   used per token; everything else is used by every token.
// - MLP: fc1 d -> ffn (2*ffn for SwiGLU), fc2 ffn -> d.
// - Biases are counted only when the block's `bias` flag is set.
// - MTP module (Megatron/DeepSeek-V3 form): RMSNorm of the hidden state and of the next token's
//   embedding (d each), eh_proj 2d -> d, its blocks, a final RMSNorm (d); it shares the embedding
//   and the LM head with the main model. With shared_weights one module's tensors exist once and
//   run `depth` times; otherwise there are `depth` copies.
//
// Not here: what the counts add up to (params.ts), FLOPs of non-weight work (flops.ts), bytes
// (memory.ts).
import type { Block, ModelSpec, TensorRole } from '../document.js';

export interface WeightTensor {
  /** Tensor name inside its block, e.g. `in_proj`, `experts.fc1`, `norm`. */
  name: string;
  /** Precision role of the GEMM that uses it; null for non-GEMM parameters (norms, conv, A_log...). */
  role: TensorRole | null;
  /** Dimensions: [in, out] for GEMM weights, the element count for vectors, [channels, k] for conv. */
  shape: number[];
  /** Copies that exist (E for routed experts, the number of shared experts, else 1). */
  copies: number;
  /** Copies one token uses (top_k for routed experts). */
  activeCopies: number;
  /** True for routed-expert tensors (the ones top-k leaves partly idle). */
  routed: boolean;
}

export function tensorElements(t: WeightTensor): number {
  return t.shape.reduce((a, b) => a * b, 1);
}

export function tensorParams(t: WeightTensor): number {
  return tensorElements(t) * t.copies;
}

export function tensorActiveParams(t: WeightTensor): number {
  return tensorElements(t) * t.activeCopies;
}

/**
 * Forward GEMM FLOPs one token spends on this tensor: 2*in*out per used copy. Zero for non-GEMM
 * parameters and for the input embedding, which is a table lookup, not a matmul.
 */
export function tensorGemmFlops(t: WeightTensor): number {
  return t.role === null || t.role === 'embedding' ? 0 : 2 * tensorElements(t) * t.activeCopies;
}

function gemm(name: string, role: TensorRole, inDim: number, outDim: number, copies = 1, activeCopies = copies, routed = false): WeightTensor {
  return { name, role, shape: [inDim, outDim], copies, activeCopies, routed };
}

function vector(name: string, size: number, copies = 1, activeCopies = copies, routed = false): WeightTensor {
  return { name, role: null, shape: [size], copies, activeCopies, routed };
}

/** Mamba-2 inner width H*P. */
export function mambaInner(block: Extract<Block, { kind: 'mamba2' }>): number {
  return block.heads * block.head_dim;
}

/** Channels the Mamba-2 depthwise conv runs over: x, B and C. */
export function mambaConvChannels(block: Extract<Block, { kind: 'mamba2' }>): number {
  return mambaInner(block) + 2 * block.groups * block.d_state;
}

/** Width of the FFN's first projection output: 2*ffn for SwiGLU (gate and up), else ffn. */
export function fc1Width(activation: string, ffn: number): number {
  return activation === 'swiglu' ? 2 * ffn : ffn;
}

/** Tensors of one block at model width d, including its pre-norm. */
export function blockTensors(block: Block, d: number): WeightTensor[] {
  const out: WeightTensor[] = [vector('norm', d)];
  switch (block.kind) {
    case 'mamba2': {
      const inner = mambaInner(block);
      const gn = block.groups * block.d_state;
      const conv = mambaConvChannels(block);
      const inProjOut = 2 * inner + 2 * gn + block.heads;
      out.push(gemm('in_proj', 'mamba.in_proj', d, inProjOut));
      if (block.bias) out.push(vector('in_proj.bias', inProjOut));
      out.push({ name: 'conv1d', role: null, shape: [conv, block.conv_kernel], copies: 1, activeCopies: 1, routed: false });
      if (block.conv_bias) out.push(vector('conv1d.bias', conv));
      out.push(vector('dt_bias', block.heads), vector('A_log', block.heads), vector('D', block.heads));
      out.push(vector('gated_norm', inner));
      out.push(gemm('out_proj', 'mamba.out_proj', inner, d));
      if (block.bias) out.push(vector('out_proj.bias', d));
      return out;
    }
    case 'attention': {
      const q = block.heads * block.head_dim;
      const kv = block.kv_heads * block.head_dim;
      out.push(gemm('q_proj', 'attention.qkv', d, q), gemm('k_proj', 'attention.qkv', d, kv), gemm('v_proj', 'attention.qkv', d, kv));
      if (block.bias) out.push(vector('qkv.bias', q + 2 * kv));
      if (block.qk_norm) out.push(vector('q_norm', block.head_dim), vector('k_norm', block.head_dim));
      out.push(gemm('o_proj', 'attention.o', q, d));
      if (block.bias) out.push(vector('o_proj.bias', d));
      return out;
    }
    case 'mlp': {
      const w1 = fc1Width(block.activation, block.ffn);
      out.push(gemm('fc1', 'mlp.fc1', d, w1));
      if (block.bias) out.push(vector('fc1.bias', w1));
      out.push(gemm('fc2', 'mlp.fc2', block.ffn, d));
      if (block.bias) out.push(vector('fc2.bias', d));
      return out;
    }
    case 'moe': {
      const e = block.experts;
      const k = block.top_k;
      const width = block.latent ?? d;
      out.push(gemm('router', 'moe.router', d, e));
      if (block.router.expert_bias) out.push(vector('router.expert_bias', e));
      if (block.latent !== null) {
        out.push(gemm('latent_down', 'moe.latent_down', d, block.latent));
        if (block.bias) out.push(vector('latent_down.bias', block.latent));
      }
      const w1 = fc1Width(block.activation, block.expert_ffn);
      out.push(gemm('experts.fc1', 'moe.expert_fc1', width, w1, e, k, true));
      if (block.bias) out.push(vector('experts.fc1.bias', w1, e, k, true));
      out.push(gemm('experts.fc2', 'moe.expert_fc2', block.expert_ffn, width, e, k, true));
      if (block.bias) out.push(vector('experts.fc2.bias', width, e, k, true));
      if (block.latent !== null) {
        out.push(gemm('latent_up', 'moe.latent_up', block.latent, d));
        if (block.bias) out.push(vector('latent_up.bias', d));
      }
      if (block.shared_experts > 0) {
        const s = block.shared_experts;
        const sw1 = fc1Width(block.activation, block.shared_ffn);
        out.push(gemm('shared.fc1', 'moe.shared_fc1', d, sw1, s));
        if (block.bias) out.push(vector('shared.fc1.bias', sw1, s));
        out.push(gemm('shared.fc2', 'moe.shared_fc2', block.shared_ffn, d, s));
        if (block.bias) out.push(vector('shared.fc2.bias', d, s));
      }
      return out;
    }
  }
}

/** Input embedding table (V x d). */
export function embeddingTensor(model: ModelSpec): WeightTensor {
  return gemm('embedding', 'embedding', model.vocab_size, model.d_model);
}

/**
 * LM head (d -> V). With tied embeddings it has no parameters of its own; the GEMM still runs,
 * so it is returned with copies 0 (no params) and activeCopies 1 (its FLOPs).
 */
export function headTensor(model: ModelSpec): WeightTensor {
  return { ...gemm('lm_head', 'head', model.d_model, model.vocab_size), copies: model.tie_embeddings ? 0 : 1 };
}

/** The final RMSNorm before the head. */
export function finalNormTensor(model: ModelSpec): WeightTensor {
  return vector('final_norm', model.d_model);
}

/**
 * Tensors of ONE MTP module (the part around its blocks: the two input norms, eh_proj and the
 * final norm). Its blocks' tensors come from blockTensors; the role of every MTP GEMM is `mtp`
 * for precision, which resolvePrecision handles per MTP layer.
 */
export function mtpFrameTensors(model: ModelSpec): WeightTensor[] {
  const d = model.d_model;
  return [vector('enorm', d), vector('hnorm', d), gemm('eh_proj', 'mtp', 2 * d, d), vector('final_norm', d)];
}
