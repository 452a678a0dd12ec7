#!/usr/bin/env node
// Per-script benchmark corpora for the tokenizer (issue 22): one file per kind of text, so
// CJK, Indic, Cyrillic, Arabic, emoji, digits and invalid bytes are measured apart instead
// of blended into tests/golden/corpus/multilingual.txt.
//
//   node scripts/tokenizer-corpora.mjs [OUT_DIR] [BYTES]   (default build/tokenizer-corpora, 524288)
//
// Writes OUT_DIR/{cjk,indic,cyrillic_greek,arabic_hebrew,emoji,digits,invalid,english_man}.txt
// from texts on a Debian machine (gettext catalogs, man pages, compressed files read as
// bytes) and seeded synthetic text (emoji, digits); deterministic for a given machine.
// Each file mixes its languages in 4 KB slices, round robin, so every script is present
// throughout. Needs no npm packages: exactness on these files is checked by comparing
// builds (scripts/tokenizer-ab.sh fails on any differing token) and against the golden
// corpora, which carry the reference's ids.
import { lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const outDir = path.resolve(process.argv[2] ?? path.join(repo, 'build', 'tokenizer-corpora'));
const BYTES = Number(process.argv[3] ?? 512 * 1024);
const SLICE = 4096;

function makeRandom(seed) {  // mulberry32, as scripts/gen-golden.mjs
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (list) => list[Math.floor(next() * list.length)] };
}

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
  if (magic !== 0x950412de && magic !== 0xde120495) return [];
  const read = magic === 0x950412de ? (o) => data.readUInt32LE(o) : (o) => data.readUInt32BE(o);
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

function truncateUtf8(buffer, bytes) {
  let end = Math.min(bytes, buffer.length);
  while (end > 0 && end < buffer.length && (buffer[end] & 0xc0) === 0x80) end--;
  return buffer.subarray(0, end);
}

// All text of one language: its catalogs' translations, then its man pages.
function languageText(lang) {
  const catalogs = listFiles(path.join('/usr/share/locale', lang, 'LC_MESSAGES'), (f) => f.endsWith('.mo'));
  const parts = catalogs.flatMap(moStrings).map((s) => Buffer.from(`${s}\n`, 'utf8'));
  for (const section of ['man1', 'man5', 'man8']) {
    for (const page of listFiles(path.join('/usr/share/man', lang, section), (f) => f.endsWith('.gz'))) {
      parts.push(readText(page));
    }
  }
  return Buffer.concat(parts);
}

// 4 KB slices of each language in turn (cut on character boundaries) until `bytes`.
function interleave(languages, bytes) {
  const texts = languages.map(languageText).filter((t) => t.length > 0);
  const offsets = texts.map(() => 0);
  const parts = [];
  let total = 0;
  while (total < bytes && texts.some((t, i) => offsets[i] < t.length)) {
    texts.forEach((text, i) => {
      if (total >= bytes || offsets[i] >= text.length) return;
      const slice = truncateUtf8(text.subarray(offsets[i]), SLICE);
      offsets[i] += Math.max(1, slice.length);
      parts.push(slice);
      total += slice.length;
    });
  }
  return truncateUtf8(Buffer.concat(parts), bytes);
}

