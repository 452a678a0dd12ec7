// Renders the Helm chart in deploy/helm/turnout without helm (Debian 12 has no helm
// package): a renderer for the subset of Go templates and Sprig functions the chart uses,
// strict where Helm is lenient, so anything outside the subset is an error, never a
// silently different manifest.
//
// Supported:
//   text, {{ pipeline }}, whitespace trimming {{- and -}}, comments {{/* ... */}}
//   {{ if P }} / {{ else if P }} / {{ else }} / {{ end }}, {{ range P }}, {{ with P }}
//   operands: .Values.a.b, .Release.Name, .Chart.AppVersion, . (the current context), $
//     (the root), "strings", numbers, true, false, (sub pipelines)
//   pipelines a | f b (the piped value is the last argument, as in Go)
//   functions: quote, toYaml, nindent, indent, default, add, sha256sum, eq, ne, not, and, or,
//     required, int
// A missing map key is an error (Helm would print nothing), and so is printing a map or
// list without toYaml.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

// ---------------------------------------------------------------------------------------
// Lexing into text and actions, with Go's trim markers applied.

function lex(source, name) {
  const pieces = [];
  let at = 0;
  while (at < source.length) {
    const open = source.indexOf('{{', at);
    if (open < 0) { pieces.push({ text: source.slice(at) }); break; }
    pieces.push({ text: source.slice(at, open) });
    const close = source.indexOf('}}', open + 2);
    if (close < 0) throw new Error(`${name}: unclosed action at offset ${open}`);
    let inner = source.slice(open + 2, close);
    let trimLeft = false;
    let trimRight = false;
    if (/^-\s/.test(inner)) { trimLeft = true; inner = inner.slice(1); }
    if (/\s-$/.test(inner)) { trimRight = true; inner = inner.slice(0, -1); }
    pieces.push({ action: inner.trim(), trimLeft, trimRight, offset: open });
    at = close + 2;
  }
  // Trim markers remove all whitespace (newlines included) on that side.
  for (let i = 0; i < pieces.length; i += 1) {
    const piece = pieces[i];
    if (piece.action === undefined) continue;
    if (piece.trimLeft && i > 0 && pieces[i - 1].text !== undefined) pieces[i - 1].text = pieces[i - 1].text.replace(/\s+$/, '');
    if (piece.trimRight && i + 1 < pieces.length && pieces[i + 1].text !== undefined) pieces[i + 1].text = pieces[i + 1].text.replace(/^\s+/, '');
  }
  return pieces.filter((p) => p.action === undefined ? p.text.length > 0 : !p.action.startsWith('/*'));
}

// ---------------------------------------------------------------------------------------
// Parsing actions into a tree.

