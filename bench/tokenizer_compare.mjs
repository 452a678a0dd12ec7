#!/usr/bin/env node
// Side-by-side tokenizer throughput on the same corpus files (tests/golden/corpus), single
// thread on the same machine: Turnout (bench/tokenizer_bench, Google Benchmark JSON), the
// npm `tiktoken` WASM build of OpenAI's tiktoken (the reference) and `gpt-tokenizer`.
//
//   (cd scripts/tokenizer-ref && npm ci)
//   node bench/tokenizer_compare.mjs [path/to/tokenizer_bench]   (default build/bench/tokenizer_bench)
//
// Prints MB/s per encoding, category and mode (count-only, ids) and Turnout's ratios.
// Both Turnout and gpt-tokenizer keep a cache of pieces across calls (tiktoken does not),
// so each is measured twice: cold (caches cleared before every call: text never seen) and
// warm (caches kept: the same text again, as a gateway re-counting a re-sent chat history
// sees). Cold is compared with cold and warm with warm.
// The machines this runs on are shared and their speed drifts by tens of percent within
// minutes, so the tokenizers are not measured one after the other over the whole corpus
// set: each round measures, for one encoding and category at a time, the reference, then
// Turnout, then gpt-tokenizer, a few seconds apart, and a ratio is taken within the round.
// Each figure (MB/s and ratio) is the median over TOKENIZER_COMPARE_REPETITIONS rounds
// (default 3).
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
// Each figure is the median over this many rounds (the machines are noisy).
const REPETITIONS = Number(process.env.TOKENIZER_COMPARE_REPETITIONS ?? 3);
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

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

// MB/s of fn(text), repeating fn for at least MIN_SECONDS of CPU time after one warm-up call.
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

// One round for one encoding and category: MB/s by `<mode>/<tokenizer>`, each measured once.
function measureRound(name, category, reference, gpt) {
  const input = corpus[category];
  const noSpecial = { allowedSpecial: new Set(), disallowedSpecial: new Set() };
  const results = {};
  const referenceMBs = throughput((text) => reference.encode_ordinary(text).length, input);
  results['count/tiktoken'] = referenceMBs;
  results['ids/tiktoken'] = referenceMBs;  // the WASM build has no count-only call
  Object.assign(results, turnoutRound(name, category));
  results['count/gpt-warm'] = throughput((text) => gpt.countTokens(text, noSpecial), input);
  results['ids/gpt-warm'] = throughput((text) => gpt.encode(text, noSpecial).length, input);
  results['count/gpt-cold'] = throughput((text) => {
    gpt.clearMergeCache();
    return gpt.countTokens(text, noSpecial);
  }, input);
  results['ids/gpt-cold'] = throughput((text) => {
    gpt.clearMergeCache();
    return gpt.encode(text, noSpecial).length;
  }, input);
  return results;
}

// Turnout's four benchmarks for one encoding and category (count, ids; cold, warm), once.
function turnoutRound(name, category) {
  const json = execFileSync(benchBinary, [`--benchmark_filter=^Corpus/${name}/${category}/`,
    '--benchmark_format=json', `--benchmark_min_time=${MIN_SECONDS}`],
  { encoding: 'utf8', maxBuffer: 64 << 20 });
  const results = {};
  for (const run of JSON.parse(json).benchmarks) {
    // Corpus/<encoding>/<category>/<mode>[/warm]; bytes_per_second is per CPU second.
    const [, , , mode, warm] = run.run_name.split('/');
    results[`${mode}/turnout-${warm ? 'warm' : 'cold'}`] = run.bytes_per_second / 1e6;
  }
  return results;
}

const pad = (value, width) => String(value).padStart(width);
const columns = [['turnout', 'turnout-cold'], ['warm', 'turnout-warm'], ['tiktoken', 'tiktoken'],
  ['gpt-tok', 'gpt-cold'], ['gpt warm', 'gpt-warm']];
// tiktoken keeps no cache, so both of Turnout's figures are compared with its one.
const ratios = [['cold/tiktoken', 'turnout-cold', 'tiktoken'], ['warm/tiktoken', 'turnout-warm', 'tiktoken'],
  ['cold/gpt-tok', 'turnout-cold', 'gpt-cold'], ['warm/gpt warm', 'turnout-warm', 'gpt-warm']];

// rounds[key] = one `<mode>/<tokenizer>` -> MB/s object per round, key = encoding/category.
const rounds = {};
for (let round = 0; round < REPETITIONS; round++) {
  for (const name of ENCODINGS) {
    const reference = get_encoding(name);
    const gpt = require(`gpt-tokenizer/cjs/encoding/${name}`);
    for (const category of CATEGORIES) {
      (rounds[`${name}/${category}`] ??= []).push(measureRound(name, category, reference, gpt));
    }
    reference.free();
  }
}

console.log('encoding/category/mode'.padEnd(30) + columns.map(([title]) => pad(title, 9)).join('')
  + ratios.map(([title]) => pad(title, 15)).join('') + '   (MB/s; medians over rounds)');
for (const name of ENCODINGS) {
  for (const category of CATEGORIES) {
    for (const mode of ['count', 'ids']) {
      const measured = rounds[`${name}/${category}`];
      const value = (column) => median(measured.map((r) => r[`${mode}/${column}`]));
      const ratio = (a, b) => median(measured.map((r) => r[`${mode}/${a}`] / r[`${mode}/${b}`]));
      console.log(`${name}/${category}/${mode}`.padEnd(30) + columns.map(([, column]) => pad(value(column).toFixed(1), 9)).join('')
        + ratios.map(([, a, b]) => pad(`${ratio(a, b).toFixed(1)}x`, 15)).join(''));
    }
  }
}
