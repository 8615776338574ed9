// Tests of the Megatron launch arguments and bundle for every template: the pattern with `|` cuts,
// the size, parallel, training and precision flags, the TE YAML (Nano and Super), the scripts, the
// Bridge recipe (Nano and Super only), bash quoting, and the tokenizer default.
import { describe, expect, it } from 'vitest';
import { type StrataDocument } from '../document.js';
import { patternFromModel } from '../megatron-pattern.js';
import { parseDocument } from '../validate.js';
import { TEMPLATE_NAMES, templateDocument } from '../../../templates/index.js';
import { buildBundle, matchingBridgeRecipe } from './bundle.js';
import { completeLayout } from './layout.js';
import { argsTxtLine, bashWord, defaultTokenizerModel, megatronLaunchArgs } from './launch-args.js';

function doc(name: string): StrataDocument {
  const parsed = parseDocument(templateDocument(name));
  if (!parsed.ok) throw new Error(parsed.errors.map((e) => e.message).join('; '));
  return parsed.doc;
}

const cluster = { nodes: 1, gpusPerNode: 8 };

describe.each(TEMPLATE_NAMES.map((n) => [n]))('%s', (name) => {
  const d = doc(name);
  const layout = completeLayout(cluster, {});
  const args = megatronLaunchArgs(d, layout);
  const flags = new Map(args.flags.map((f) => [f.flag, f.values]));

  it('writes the pattern, sizes, layout, data and checkpoint arguments once each', () => {
    expect(flags.get('--hybrid-layer-pattern')).toEqual([patternFromModel({ ...d.model, pipeline_cuts: [] })]);
    expect(flags.get('--hidden-size')).toEqual([String(d.model.d_model)]);
    for (const flag of ['--num-layers', '--tensor-model-parallel-size', '--pipeline-model-parallel-size', '--micro-batch-size', '--global-batch-size', '--seq-length', '--data-path', '--save', '--tokenizer-model', '--spec'])
      expect(flags.has(flag), flag).toBe(true);
    expect(new Set(args.flags.map((f) => f.flag)).size).toBe(args.flags.length);
    expect(flags.get('--spec')).toEqual(['megatron.core.models.mamba.mamba_layer_specs', 'mamba_stack_spec']);
  });

  it('builds a complete bundle with scripts, args.txt and the precision table', () => {
    const bundle = buildBundle(d, { cluster, layout });
    const files = new Map(bundle.files.map((f) => [f.path, f]));
    for (const path of ['README.md', 'args.txt', 'megatron_args.sh', 'train_torchrun.sh', 'train_slurm.sbatch', 'prepare_data.sh', 'import_checkpoint.sh', 'strata.json', 'precision.tsv', 'plan.json'])
      expect(files.has(path), path).toBe(true);
    expect(files.get('args.txt')!.text.trim().split('\n')).toEqual(args.flags.map(argsTxtLine));
    expect(files.get('train_torchrun.sh')!.executable).toBe(true);
    expect(files.get('train_torchrun.sh')!.text).toContain('"${MEGATRON_LM}/pretrain_mamba.py" "${MEGATRON_ARGS[@]}"');
    expect(files.get('train_slurm.sbatch')!.text).toContain('#SBATCH --nodes=1');
    expect(files.get('train_slurm.sbatch')!.text).toContain('#SBATCH --gpus-per-node=8');
    expect(files.get('prepare_data.sh')!.text).toContain('tools/preprocess_data.py');
    expect(files.get('import_checkpoint.sh')!.text).toContain('AutoBridge.import_ckpt(');
    expect(files.get('import_checkpoint.sh')!.text).toContain('strata export-hf');
    expect(files.has('bridge_recipe.py')).toBe(name.startsWith('nemotron-3-'));
    expect(files.has('te_precision.yaml')).toBe(name.startsWith('nemotron-3-'));
  });
});