function tokenize(expression, where) {
  const tokens = [];
  const pattern = /\s*(?:("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?)|(\$?(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\$|\.)|([A-Za-z_][A-Za-z0-9_]*)|(\|)|(\()|(\)))/y;
  let at = 0;
  while (at < expression.length) {
    if (/^\s*$/.test(expression.slice(at))) break;
    pattern.lastIndex = at;
    const m = pattern.exec(expression);
    if (!m) throw new Error(`${where}: cannot parse "${expression.slice(at)}" in {{ ${expression} }}`);
    at = pattern.lastIndex;
    if (m[1] !== undefined) tokens.push({ kind: 'string', value: JSON.parse(m[1]) });
    else if (m[2] !== undefined) tokens.push({ kind: 'number', value: Number(m[2]) });
    else if (m[3] !== undefined) tokens.push({ kind: 'field', value: m[3] });
    else if (m[4] !== undefined) tokens.push({ kind: 'ident', value: m[4] });
    else if (m[5] !== undefined) tokens.push({ kind: '|' });
    else if (m[6] !== undefined) tokens.push({ kind: '(' });
    else tokens.push({ kind: ')' });
  }
  return tokens;
}

// pipeline := command ('|' command)* ; command := operand+ ; operand := literal | field | '(' pipeline ')'
function parsePipeline(tokens, where) {
  let at = 0;
  const pipeline = () => {
    const commands = [command()];
    while (tokens[at]?.kind === '|') { at += 1; commands.push(command()); }
    return { kind: 'pipeline', commands };
  };
  const command = () => {
    const operands = [];
    while (at < tokens.length && tokens[at].kind !== '|' && tokens[at].kind !== ')') {
      const token = tokens[at];
      at += 1;
      if (token.kind === '(') {
        operands.push(pipeline());
        if (tokens[at]?.kind !== ')') throw new Error(`${where}: missing )`);
        at += 1;
      } else {
        operands.push(token);
      }
    }
    if (operands.length === 0) throw new Error(`${where}: empty command`);
    return operands;
  };
  const result = pipeline();
  if (at !== tokens.length) throw new Error(`${where}: unexpected ${tokens[at].kind}`);
  return result;
}

function parse(pieces, name) {
  let at = 0;
  // Parses nodes until one of `stops` ("end", "else"); returns {nodes, stop}.
  const block = (stops) => {
    const nodes = [];
    while (at < pieces.length) {
      const piece = pieces[at];
      at += 1;
      if (piece.text !== undefined) { nodes.push({ kind: 'text', text: piece.text }); continue; }
      const where = `${name}@${piece.offset}`;
      const [keyword, ...rest] = piece.action.split(/\s+/);
      const expression = piece.action.slice(keyword.length).trim();
      if (keyword === 'end' || keyword === 'else') {
        if (!stops) throw new Error(`${where}: unexpected {{ ${piece.action} }}`);
        return { nodes, stop: piece.action };
      }
      if (keyword === 'if' || keyword === 'range' || keyword === 'with') {
        if (rest.length === 0) throw new Error(`${where}: {{ ${keyword} }} without a pipeline`);
        if (/:=|=/.test(expression)) throw new Error(`${where}: variables are outside the supported subset`);
        const node = { kind: keyword, branches: [], otherwise: null };
        let condition = parsePipeline(tokenize(expression, where), where);
        for (;;) {
          const { nodes: body, stop } = block(true);
          if (stop === undefined) throw new Error(`${where}: {{ ${keyword} }} without {{ end }}`);
          node.branches.push({ condition, body });
          if (stop === 'end') break;
          if (stop === 'else') {
            const { nodes: otherwise, stop: last } = block(true);
            if (last !== 'end') throw new Error(`${where}: {{ else }} not closed by {{ end }}`);
            node.otherwise = otherwise;
            break;
          }
          if (keyword === 'if' && stop.startsWith('else if ')) {
            condition = parsePipeline(tokenize(stop.slice('else if '.length), where), where);
            continue;
          }
          throw new Error(`${where}: unsupported {{ ${stop} }}`);
        }
        nodes.push(node);
        continue;
      }
      if (['define', 'template', 'block', 'include', 'tpl'].includes(keyword) || /:=/.test(piece.action)) {
        throw new Error(`${where}: {{ ${piece.action} }} is outside the supported subset`);
      }
      nodes.push({ kind: 'action', pipeline: parsePipeline(tokenize(piece.action, where), where) });
    }
    if (stops) return { nodes, stop: undefined };
    return { nodes };
  };
  return block(false).nodes;
}

// ---------------------------------------------------------------------------------------
// Values as Helm prints and serialises them.

function truthy(value) {
  if (value === undefined || value === null || value === false || value === 0 || value === '') return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}

function printValue(value, where) {
  if (value === undefined || value === null) throw new Error(`${where}: prints a missing value`);
  if (typeof value === 'object') throw new Error(`${where}: prints a map or list without toYaml`);
  return String(value);
}

// YAML as Helm's toYaml writes it (keys sorted, as sigs.k8s.io/yaml does; no trailing newline).
export function toYaml(value) {
  const scalar = (v) => {
    if (v === null || v === undefined) return 'null';
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    const s = String(v);
    const plain = /^[A-Za-z0-9_./${}-][A-Za-z0-9_./:${} -]*$/.test(s) && !/[ :]$/.test(s) && !/: /.test(s) &&
      !/^(true|false|yes|no|on|off|null|~|y|n)$/i.test(s) && Number.isNaN(Number(s)) && !/^[-.]/.test(s);
    return plain && s.length > 0 ? s : JSON.stringify(s);
  };
  const lines = [];
  const emit = (v, indent) => {
    const pad = ' '.repeat(indent);
    if (Array.isArray(v)) {
      for (const item of v) {
        if (item !== null && typeof item === 'object' && Object.keys(item).length > 0) {
          const start = lines.length;
          emit(item, indent + 2);
          lines[start] = `${pad}- ${lines[start].slice(indent + 2)}`;
        } else {
          lines.push(`${pad}- ${inline(item)}`);
        }
      }
      return;
    }
    for (const key of Object.keys(v).sort()) {
      const item = v[key];
      if (item !== null && typeof item === 'object' && Object.keys(item).length > 0) {
        lines.push(`${pad}${scalar(key)}:`);
        emit(item, Array.isArray(item) ? indent : indent + 2);
      } else {
        lines.push(`${pad}${scalar(key)}: ${inline(item)}`);
      }
    }
  };
  const inline = (v) => (Array.isArray(v) ? '[]' : v !== null && typeof v === 'object' ? '{}' : scalar(v));
  if (value === null || typeof value !== 'object' || Object.keys(value).length === 0) return inline(value);
  emit(value, 0);
  return lines.join('\n');
}

const FUNCTIONS = {
  quote: (...args) => args.map((v) => JSON.stringify(v === undefined || v === null ? '' : String(v))).join(' '),
  toYaml: (v) => toYaml(v),
  nindent: (n, s) => `\n${String(s).split('\n').map((line) => ' '.repeat(n) + line).join('\n')}`,
  indent: (n, s) => String(s).split('\n').map((line) => ' '.repeat(n) + line).join('\n'),
  default: (fallback, v) => (truthy(v) ? v : fallback),
  add: (...args) => args.reduce((sum, v) => {
    if (!Number.isInteger(Number(v))) throw new Error(`add: ${v} is not an integer`);
    return sum + Number(v);
  }, 0),
  sha256sum: (s) => crypto.createHash('sha256').update(String(s)).digest('hex'),
  eq: (a, b) => a === b,
  ne: (a, b) => a !== b,
  not: (v) => !truthy(v),
  and: (...args) => args.reduce((acc, v) => (truthy(acc) ? v : acc)),
  or: (...args) => args.reduce((acc, v) => (truthy(acc) ? acc : v)),
  required: (message, v) => { if (!truthy(v) && v !== false && v !== 0) throw new Error(`required: ${message}`); return v; },
  int: (v) => Math.trunc(Number(v)),
};

// ---------------------------------------------------------------------------------------
// Evaluation.

function resolveField(path, dot, root, where) {
  let value;
  let rest = path;
  if (path === '.') return dot;
  if (path === '$') return root;
  if (path.startsWith('$')) { value = root; rest = path.slice(1); } else { value = dot; }
  for (const key of rest.split('.').filter(Boolean)) {
    if (value === null || typeof value !== 'object' || !(key in value)) {
      throw new Error(`${where}: ${path} is not set (no "${key}")`);
    }
    value = value[key];
  }
  return value;
}

function evalPipeline(pipeline, dot, root, where) {
  let piped;
  pipeline.commands.forEach((operands, index) => {
    const args = operands.map((operand) => {
      if (operand.kind === 'pipeline') return evalPipeline(operand, dot, root, where);
      if (operand.kind === 'string' || operand.kind === 'number') return operand.value;
      if (operand.kind === 'field') return resolveField(operand.value, dot, root, where);
      if (operand.kind === 'ident') {
        if (operand.value === 'true') return true;
        if (operand.value === 'false') return false;
        if (operand.value === 'nil') return null;
        return { fn: operand.value };
      }
      throw new Error(`${where}: bad operand`);
    });
    const head = args[0];
    if (head && typeof head === 'object' && 'fn' in head && Object.keys(head).length === 1) {
      const fn = FUNCTIONS[head.fn];
      if (!fn) throw new Error(`${where}: function "${head.fn}" is outside the supported subset`);
      const callArgs = args.slice(1);
      if (index > 0) callArgs.push(piped);
      piped = fn(...callArgs);
    } else {
      if (args.length !== 1 || index > 0) throw new Error(`${where}: ${args.length} operands without a function`);
      piped = head;
    }
  });
  return piped;
}

function renderNodes(nodes, dot, root, name) {
  let out = '';
  for (const node of nodes) {
    const where = name;
    if (node.kind === 'text') out += node.text;
    else if (node.kind === 'action') out += printValue(evalPipeline(node.pipeline, dot, root, where), where);
    else if (node.kind === 'if') {
      const branch = node.branches.find((b) => truthy(evalPipeline(b.condition, dot, root, where)));
      if (branch) out += renderNodes(branch.body, dot, root, name);
      else if (node.otherwise) out += renderNodes(node.otherwise, dot, root, name);
    } else if (node.kind === 'with') {
      const value = evalPipeline(node.branches[0].condition, dot, root, where);
      if (truthy(value)) out += renderNodes(node.branches[0].body, value, root, name);
      else if (node.otherwise) out += renderNodes(node.otherwise, dot, root, name);
    } else if (node.kind === 'range') {
      const value = evalPipeline(node.branches[0].condition, dot, root, where);
      const items = Array.isArray(value) ? value
        : value && typeof value === 'object' ? Object.keys(value).sort().map((k) => value[k]) : [];
      if (items.length > 0) for (const item of items) out += renderNodes(node.branches[0].body, item, root, name);
      else if (node.otherwise) out += renderNodes(node.otherwise, dot, root, name);
    }
  }
  return out;
}

export function renderTemplate(source, context, name = 'template') {
  return renderNodes(parse(lex(source, name), name), context, context, name);
}

// Deep merge of overrides onto values, as `helm --set`/`-f` layer them (maps merge, the
// rest replaces).
export function mergeValues(base, overrides) {
  if (overrides === undefined) return structuredClone(base);
  if (base === null || typeof base !== 'object' || Array.isArray(base) ||
      overrides === null || typeof overrides !== 'object' || Array.isArray(overrides)) return structuredClone(overrides);
  const out = structuredClone(base);
  for (const [key, value] of Object.entries(overrides)) out[key] = mergeValues(base[key], value);
  return out;
}

// Renders every template of `chartDir`: {values, files: {name: text}, manifests: [objects]}.
export function renderChart(chartDir, { releaseName = 'turnout', namespace = 'default', values: overrides } = {}) {
  const chart = YAML.parse(fs.readFileSync(path.join(chartDir, 'Chart.yaml'), 'utf8'));
  const values = mergeValues(YAML.parse(fs.readFileSync(path.join(chartDir, 'values.yaml'), 'utf8')), overrides);
  const context = {
    Values: values,
    Release: { Name: releaseName, Namespace: namespace, Service: 'Helm' },
    Chart: { Name: chart.name, Version: chart.version, AppVersion: chart.appVersion },
  };
  const templatesDir = path.join(chartDir, 'templates');
  const files = {};
  const manifests = [];
  for (const file of fs.readdirSync(templatesDir).sort()) {
    if (!file.endsWith('.yaml') && !file.endsWith('.yml')) {
      throw new Error(`${file}: only .yaml templates are supported (no _helpers.tpl, NOTES.txt)`);
    }
    const text = renderTemplate(fs.readFileSync(path.join(templatesDir, file), 'utf8'), context, file);
    files[file] = text;
    for (const document of YAML.parseAllDocuments(text)) {
      if (document.errors.length > 0) throw new Error(`${file}: rendered YAML is invalid: ${document.errors[0].message}\n${text}`);
      const object = document.toJS();
      if (object !== null && object !== undefined) manifests.push({ file, object });
    }
  }
  return { chart, values, files, manifests };
}
