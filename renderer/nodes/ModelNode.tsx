// Pipeline node: the model. Shows its pattern and size; double-click (or the button) opens the
// layer-stack editor.
import type { NodeProps } from '@xyflow/react';
import { memo } from 'react';
import { patternFromModel } from '../../engine/spec/megatron-pattern.js';
import { useDocumentStore, useViewStore } from '../state/stores.js';
import { PipelineFrame } from './PipelineFrame.js';
import { layersOf } from '../state/selectors.js';

export const ModelNode = memo(function ModelNode({ selected }: NodeProps) {
  const model = useDocumentStore((s) => s.doc.model);
  const layers = layersOf(model.stack).length;
  const pattern = patternFromModel(model);
  const shown = pattern.length > 28 ? `${pattern.slice(0, 27)}…` : pattern;
  return (
    <PipelineFrame stage="model" title={model.name} lines={[`${layers} layers, d ${model.d_model}`, shown]} selected={!!selected}>
      <button type="button" onClick={() => useViewStore.getState().setScreen('layers')}>
        Edit layers
      </button>
    </PipelineFrame>
  );
});
