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
// Each figure is a median of TOKENIZER_COMPARE_REPETITIONS (default 3) measurements.
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
// Each figure is the median of this many measurements (the machines are noisy).
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

// MB/s of fn(text): the median of REPETITIONS measurements, each repeating fn for at
// least MIN_SECONDS of CPU time, after one warm-up call.
function throughput(fn, { bytes, text }) {
  fn(text);
  const measurements = [];
  for (let repetition = 0; repetition < REPETITIONS; repetition++) {
    let runs = 0;
    const start = cpuSeconds();
    let elapsed = 0;
    do {
      fn(text);
      runs++;
      elapsed = cpuSeconds() - start;
    } while (elapsed < MIN_SECONDS);
    measurements.push((bytes * runs) / elapsed / 1e6);
  }
  return median(measurements);
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
      results[`${name}/${category}/count/gpt-warm`] = throughput((text) => gpt.countTokens(text, noSpecial), input);
      results[`${name}/${category}/ids/gpt-warm`] = throughput((text) => gpt.encode(text, noSpecial).length, input);
      results[`${name}/${category}/count/gpt-cold`] = throughput((text) => {
        gpt.clearMergeCache();
        return gpt.countTokens(text, noSpecial);
      }, input);
      results[`${name}/${category}/ids/gpt-cold`] = throughput((text) => {
        gpt.clearMergeCache();
        return gpt.encode(text, noSpecial).length;
      }, input);
    }
    reference.free();
  }
  return results;
}

function turnoutResults() {
  const json = execFileSync(benchBinary, ['--benchmark_filter=^Corpus/', '--benchmark_format=json',
    '--benchmark_min_time=0.5', `--benchmark_repetitions=${REPETITIONS}`, '--benchmark_report_aggregates_only=true'],
  { encoding: 'utf8', maxBuffer: 64 << 20 });
  const results = {};
  for (const run of JSON.parse(json).benchmarks) {
    if (REPETITIONS > 1 && run.aggregate_name !== 'median') continue;
    // Corpus/<encoding>/<category>/<mode>[/warm]; bytes_per_second is per CPU second.
    const [, name, category, mode, warm] = run.run_name.split('/');
    results[`${name}/${category}/${mode}/turnout-${warm ? 'warm' : 'cold'}`] = run.bytes_per_second / 1e6;
  }
  return results;
}

const results = { ...turnoutResults(), ...javascriptResults() };
const pad = (value, width) => String(value).padStart(width);
const columns = [['turnout', 'turnout-cold'], ['warm', 'turnout-warm'], ['tiktoken', 'tiktoken'],
  ['gpt-tok', 'gpt-cold'], ['gpt warm', 'gpt-warm']];
const ratios = [['cold/tiktoken', 'turnout-cold', 'tiktoken'], ['cold/gpt-tok', 'turnout-cold', 'gpt-cold'],
  ['warm/gpt warm', 'turnout-warm', 'gpt-warm']];
console.log('encoding/category/mode'.padEnd(30) + columns.map(([title]) => pad(title, 9)).join('')
  + ratios.map(([title]) => pad(title, 15)).join('') + '   (MB/s)');
for (const name of ENCODINGS) {
  for (const category of CATEGORIES) {
    for (const mode of ['count', 'ids']) {
      const key = `${name}/${category}/${mode}`;
      const value = (column) => results[`${key}/${column}`];
      console.log(key.padEnd(30) + columns.map(([, column]) => pad(value(column).toFixed(1), 9)).join('')
        + ratios.map(([, a, b]) => pad(`${(value(a) / value(b)).toFixed(1)}x`, 15)).join(''));
    }
  }
}
