// The inspector: settings of whatever is selected, generated from the document schema. A block
// (by kind), a repeat group, several layers at once (group/delete), or a pipeline node (dataset,
// tokenizer, model, training, evaluations, profiling). Edits are undoable document changes.
// Not the form machinery (SchemaForm.tsx, schema-fields.ts).
import type { z } from 'zod';
import {
  AttentionBlock,
  BLOCK_KINDS,
  GEMM_PASSES,
  type Block,
  Dataset,
  Mamba2Block,
  MlpBlock,
  ModelSpec,
  MoeBlock,
  PipelineSpec,
  Profiling,
  type RepeatGroup,
  Tokenizer,
  Training,
} from '../../engine/spec/document.js';
import { BLOCK_KIND_INFO } from '../model/block-defaults.js';
import { findById } from '../model/stack-edit.js';
import {
  addBlockToGroup,
  deleteSelection,
  groupSelection,
  nudge,
  setBlockField,
  setDocumentField,
  setRepeatCount,
  toggleCollapsed,
  ungroupItem,
} from '../state/document-actions.js';
import { layersOf, precisionOf, validationOf } from '../state/selectors.js';
import { rowsOfLayer } from '../../engine/spec/precision.js';
import { type PipelineNodeId, useDocumentStore, useSelectionStore } from '../state/stores.js';
import { ExportSettingsPanel } from './ExportSettings.js';
import { type FieldSpec, describeSchema } from './schema-fields.js';
import { SchemaField } from './SchemaForm.js';

const specCache = new Map<z.ZodType, FieldSpec>();
function specOf(schema: z.ZodType): FieldSpec {
  let spec = specCache.get(schema);
  if (!spec) {
    spec = describeSchema(schema);
    specCache.set(schema, spec);
  }
  return spec;
}

const BLOCK_SCHEMAS: Record<Block['kind'], z.ZodType> = { mamba2: Mamba2Block, attention: AttentionBlock, moe: MoeBlock, mlp: MlpBlock };

const PIPELINE_FORMS: Record<Exclude<PipelineNodeId, 'export'>, { title: string; schema: z.ZodType; path: string[]; hide?: string[] }> = {
  dataset: { title: 'Dataset', schema: Dataset, path: ['pipeline', 'dataset'] },
  tokenizer: { title: 'Tokenizer', schema: Tokenizer, path: ['pipeline', 'tokenizer'] },
  model: { title: 'Model', schema: ModelSpec, path: ['model'], hide: ['stack'] },
  train: { title: 'Training', schema: Training, path: ['pipeline', 'training'] },
  evaluate: { title: 'Evaluations', schema: PipelineSpec, path: ['pipeline'], hide: ['dataset', 'tokenizer', 'training', 'profiling'] },
  profile: { title: 'Profiling', schema: Profiling, path: ['pipeline', 'profiling'] },
};

