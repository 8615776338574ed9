// Parameter counts of a design: total, active per token, embedding, head, per layer, per block
// kind, and the MTP modules apart.
//
// Conventions (the ones /work/shared/reference/published-models.md uses for its exact figures):
// - total: every stored parameter of the main model counted once (RMSNorm weights, conv weights
//   and bias, dt_bias/A_log/D, gated-norm weights, router expert bias, LatentMoE projections,
//   shared experts, embedding, untied head, final norm). MTP modules are excluded and reported
//   apart in `mtp`.
// - active: parameters one token uses = total minus the routed experts top-k leaves idle
//   (E - K copies of each routed-expert tensor per MoE layer); embeddings and head included.
//   `active_without_embedding` drops the input embedding (how Nemotron states 3.2B for Nano).
// - embedding: the input embedding table V*d; `head` the LM head V*d, 0 when tied.
// - mtp.total: the MTP modules' own parameters (one module when shared_weights, else depth
//   modules); embedding and head are shared with the main model and not counted again.
//
// Not here: the tensor inventory itself (tensors.ts).
import { type BlockKind, type ModelSpec, BLOCK_KINDS, flattenStack } from '../document.js';
import {
  blockTensors,
  embeddingTensor,
  finalNormTensor,
  headTensor,
  mtpFrameTensors,
  tensorActiveParams,
  tensorParams,
  type WeightTensor,
} from './tensors.js';

export interface LayerParams {
  index: number;
  kind: BlockKind;
  total: number;
  active: number;
}

export interface KindParams {
  layers: number;
  total: number;
  active: number;
}

export interface MtpParams {
  depth: number;
  shared_weights: boolean;
  /** Parameters of the MTP modules (embedding and head shared, not included). */
  total: number;
  /** Parameters one MTP depth uses per token. */
  active_per_depth: number;
}

export interface ParamsReport {
  total: number;
  active: number;
  active_without_embedding: number;
  embedding: number;
  head: number;
  /** total minus embedding and head. */
  non_embedding: number;
  by_kind: Record<BlockKind, KindParams>;
  layers: LayerParams[];
  mtp: MtpParams | null;
}

function sum(tensors: WeightTensor[], f: (t: WeightTensor) => number): number {
  return tensors.reduce((acc, t) => acc + f(t), 0);
}

export function countParams(model: ModelSpec): ParamsReport {
  const d = model.d_model;
  const byKind = Object.fromEntries(BLOCK_KINDS.map((k) => [k, { layers: 0, total: 0, active: 0 }])) as Record<BlockKind, KindParams>;
  const layers: LayerParams[] = flattenStack(model.stack).map((layer) => {
    const tensors = blockTensors(layer.block, d);
    const row = { index: layer.index, kind: layer.block.kind, total: sum(tensors, tensorParams), active: sum(tensors, tensorActiveParams) };
    const k = byKind[row.kind];
    k.layers += 1;
    k.total += row.total;
    k.active += row.active;
    return row;
  });
  const embedding = tensorParams(embeddingTensor(model));
  const head = tensorParams(headTensor(model));
  const finalNorm = tensorParams(finalNormTensor(model));
  const stackTotal = layers.reduce((a, l) => a + l.total, 0);
  const stackActive = layers.reduce((a, l) => a + l.active, 0);
  const total = stackTotal + embedding + head + finalNorm;
  const active = stackActive + embedding + head + finalNorm;
  let mtp: MtpParams | null = null;
  if (model.mtp) {
    const moduleTensors = [...mtpFrameTensors(model), ...model.mtp.blocks.flatMap((b) => blockTensors(b, d))];
    const modules = model.mtp.shared_weights ? 1 : model.mtp.depth;
    mtp = {
      depth: model.mtp.depth,
      shared_weights: model.mtp.shared_weights,
      total: modules * sum(moduleTensors, tensorParams),
      active_per_depth: sum(moduleTensors, tensorActiveParams),
    };
  }
  return {
    total,
    active,
    active_without_embedding: active - embedding,
    embedding,
    head,
    non_embedding: total - embedding - head,
    by_kind: byKind,
    layers,
    mtp,
  };
}
