// Independent references the tests derive expectations from: token counts from the npm
// `tiktoken` package (OpenAI's tokenizer compiled to WASM) with the chat formula of
// docs/REFERENCE.md §4, and exact decimal money arithmetic in BigInt.
import { get_encoding } from 'tiktoken';

const encoders = new Map();

function encoder(encoding) {
  if (!encoders.has(encoding)) encoders.set(encoding, get_encoding(encoding));
  return encoders.get(encoding);
}

// Token ids of `text` with special-token-looking text treated as ordinary text.
export function tokenIds(text, encoding = 'cl100k_base') {
  return Array.from(encoder(encoding).encode(text, [], []));
}

export function countTokens(text, encoding = 'cl100k_base') {
  return tokenIds(text, encoding).length;
}

// OpenAI's billing count for a chat prompt of plain messages (docs/REFERENCE.md §4.5):
// per message 3 + tokens of role, content (each text part) and name (+1 when present),
// plus 3 priming.
export function chatPromptTokens(messages, encoding = 'cl100k_base') {
  let total = 3;
  for (const message of messages) {
    total += 3 + countTokens(message.role, encoding);
    if (typeof message.content === 'string') total += countTokens(message.content, encoding);
    else if (Array.isArray(message.content)) {
      for (const part of message.content) {
        if (part.type !== 'text') throw new Error('reference counts text parts only');
        total += countTokens(part.text, encoding);
      }
    }
    if (message.name !== undefined) total += countTokens(message.name, encoding) + 1;
  }
  return total;
}

// A one-message prompt of `words` words ("w w w ..."), and its chat token count.
export function userPrompt(words, word = 'hello') {
  const content = Array.from({ length: words }, () => word).join(' ');
  return [{ role: 'user', content }];
}

// A "hello hello ..." user prompt whose chat count is exactly `target` tokens. Each extra
// word adds one token, so the search starts from the chat overhead (7) and walks.
export function promptWithTokens(target, encoding = 'cl100k_base') {
  let words = Math.max(1, target - 7);
  for (let steps = 0; steps < 50; steps += 1) {
    const messages = userPrompt(words);
    const count = chatPromptTokens(messages, encoding);
    if (count === target) return messages;
    words += count < target ? 1 : -1;
    if (words < 1) break;
  }
  throw new Error(`no "hello ..." prompt has exactly ${target} tokens`);
}

// ---------------------------------------------------------------------------------------
// Exact money. Amounts are BigInt femto-dollars (1e-15 USD): a price per 1k tokens with up
// to 12 decimals times an integer token count is exact at that scale.

const FEMTO_DIGITS = 15;

// Parses a plain decimal string ("0.00015") into a BigInt scaled by 10^digits.
export function parseDecimal(text, digits) {
  const match = /^(\d+)(?:\.(\d+))?$/.exec(String(text));
  if (!match) throw new Error(`not a plain decimal: ${text}`);
  const fraction = (match[2] ?? '');
  if (fraction.length > digits) throw new Error(`${text} has more than ${digits} decimals`);
  return BigInt(match[1] + fraction.padEnd(digits, '0'));
}

// Cost in femto-dollars of `tokens` at `pricePer1k` (decimal string).
export function tokenCost(tokens, pricePer1k) {
  // price per 1k in 1e-12 USD units, divided by 1000 tokens = 1e-15 USD per token.
  return BigInt(tokens) * parseDecimal(pricePer1k, FEMTO_DIGITS - 3);
}

// Cost of an OpenAI usage object at model prices {input, output, cached?}: cached prompt
// tokens (usage.prompt_tokens_details.cached_tokens) at the cached price when there is one.
export function usageCost(usage, prices) {
  const cached = usage.prompt_tokens_details?.cached_tokens ?? 0;
  const cachedPrice = prices.cached ?? prices.input;
  return tokenCost(usage.prompt_tokens - cached, prices.input)
    + tokenCost(cached, cachedPrice)
    + tokenCost(usage.completion_tokens, prices.output);
}

// Femto-dollars to the decimal string, then the JSON number a correct gateway prints.
export function femtoToDecimal(amount) {
  const negative = amount < 0n;
  const digits = (negative ? -amount : amount).toString().padStart(FEMTO_DIGITS + 1, '0');
  const whole = digits.slice(0, -FEMTO_DIGITS);
  const fraction = digits.slice(-FEMTO_DIGITS).replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

export function femtoToNumber(amount) {
  return Number(femtoToDecimal(amount));
}

// Nearest-rank percentile of ascending `sorted` values (rank ceil(p*n/100), 1-based).
export function nearestRank(sorted, percent) {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((percent * sorted.length) / 100));
  return sorted[rank - 1];
}
