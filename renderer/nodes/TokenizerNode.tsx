// Pipeline node: the tokenizer (byte-level or GPT-2 BPE) and the vocabulary it needs.
import type { NodeProps } from '@xyflow/react';
import { memo } from 'react';
import { TOKENIZER_VOCAB } from '../../engine/spec/validate.js';
import { useDocumentStore } from '../state/stores.js';
import { PipelineFrame } from './PipelineFrame.js';

export const TokenizerNode = memo(function TokenizerNode({ selected }: NodeProps) {
  const kind = useDocumentStore((s) => s.doc.pipeline.tokenizer.kind);
  return <PipelineFrame stage="tokenizer" title="Tokenizer" lines={[kind === 'byte' ? 'byte-level' : 'GPT-2 BPE', `${TOKENIZER_VOCAB[kind]} tokens`]} selected={!!selected} />;
});