/** The resolved precision of one layer: format per GEMM role and pass (first repeat of a block). */
function LayerPrecision({ layer }: { layer: number }) {
  const model = useDocumentStore((s) => s.doc.model);
  const rows = rowsOfLayer(precisionOf(model), layer);
  if (rows.length === 0) return null;
  return (
    <table className="precision-table" aria-label={`Precision of layer ${layer}`}>
      <caption>Resolved precision (layer {layer})</caption>
      <thead>
        <tr>
          <th>role</th>
          {GEMM_PASSES.map((p) => (
            <th key={p}>{p}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.role}>
            <td>{r.role}</td>
            {GEMM_PASSES.map((p) => (
              <td key={p} title={r.ruleIndex[p] === null ? 'policy default' : `rule ${r.ruleIndex[p]}`}>
                {r.formats[p]}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function BlockInspector({ block }: { block: Block }) {
  const id = block.id!;
  const issues = useDocumentStore((s) => validationOf(s.doc).byNode.get(id));
  const stack = useDocumentStore((s) => s.doc.model.stack);
  const loc = findById(stack, id);
  const firstLayer = layersOf(stack).find((l) => l.block === block)?.index;
  return (
    <section aria-label={`${BLOCK_KIND_INFO[block.kind].title} block settings`}>
      <h2>
        {BLOCK_KIND_INFO[block.kind].title} block {loc?.inner !== undefined ? '(in repeat group)' : ''}
      </h2>
      {issues?.map((i) => (
        <div key={i.path + i.message} className={`issue ${i.severity}`} role="alert">
          {i.message}
        </div>
      ))}
      <div className="button-row">
        <button type="button" onClick={() => nudge(id, -1)}>
          Move up
        </button>
        <button type="button" onClick={() => nudge(id, 1)}>
          Move down
        </button>
        {loc?.inner === undefined ? (
          <button type="button" onClick={() => groupSelection(2)}>
            Group as repeat
          </button>
        ) : null}
        <button type="button" onClick={() => deleteSelection()}>
          Delete block
        </button>
      </div>
      <SchemaField spec={specOf(BLOCK_SCHEMAS[block.kind])} value={block} path={[]} hide={['kind', 'id']} onChange={(path, value) => setBlockField(id, path, value)} />
      {firstLayer !== undefined ? <LayerPrecision layer={firstLayer} /> : null}
    </section>
  );
}

function GroupInspector({ group }: { group: RepeatGroup }) {
  const id = group.id!;
  return (
    <section aria-label="Repeat group settings">
      <h2>Repeat group</h2>
      <div className="field">
        <label htmlFor="group-count">count</label>
        <input id="group-count" type="number" min={1} step={1} value={group.count} onChange={(e) => setRepeatCount(id, Number(e.target.value))} />
      </div>
      <div className="button-row">
        <button type="button" onClick={() => toggleCollapsed(id)}>
          {group.collapsed ? 'Expand group' : 'Collapse group'}
        </button>
        <button type="button" onClick={() => ungroupItem(id)}>
          Ungroup
        </button>
        <button type="button" onClick={() => nudge(id, -1)}>
          Move up
        </button>
        <button type="button" onClick={() => nudge(id, 1)}>
          Move down
        </button>
        <button type="button" onClick={() => deleteSelection()}>
          Delete group
        </button>
      </div>
      <p className="muted">
        {group.blocks.length} block(s) x {group.count} = {group.blocks.length * group.count} layers
      </p>
      <div className="button-row" role="group" aria-label="Add a block to this group">
        {BLOCK_KINDS.map((kind) => (
          <button key={kind} type="button" onClick={() => addBlockToGroup(kind, id, group.blocks.length)}>
            Add {BLOCK_KIND_INFO[kind].title} to group
          </button>
        ))}
      </div>
    </section>
  );
}

function PipelineInspector({ node }: { node: PipelineNodeId }) {
  const doc = useDocumentStore((s) => s.doc);
  if (node === 'export') return <ExportSettingsPanel />;
  const form = PIPELINE_FORMS[node];
  let value: unknown = doc;
  for (const p of form.path) value = (value as Record<string, unknown>)[p];
  return (
    <section aria-label={`${form.title} settings`}>
      <h2>{form.title}</h2>
      <SchemaField spec={specOf(form.schema)} value={value} path={[]} hide={form.hide} onChange={(path, v) => setDocumentField([...form.path, ...path], v)} />
    </section>
  );
}

export function Inspector() {
  const ids = useSelectionStore((s) => s.ids);
  const pipelineNode = useSelectionStore((s) => s.pipelineNode);
  const stack = useDocumentStore((s) => s.doc.model.stack);
  if (ids.length > 1) {
    return (
      <section aria-label="Selection">
        <h2>{ids.length} layers selected</h2>
        <div className="button-row">
          <button type="button" onClick={() => groupSelection(2)}>
            Group as repeat
          </button>
          <button type="button" onClick={() => deleteSelection()}>
            Delete selected
          </button>
        </div>
      </section>
    );
  }
  if (ids.length === 1) {
    const loc = findById(stack, ids[0]!);
    if (loc) return loc.node.kind === 'repeat' ? <GroupInspector group={loc.node as RepeatGroup} /> : <BlockInspector block={loc.node as Block} />;
  }
  return pipelineNode ? <PipelineInspector node={pipelineNode} /> : <p className="muted">Select a pipeline step or a layer.</p>;
}
