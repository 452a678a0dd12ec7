#!/usr/bin/env node
// Side-by-side tokenizer throughput on the same corpus files (tests/golden/corpus), single
// thread on the same machine: Turnout (bench/tokenizer_bench, Google Benchmark JSON), the
// npm `tiktoken` WASM build of OpenAI's tiktoken (the reference) and `gpt-tokenizer`.
//
//   (cd scripts/tokenizer-ref && npm ci)
//   node bench/tokenizer_compare.mjs [path/to/tokenizer_bench]   (default build/bench/tokenizer_bench)
//
// Prints MB/s per encoding, category and mode (count-only, ids) and Turnout's ratio to each.
// Times are CPU times where available (Google Benchmark's cpu_time; process.cpuUsage in node)
// so other load on a shared machine distorts them less.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const require = createRequire(path.join(repo, 'scripts', 'tokenizer-ref', 'package.json'));
const { get_encoding } = require('tiktoken');

const ENCODINGS = ['cl100k_base', 'o200k_base'];
const CATEGORIES = ['english', 'code', 'multilingual', 'adversarial'];
const MIN_SECONDS = 1.0;
const benchBinary = process.argv[2] ?? path.join(repo, 'build', 'bench', 'tokenizer_bench');

const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
const corpus = Object.fromEntries(CATEGORIES.map((category) => {
  const bytes = readFileSync(path.join(repo, 'tests', 'golden', 'corpus', `${category}.txt`));
  return [category, { bytes: bytes.length, text: decoder.decode(bytes) }];
}));

const cpuSeconds = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

// MB/s of fn(text), repeated for at least MIN_SECONDS of CPU time after one warm-up call.
function throughput(fn, { bytes, text }) {
  fn(text);
  let runs = 0;
  const start = cpuSeconds();
  let elapsed = 0;
  do {
    fn(text);
    runs++;
    elapsed = cpuSeconds() - start;
  } while (elapsed < MIN_SECONDS);
  return (bytes * runs) / elapsed / 1e6;
}

function javascriptResults() {
  const results = {};
  for (const name of ENCODINGS) {
    const reference = get_encoding(name);
    const gpt = require(`gpt-tokenizer/cjs/encoding/${name}`);
    const noSpecial = { allowedSpecial: new Set(), disallowedSpecial: new Set() };
    for (const category of CATEGORIES) {
      const input = corpus[category];
      const referenceMBs = throughput((text) => reference.encode_ordinary(text).length, input);
      results[`${name}/${category}/count/tiktoken`] = referenceMBs;
      results[`${name}/${category}/ids/tiktoken`] = referenceMBs;  // the WASM build has no count-only call
      results[`${name}/${category}/count/gpt-tokenizer`] = throughput((text) => gpt.countTokens(text, noSpecial), input);
      results[`${name}/${category}/ids/gpt-tokenizer`] = throughput((text) => gpt.encode(text, noSpecial).length, input);
    }
    reference.free();
  }
  return results;
}

function turnoutResults() {
  const json = execFileSync(benchBinary, ['--benchmark_filter=^Corpus/', '--benchmark_format=json',
    '--benchmark_min_time=0.5'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const results = {};
  for (const run of JSON.parse(json).benchmarks) {
    // Corpus/<encoding>/<category>/<mode>; bytes_per_second is per CPU second.
    const [, name, category, mode] = run.name.split('/');
    results[`${name}/${category}/${mode}/turnout`] = run.bytes_per_second / 1e6;
  }
  return results;
}

const results = { ...turnoutResults(), ...javascriptResults() };
const pad = (value, width) => String(value).padStart(width);
console.log(`${'encoding/category/mode'.padEnd(34)}${pad('turnout', 10)}${pad('tiktoken', 10)}`
  + `${pad('gpt-tok', 10)}${pad('vs tiktoken', 13)}${pad('vs gpt-tok', 12)}   (MB/s)`);
for (const name of ENCODINGS) {
  for (const category of CATEGORIES) {
    for (const mode of ['count', 'ids']) {
      const key = `${name}/${category}/${mode}`;
      const turnout = results[`${key}/turnout`];
      const reference = results[`${key}/tiktoken`];
      const gpt = results[`${key}/gpt-tokenizer`];
      console.log(`${key.padEnd(34)}${pad(turnout.toFixed(1), 10)}${pad(reference.toFixed(2), 10)}`
        + `${pad(gpt.toFixed(2), 10)}${pad(`${(turnout / reference).toFixed(1)}x`, 13)}`
        + `${pad(`${(turnout / gpt).toFixed(1)}x`, 12)}`);
    }
  }
}
