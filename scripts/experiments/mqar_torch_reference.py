#!/usr/bin/env python3
"""An independent PyTorch transformer trained on an engine run's own MQAR data, to tell an engine
fault from a property of the task (docs/cpu-benchmarks.md, "mqar, session 3").

The model has the shape of the 2-layer RoPE transformer the engine was compared with: pre-norm
RMSNorm, GQA attention (6 heads, 2 KV heads, head dim 32, NeoX-style RoPE), relu2 MLP (4 x width),
untied head, N(0, 0.02) init; AdamW (0.9, 0.95), weight decay 0.1 on matrices, gradient clipping at
1.0, 20 warm-up steps, batch 32 in file order. It reads RUN/data/train.stok and RUN/data/heldout.stok
(written by `strata train` for a `task: mqar` dataset) and every 250 steps prints the held-out recall
(argmax over the vocabulary on the masked answer tokens) and the recall by query order.

This is not a test and not the HF oracle (tests/python/test_hf_oracle.py compares layers exactly);
it is the experiment behind a statement in the docs, kept so it can be repeated:

    python3 scripts/experiments/mqar_torch_reference.py RUN_DIR --lr 1e-3 --steps 4000
"""
import argparse
import json
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

VOCAB = 264
HEADS, KV_HEADS, HEAD_DIM = 6, 2, 32
BATCH = 32


def read_stok(path):
    """Tokens (S, T) and answer mask (S, T) of a .stok file: 16-byte preamble (magic, header length),
    JSON header, uint32 tokens, uint8 mask (engine/native/src/io/tokens.cpp)."""
    raw = open(path, 'rb').read()
    header_len = struct.unpack('<Q', raw[8:16])[0]
    header = json.loads(raw[16:16 + header_len])
    n, seq_len = header['n_tokens'], header['seq_len']
    offset = 16 + header_len
    tokens = np.frombuffer(raw[offset:offset + 4 * n], dtype='<u4').astype(np.int64).reshape(-1, seq_len)
    mask = np.frombuffer(raw[offset + 4 * n:offset + 5 * n], dtype=np.uint8).reshape(-1, seq_len)
    return torch.tensor(tokens), torch.tensor(mask.astype(np.bool_))


class RmsNorm(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight


def rotate(x):
    """NeoX-style rotary embedding of x: (B, T, heads, HEAD_DIM)."""
    half = HEAD_DIM // 2
    inv_freq = 1.0 / (10000 ** (torch.arange(half) / half))
    angles = torch.arange(x.shape[1])[:, None] * inv_freq[None]
    cos, sin = angles.cos()[None, :, None], angles.sin()[None, :, None]
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], -1)


class Attention(nn.Module):
    def __init__(self, width, rope):
        super().__init__()
        self.rope = rope
        self.q = nn.Linear(width, HEADS * HEAD_DIM, bias=False)
        self.k = nn.Linear(width, KV_HEADS * HEAD_DIM, bias=False)
        self.v = nn.Linear(width, KV_HEADS * HEAD_DIM, bias=False)
        self.o = nn.Linear(HEADS * HEAD_DIM, width, bias=False)

    def forward(self, x):
        b, t, _ = x.shape
        q = self.q(x).view(b, t, HEADS, HEAD_DIM)
        k = self.k(x).view(b, t, KV_HEADS, HEAD_DIM)
        v = self.v(x).view(b, t, KV_HEADS, HEAD_DIM)
        if self.rope:
            q, k = rotate(q), rotate(k)
        k = k.repeat_interleave(HEADS // KV_HEADS, 2)
        v = v.repeat_interleave(HEADS // KV_HEADS, 2)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        return self.o(out.transpose(1, 2).reshape(b, t, HEADS * HEAD_DIM))


class Relu2Mlp(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.up = nn.Linear(width, 4 * width, bias=False)
        self.down = nn.Linear(4 * width, width, bias=False)

    def forward(self, x):
        return self.down(F.relu(self.up(x)).square())


class Transformer(nn.Module):
    def __init__(self, layers, width, rope):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width)
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            self.blocks.append(nn.ModuleList([RmsNorm(width), Attention(width, rope)]))
            self.blocks.append(nn.ModuleList([RmsNorm(width), Relu2Mlp(width)]))
        self.norm = RmsNorm(width)
        self.head = nn.Linear(width, VOCAB, bias=False)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, ids):
        h = self.embed(ids)
        for norm, mixer in self.blocks:
            h = h + mixer(norm(h))
        return self.head(self.norm(h))


def recall(model, tokens, mask, batches=8):
    """Held-out recall over `batches` batches, and recall by query order (1st, 2nd, ... answer)."""
    model.eval()
    hits = total = 0
    by_query = np.zeros((2, tokens.shape[1]))
    with torch.no_grad():
        for i in range(batches):
            x = tokens[i * BATCH:(i + 1) * BATCH]
            if len(x) == 0:
                break
            answer = mask[i * BATCH:(i + 1) * BATCH, 1:]
            correct = (model(x[:, :-1]).argmax(-1) == x[:, 1:]) & answer
            hits += correct.sum().item()
            total += answer.sum().item()
            query_index = answer.cumsum(1) - 1
            for j in range(int(answer.sum(1).max())):
                at_j = answer & (query_index == j)
                by_query[0, j] += (correct & at_j).sum().item()
                by_query[1, j] += at_j.sum().item()
    model.train()
    asked = by_query[1] > 0
    return hits / max(total, 1), 100 * by_query[0, asked] / by_query[1, asked]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('run_dir', help='an engine run folder with data/train.stok and data/heldout.stok')
    parser.add_argument('--layers', type=int, default=2)
    parser.add_argument('--width', type=int, default=192)
    parser.add_argument('--no-rope', action='store_true')
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--steps', type=int, default=4000)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    train_tokens, train_mask = read_stok(f'{args.run_dir}/data/train.stok')
    heldout_tokens, heldout_mask = read_stok(f'{args.run_dir}/data/heldout.stok')
    model = Transformer(args.layers, args.width, rope=not args.no_rope)
    matrices = [p for p in model.parameters() if p.dim() > 1]
    vectors = [p for p in model.parameters() if p.dim() <= 1]
    optimizer = torch.optim.AdamW([{'params': matrices, 'weight_decay': 0.1}, {'params': vectors, 'weight_decay': 0.0}],
                                  lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    for step in range(1, args.steps + 1):
        for group in optimizer.param_groups:
            group['lr'] = args.lr * min(1.0, step / 20)
        start = ((step - 1) * BATCH) % len(train_tokens)
        x, answer = train_tokens[start:start + BATCH], train_mask[start:start + BATCH, 1:]
        targets = x[:, 1:].clone()
        targets[~answer] = -100
        loss = F.cross_entropy(model(x[:, :-1]).reshape(-1, VOCAB), targets.reshape(-1), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 250 == 0:
            accuracy, by_query = recall(model, heldout_tokens, heldout_mask)
            order = ' '.join(f'{v:.0f}' for v in by_query) if len(by_query) <= 8 else '-'
            print(f'step {step} loss {loss.item():.3f} recall {100 * accuracy:.1f}%  by query order {order}', flush=True)


if __name__ == '__main__':
    main()
