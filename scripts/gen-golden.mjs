#!/usr/bin/env node
// Generates the tokenizer's golden data with the reference implementation: the npm
// `tiktoken` package (the WASM build of OpenAI's tiktoken), run by node.
//
//   cd scripts/tokenizer-ref && npm ci && cd ../.. && node scripts/gen-golden.mjs
//
// Writes
//   tests/golden/corpus/{english,code,multilingual,adversarial}.txt
//       ~256 KB per category, assembled from texts on a Debian machine (licenses, C and
//       Python sources, gettext catalogs and man pages in many languages) and synthetic
//       edge cases; also the benchmark's corpus.
//   tests/golden/tokenizer_cases.tsv
//       one case per line: base64(input bytes) or @corpus/<file>, then for cl100k_base
//       and o200k_base: the token count and either the ids (space-separated) or, for large
//       inputs, "fnv1a64:<hex>" of the ids (FNV-1a over each id as 4 little-endian bytes).
//
// Inputs are bytes. The reference takes strings, so bytes are decoded the way tiktoken's
// users decode them (errors="replace": each maximal invalid subpart becomes U+FFFD, which
// is also what TextDecoder does; ignoreBOM keeps a leading U+FEFF as Python does).
// Special-token text is ordinary text (encode_ordinary).
// The output is deterministic for a given machine (seeded PRNG, sorted file lists).
import { lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const goldenDir = path.join(repo, 'tests', 'golden');
const require = createRequire(path.join(here, 'tokenizer-ref', 'package.json'));
const { get_encoding } = require('tiktoken');

const ENCODINGS = ['cl100k_base', 'o200k_base'];
const encoders = ENCODINGS.map((name) => get_encoding(name));
const CORPUS_BYTES = 256 * 1024;
const IDS_INLINE_LIMIT = 512;   // inputs longer than this store a digest of the ids

// ---- deterministic randomness -------------------------------------------------------
function makeRandom(seed) {
  let state = seed >>> 0;
  const next = () => {  // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (list) => list[Math.floor(next() * list.length)],
  };
}
const random = makeRandom(20240601);

// ---- sources on the machine ---------------------------------------------------------
const listFiles = (dir, filter = () => true) => {
  try {
    return readdirSync(dir).sort().map((f) => path.join(dir, f))
      .filter((f) => { try { return lstatSync(f).isFile() && filter(f); } catch { return false; } });
  } catch { return []; }
};
const readText = (file) => (file.endsWith('.gz') ? gunzipSync(readFileSync(file)) : readFileSync(file));

// Translated strings of a gettext .mo catalog (UTF-8 catalogs only).
function moStrings(file) {
  const data = readFileSync(file);
  if (data.length < 28) return [];
  const magic = data.readUInt32LE(0);
  const read = magic === 0x950412de ? (o) => data.readUInt32LE(o) : (o) => data.readUInt32BE(o);
  if (magic !== 0x950412de && magic !== 0xde120495) return [];
  const count = read(8);
  const translations = read(16);
  const strings = [];
  for (let i = 0; i < count; i++) {
    const length = read(translations + i * 8);
    const offset = read(translations + i * 8 + 4);
    if (offset + length > data.length) break;
    strings.push(data.subarray(offset, offset + length).toString('utf8'));
  }
  if (!/charset=utf-8/i.test(strings[0] ?? '')) return [];
  return strings.slice(1).filter((s) => s.length > 0);
}

function takeUpTo(texts, bytes) {
  const parts = [];
  let total = 0;
  for (const text of texts) {
    if (total >= bytes) break;
    const buffer = Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8');
    parts.push(buffer);
    total += buffer.length;
  }
  return truncateUtf8(Buffer.concat(parts), bytes);
}

function truncateUtf8(buffer, bytes) {
  let end = Math.min(bytes, buffer.length);
  while (end > 0 && end < buffer.length && (buffer[end] & 0xc0) === 0x80) end--;
  return buffer.subarray(0, end);
}

function englishCorpus() {
  // Licenses first, then package copyright notices until the corpus is full.
  const licenses = listFiles('/usr/share/common-licenses').map(readText);
  const copyrights = readdirSync('/usr/share/doc').sort()
    .flatMap((pkg) => listFiles(path.join('/usr/share/doc', pkg), (f) => f.endsWith('/copyright')))
    .map(readText);
  return takeUpTo([...licenses, ...copyrights], CORPUS_BYTES);
}

function codeCorpus() {
  const headers = listFiles('/usr/include', (f) => f.endsWith('.h')).slice(0, 60).map(readText);
  const python = listFiles('/usr/lib/python3.11', (f) => f.endsWith('.py')).slice(0, 40).map(readText);
  const interleaved = [];
  for (let i = 0; i < Math.max(headers.length, python.length); i++) {
    if (i < headers.length) interleaved.push(headers[i]);
    if (i < python.length) interleaved.push(python[i]);
  }
  return takeUpTo(interleaved, CORPUS_BYTES);
}

function multilingualCorpus() {
  // Language names and messages in every language the catalogs cover, plus man pages
  // in Japanese, Korean, Russian and Chinese.
  const byLanguage = new Map();
  for (const lang of readdirSync('/usr/share/locale').sort()) {
    const dir = path.join('/usr/share/locale', lang, 'LC_MESSAGES');
    const strings = listFiles(dir, (f) => f.endsWith('.mo')).slice(0, 3).flatMap(moStrings);
    if (strings.length) byLanguage.set(lang, strings.join('\n'));
  }
  const languages = [...byLanguage.keys()];
  const perLanguage = Math.floor((CORPUS_BYTES * 0.7) / Math.max(1, languages.length));
  const pieces = languages.map((lang) => truncateUtf8(Buffer.from(byLanguage.get(lang)), perLanguage));
  for (const lang of ['ja', 'ko', 'ru', 'zh_CN']) {
    const pages = listFiles(path.join('/usr/share/man', lang, 'man1'), (f) => f.endsWith('.gz')).slice(0, 3);
    pieces.push(...pages.map((f) => truncateUtf8(readText(f), 20000)));
  }
  return takeUpTo(pieces, CORPUS_BYTES);
}

// ---- synthetic edge cases -----------------------------------------------------------
const ATOMS = [
  // whitespace, including the White_Space code points the regex crate knows and some
  // that look like whitespace but are not (U+FEFF, U+180E, U+200B, U+001C)
  ' ', '  ', '   ', '\n', '\n\n', '\r\n', '\r', '\r\r\n', '\t', '\v', '\f', '\u0085', '\u00a0',
  '\u1680', '\u2000', '\u2009', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\ufeff',
  '\u180e', '\u200b', '\u001c',
  // contractions in every case, and look-alikes
  "'", "'s", "'S", "'t", "'T", "'re", "'RE", "'Re", "'rE", "'ve", "'VE", "'m", "'M", "'ll", "'LL",
  "'lL", "'d", "'D", "'\u017f", "\u2019s", "''", "'x",
  // letters of every kind the o200k pattern distinguishes
  'a', 'b', 's', 'Z', 'Hello', 'WORLD', 'camelCase', 'HTTPServer', 'don', 'I', '\u01c5', '\u02b0',
  '\u05d0', '\u00df', '\u0130', '\u0131', '\u00e9', 'e\u0301', '\u0301', '\u0308', '\u20dd',
  'na\u00efve', '\ud835\udd18\ud835\udd2b', '\u{2ebf0}', '\u{10d50}', '\u{105c0}', '\u{323b0}',
  '\u0295', '\u0295Ab', 'A\u0295b', '\u02b0A', 'A\u02b0', '\u01c5a', 'DŽ', 'Ǆa', '\u212a', 'K\u0301b',
  // numbers
  '0', '1', '12', '123', '1234', '12345678', '\u0663', '\u00bd', '\u216b', '\u00b2', '\u{1d7d8}',
  // punctuation and symbols
  '.', ',', '!', '?', '...', '/', '//', '\\', '-', '--', '\u2014', '"', '(', ')', '{', '}', '#', '$',
  '@', '*', '=>', '</', '/>', '://',
  // text that looks like special tokens
  '<|endoftext|>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>', '<|endofprompt|>', '<|',
  // scripts
  '\u65e5\u672c\u8a9e', '\u4e2d\u6587', '\ud55c\uad6d\uc5b4', '\u041f\u0440\u0438\u0432\u0435\u0442',
  '\u0645\u0631\u062d\u0628\u0627', '\u0928\u092e\u0938\u094d\u0924\u0947', '\u0e20\u0e32\u0e29\u0e32',
  '\u10e5\u10d0\u10e0\u10d7\u10e3\u10da\u10d8', '\u1200\u12a0',
  // emoji, ZWJ sequences, variation selectors, skin tones, flags
  '\ud83d\ude00', '\ud83d\udc4d\ud83c\udffd', '\ud83d\udc68\u200d\ud83d\udc69\u200d\ud83d\udc67\u200d\ud83d\udc66',
  '\ud83c\udff3\ufe0f\u200d\ud83c\udf08', '\u200d', '\ufe0f', '\ud83c\uddfa\ud83c\uddf8', '\u2764\ufe0f',
  // controls, private use, noncharacters, the last code point
  '\0', '\u0001', '\u007f', '\ue000', '\ufffd', '\ufffe', '\u{10ffff}',
];
// Bytes that are not valid UTF-8: stray continuation bytes, overlong forms, surrogates
// (as from a lone "\ud800" in WTF-8), code points above U+10FFFF, truncated sequences.
const INVALID_BYTES = [
  [0x80], [0xbf], [0xff], [0xfe], [0xc0, 0xaf], [0xc1, 0xbf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80], [0xe2, 0x82], [0xf0, 0x9f, 0x98],
  [0xc3], [0xe2], [0xf0, 0x9f], [0xc3, 0x28], [0xe2, 0x28, 0xa1], [0xf8, 0x88, 0x80, 0x80, 0x80],
];

function atomBytes(r) {
  if (r.next() < 0.06) return Buffer.from(r.pick(INVALID_BYTES));
  return Buffer.from(r.pick(ATOMS), 'utf8');
}

function syntheticCase(r) {
  const parts = [];
  const atoms = 1 + r.int(r.next() < 0.8 ? 8 : 40);
  for (let i = 0; i < atoms; i++) parts.push(atomBytes(r));
  return Buffer.concat(parts);
}

function runCase(r) {
  const unit = Buffer.from(r.pick(['a', 'A', ' ', '1', '!', '\n', '\r\n', '\t', '\u00a0', '\u3000',
    '\u0085', '\ud83d\ude00', '\u65e5', 'ab', 'ha', '.-', '=', '\u0301', "'s", '\u00e9']), 'utf8');
  const repeats = r.pick([2, 3, 4, 7, 16, 33, 100, 257, 1000, 2500]);
  const parts = [];
  if (r.next() < 0.5) parts.push(atomBytes(r));
  for (let i = 0; i < repeats; i++) parts.push(unit);
  if (r.next() < 0.5) parts.push(atomBytes(r));
  return Buffer.concat(parts);
}

function randomBytesCase(r) {
  const length = 1 + r.int(64);
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = r.next() < 0.5 ? 0x20 + r.int(0x5f) : r.int(256);
  return bytes;
}

function adversarialCorpus() {
  const r = makeRandom(7);
  const parts = [];
  let total = 0;
  while (total < CORPUS_BYTES) {
    const kind = r.next();
    const part = kind < 0.5 ? syntheticCase(r) : kind < 0.8 ? runCase(r) : randomBytesCase(r);
    parts.push(part);
    total += part.length;
  }
  return Buffer.concat(parts).subarray(0, CORPUS_BYTES);
}

// Slices of a corpus, mostly on character boundaries, sometimes cutting one.
function corpusSlice(r, corpus) {
  const roll = r.next();
  const length = roll < 0.65 ? 1 + r.int(64) : roll < 0.95 ? 64 + r.int(320) : 512 + r.int(3584);
  let start = r.int(Math.max(1, corpus.length - length));
  let end = Math.min(corpus.length, start + length);
  if (r.next() < 0.9) {
    while (start > 0 && (corpus[start] & 0xc0) === 0x80) start--;
    while (end < corpus.length && (corpus[end] & 0xc0) === 0x80) end++;
  }
  return corpus.subarray(start, end);
}

// ---- reference encoding and output --------------------------------------------------
const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

function fnv1a64(ids) {
  let hash = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  const mask = 0xffffffffffffffffn;
  for (const id of ids) {
    for (let shift = 0; shift < 32; shift += 8) {
      hash ^= BigInt((id >>> shift) & 0xff);
      hash = (hash * prime) & mask;
    }
  }
  return hash.toString(16).padStart(16, '0');
}

function referenceFields(bytes) {
  const text = decoder.decode(bytes);
  return encoders.flatMap((encoder) => {
    const ids = Array.from(encoder.encode_ordinary(text));
    const idsField = bytes.length > IDS_INLINE_LIMIT ? `fnv1a64:${fnv1a64(ids)}` : ids.join(' ');
    return [String(ids.length), idsField];
  });
}

function main() {
  mkdirSync(path.join(goldenDir, 'corpus'), { recursive: true });
  const corpora = {
    english: englishCorpus(),
    code: codeCorpus(),
    multilingual: multilingualCorpus(),
    adversarial: adversarialCorpus(),
  };
  const lines = [];
  for (const [name, bytes] of Object.entries(corpora)) {
    writeFileSync(path.join(goldenDir, 'corpus', `${name}.txt`), bytes);
    lines.push([`@corpus/${name}.txt`, ...referenceFields(bytes)].join('\t'));
  }
  const cases = [];
  const seen = new Set();
  const add = (bytes) => {
    const key = bytes.toString('base64');
    if (seen.has(key)) return;
    seen.add(key);
    cases.push(bytes);
  };
  // Every atom alone, and every atom between letters and spaces.
  for (const atom of ATOMS) {
    add(Buffer.from(atom, 'utf8'));
    add(Buffer.from(`a${atom}b`, 'utf8'));
    add(Buffer.from(` ${atom} `, 'utf8'));
    add(Buffer.from(`A${atom}'s\n`, 'utf8'));
  }
  for (const bytes of INVALID_BYTES) {
    add(Buffer.from(bytes));
    add(Buffer.concat([Buffer.from('ab'), Buffer.from(bytes), Buffer.from(' cd')]));
  }
  for (const name of Object.keys(corpora)) {
    if (name === 'adversarial') continue;
    for (let i = 0; i < 1100; i++) add(corpusSlice(random, corpora[name]));
  }
  for (let i = 0; i < 1800; i++) add(syntheticCase(random));
  for (let i = 0; i < 150; i++) add(runCase(random));
  // Pieces longer than the short-merge limit (128 bytes): words, CJK sentences, base64.
  for (let i = 0; i < 60; i++) {
    const unit = random.pick(['abcdefghijklmnopqrstuvwxyz', 'Donaudampfschifffahrts', '\u65e5\u672c\u8a9e\u306e\u6587\u7ae0',
      '\u0416\u0438\u0432\u0451\u0442', 'QUJDREVGR0g', '\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22']);
    add(Buffer.from(unit.repeat(2 + random.int(40)).slice(random.int(5)), 'utf8'));
  }
  for (let i = 0; i < 300; i++) add(randomBytesCase(random));
  for (const bytes of cases) lines.push([bytes.toString('base64'), ...referenceFields(bytes)].join('\t'));
  writeFileSync(path.join(goldenDir, 'tokenizer_cases.tsv'), `${lines.join('\n')}\n`);
  console.log(`${cases.length} cases + ${Object.keys(corpora).length} corpus files`);
}

main();