describe('launch arguments', () => {
  it('cuts Nano into PP stages with | and writes the parallel, recompute and precision flags', () => {
    const layout = completeLayout({ nodes: 4, gpusPerNode: 8 }, { tp: 2, pp: 4, ep: 8, recompute: 'full' });
    const args = megatronLaunchArgs(doc('nemotron-3-nano-30b-a3b'), layout);
    const flags = new Map(args.flags.map((f) => [f.flag, f.values]));
    expect(args.cuts).toEqual([13, 26, 39]);
    expect(flags.get('--hybrid-layer-pattern')![0]!.split('|').map((s) => s.length)).toEqual([13, 13, 13, 13]);
    expect(flags.get('--pipeline-model-parallel-size')).toEqual(['4']);
    expect(flags.get('--expert-model-parallel-size')).toEqual(['8']);
    expect(flags.get('--expert-tensor-parallel-size')).toEqual(['1']);
    expect(flags.has('--sequence-parallel')).toBe(true);
    expect(flags.get('--recompute-granularity')).toEqual(['full']);
    expect(flags.get('--recompute-method')).toEqual(['uniform']);
    expect(flags.get('--num-layers-at-end-in-bf16')).toEqual(['8']);
    expect(flags.get('--te-precision-config-file')).toEqual(['${BUNDLE_DIR}/te_precision.yaml']);
    expect(flags.get('--min-lr')).toEqual(['0.0003']);
  });

  it('writes Super MTP with repeated layers and the LatentMoE size', () => {
    const args = megatronLaunchArgs(doc('nemotron-3-super-120b-a12b'), completeLayout(cluster, { ep: 8, recompute: 'selective' }));
    const flags = new Map(args.flags.map((f) => [f.flag, f.values]));
    expect(flags.get('--hybrid-layer-pattern')![0]).toMatch(/\/\*E\/\*E$/);
    expect(flags.get('--mtp-num-layers')).toEqual(['2']);
    expect(flags.has('--mtp-use-repeated-layer')).toBe(true);
    expect(flags.get('--moe-latent-size')).toEqual(['1024']);
    expect(flags.get('--recompute-modules')).toEqual(['moe_act', 'layernorm']);
  });

  it('writes the WSD schedule with its decay length', () => {
    const d = doc('tiny-hybrid');
    d.pipeline.training = { ...d.pipeline.training, schedule: 'wsd', steps: 1000, decay_fraction: 0.2 };
    const flags = new Map(megatronLaunchArgs(d, completeLayout(cluster, {})).flags.map((f) => [f.flag, f.values]));
    expect(flags.get('--lr-decay-style')).toEqual(['WSD']);
    expect(flags.get('--lr-wsd-decay-iters')).toEqual(['200']);
  });

  it('replaces document cuts that do not match PP and says so', () => {
    const d = doc('tiny-hybrid');
    d.model.pipeline_cuts = [3];
    const args = megatronLaunchArgs(d, completeLayout({ nodes: 1, gpusPerNode: 3 }, { pp: 3, globalBatch: 3 }));
    expect(args.cutsSource).toBe('balanced');
    expect(args.notes.join(' ')).toMatch(/do not match PP 3/);
  });

  it('chooses tokenizers by vocabulary and leaves byte-level designs to the user', () => {
    expect(defaultTokenizerModel(doc('nemotron-3-nano-30b-a3b'))).toBe('nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16');
    expect(defaultTokenizerModel(doc('qwen3-30b-a3b'))).toBe('Qwen/Qwen3-30B-A3B');
    expect(defaultTokenizerModel(doc('mamba2-2.7b'))).toBe('EleutherAI/gpt-neox-20b');
    expect(defaultTokenizerModel(doc('tiny-hybrid'))).toBeNull();
    const args = megatronLaunchArgs(doc('tiny-hybrid'), completeLayout(cluster, {}));
    expect(args.notes.join(' ')).toMatch(/set TOKENIZER_MODEL/);
    const bundle = buildBundle(doc('tiny-hybrid'), { cluster, layout: completeLayout(cluster, {}) });
    expect(bundle.files.find((f) => f.path === 'train_torchrun.sh')!.text).toContain('${TOKENIZER_MODEL:?set TOKENIZER_MODEL');
  });

  it('quotes bash words but keeps ${VAR} placeholders expandable', () => {
    expect(bashWord('RMSNorm')).toBe('RMSNorm');
    expect(bashWord('MEM*E|M*E/*E')).toBe('"MEM*E|M*E/*E"');
    expect(bashWord('${BUNDLE_DIR}/te_precision.yaml')).toBe('"${BUNDLE_DIR}/te_precision.yaml"');
    expect(bashWord('a"b$c`d')).toBe('"a\\"b\\$c\\`d"');
  });

  it('recognizes only the Nemotron 3 designs Bridge has recipes for', () => {
    expect(matchingBridgeRecipe(doc('nemotron-3-nano-30b-a3b'))?.configFunction).toBe('nemotron_3_nano_pretrain_config');
    expect(matchingBridgeRecipe(doc('nemotron-3-super-120b-a12b'))?.configFunction).toBe('nemotron_3_super_pretrain_config');
    expect(matchingBridgeRecipe(doc('nemotron-h-8b'))).toBeNull();
    const widened = doc('nemotron-3-nano-30b-a3b');
    widened.model.d_model = 3072;
    expect(matchingBridgeRecipe(widened)).toBeNull();
  });
});