// Chat-like lines of short words with emoji of every kind: single code points, skin
// tones, ZWJ families, flags, keycaps, variation selectors, runs of the same emoji.
function emojiText(bytes) {
  const r = makeRandom(22);
  const words = ['ok', 'lol', 'thanks', 'see you', 'great', 'wow', 'love it', 'good night', 'yes', 'no',
    'merci', 'danke', 'gracias', '好的', 'ありがとう', 'спасибо'];
  const emoji = () => {
    const kind = r.next();
    if (kind < 0.55) return String.fromCodePoint(0x1f300 + r.int(0x1fa6f - 0x1f300));
    if (kind < 0.65) return String.fromCodePoint(0x1f44a + r.int(6), 0x1f3fb + r.int(5));
    if (kind < 0.72) return '\u{1f468}\u200d\u{1f469}\u200d\u{1f467}\u200d\u{1f466}';
    if (kind < 0.8) return String.fromCodePoint(0x1f1e6 + r.int(26), 0x1f1e6 + r.int(26));
    if (kind < 0.85) return `${r.int(10)}\ufe0f\u20e3`;
    if (kind < 0.92) return String.fromCodePoint(0x2600 + r.int(0x300)) + '\ufe0f';
    return String.fromCodePoint(0x1f600 + r.int(0x50)).repeat(2 + r.int(6));
  };
  const lines = [];
  let total = 0;
  while (total < bytes) {
    let line = '';
    const n = 1 + r.int(10);
    for (let i = 0; i < n; i++) {
      line += r.next() < 0.5 ? emoji() : `${r.pick(words)}`;
      if (r.next() < 0.6) line += ' ';
    }
    lines.push(line);
    total += Buffer.byteLength(line) + 1;
  }
  return truncateUtf8(Buffer.from(lines.join('\n'), 'utf8'), bytes);
}

// Numbers as they come in prompts: CSV rows, long ids, decimals, dates, phone numbers.
function digitText(bytes) {
  const r = makeRandom(2022);
  const digits = (n) => Array.from({ length: n }, () => r.int(10)).join('');
  const lines = [];
  let total = 0;
  while (total < bytes) {
    const kind = r.next();
    let line;
    if (kind < 0.4) line = Array.from({ length: 4 + r.int(8) }, () => digits(1 + r.int(7))).join(',');
    else if (kind < 0.6) line = digits(20 + r.int(200));
    else if (kind < 0.75) line = Array.from({ length: 3 + r.int(6) }, () => `${digits(1 + r.int(5))}.${digits(1 + r.int(6))}`).join(' ');
    else if (kind < 0.9) line = `20${digits(2)}-${digits(2)}-${digits(2)} ${digits(2)}:${digits(2)}:${digits(2)} ${digits(9)}`;
    else line = `+${digits(2)} ${digits(3)} ${digits(3)} ${digits(4)}`;
    lines.push(line);
    total += line.length + 1;
  }
  return Buffer.from(lines.join('\n').slice(0, bytes), 'latin1');
}

// Bytes that are mostly not UTF-8: compressed man pages read as text.
function invalidBytes(bytes) {
  const pages = listFiles('/usr/share/man/man1', (f) => f.endsWith('.gz')).map((f) => readFileSync(f));
  return Buffer.concat(pages).subarray(0, bytes);
}

function englishManPages(bytes) {
  const pages = listFiles('/usr/share/man/man1', (f) => f.endsWith('.gz')).map(readText);
  return truncateUtf8(Buffer.concat(pages), bytes);
}

const corpora = {
  cjk: interleave(['zh_CN', 'ja', 'ko', 'zh_TW'], BYTES),
  indic: interleave(['hi', 'bn', 'ta', 'te', 'mr', 'gu', 'kn', 'ml', 'pa', 'ne', 'si', 'th', 'lo', 'km', 'my', 'ka', 'am'], BYTES),
  cyrillic_greek: interleave(['ru', 'uk', 'bg', 'be', 'mk', 'sr', 'kk', 'el'], BYTES),
  arabic_hebrew: interleave(['ar', 'he', 'fa', 'ur', 'ps', 'ckb', 'ug', 'yi'], BYTES),
  emoji: emojiText(BYTES),
  digits: digitText(BYTES),
  invalid: invalidBytes(BYTES),
  english_man: englishManPages(BYTES),
};
mkdirSync(outDir, { recursive: true });
for (const [name, bytes] of Object.entries(corpora)) {
  writeFileSync(path.join(outDir, `${name}.txt`), bytes);
  console.log(`${path.join(outDir, `${name}.txt`)}\t${bytes.length} bytes`);
}
