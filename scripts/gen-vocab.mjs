#!/usr/bin/env node
// Derives data/<encoding>.tiktoken (the standard "base64-token rank" per line format)
// from the vocabularies shipped in the npm `tiktoken` package (MIT), and writes
// data/SHA256SUMS. Run once after `npm ci` in scripts/tokenizer-ref:
//   node scripts/gen-vocab.mjs
// The output is byte-identical to OpenAI's published files, so the sha256 values are
// checked against the hashes tiktoken itself pins (tiktoken_ext/openai_public.py).
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const require = createRequire(path.join(here, 'tokenizer-ref', 'package.json'));

// The hashes tiktoken verifies its downloads against.
const OPENAI_SHA256 = {
  cl100k_base: '223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7',
  o200k_base: '446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d',
};

// The npm package stores ranks compactly: each line is "<ignored> <first-rank> <b64>...",
// with consecutive ranks from first-rank on.
function expandRanks(compact) {
  const entries = [];
  for (const line of compact.split('\n')) {
    if (!line) continue;
    const [, firstRank, ...tokens] = line.split(' ');
    tokens.forEach((token, i) => entries.push([token, Number.parseInt(firstRank, 10) + i]));
  }
  entries.sort((a, b) => a[1] - b[1]);
  return entries;
}

const sums = [];
for (const name of Object.keys(OPENAI_SHA256)) {
  const { bpe_ranks: compact } = require(`tiktoken/encoders/${name}.json`);
  const text = expandRanks(compact).map(([token, rank]) => `${token} ${rank}\n`).join('');
  const file = `${name}.tiktoken`;
  writeFileSync(path.join(repo, 'data', file), text);
  const digest = createHash('sha256').update(text).digest('hex');
  if (digest !== OPENAI_SHA256[name]) {
    console.error(`${file}: sha256 ${digest} differs from OpenAI's ${OPENAI_SHA256[name]}`);
    process.exitCode = 1;
  }
  sums.push(`${digest}  ${file}\n`);
  console.log(`${file}: ${text.length} bytes, sha256 ${digest}`);
}
writeFileSync(path.join(repo, 'data', 'SHA256SUMS'), sums.join(''));
