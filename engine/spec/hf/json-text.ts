// Parsing JSON text with error positions as line and column, accepting the non-standard number
// tokens `Infinity`, `-Infinity` and `NaN` that Python's json module writes (Hugging Face saves
// e.g. `"time_step_limit": [0.0, Infinity]` in Nemotron-H configs).
//
// Not here: schema checks of what was parsed (validate.ts, hf/*), file reading (callers).

/** Malformed JSON; `line` and `column` are 1-based. */
export class JsonSyntaxError extends Error {
  constructor(
    readonly detail: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(`malformed JSON at line ${line} column ${column}: ${detail}`);
    this.name = 'JsonSyntaxError';
  }
}

const NON_STANDARD = /(?:-?Infinity|NaN)/;

/**
 * Parses JSON text. Standard JSON goes through JSON.parse; on failure, or when the text contains
 * Python's non-finite tokens, a small recursive-descent parser gives the exact position.
 */
export function parseJsonText(text: string): unknown {
  if (!NON_STANDARD.test(text)) {
    try {
      return JSON.parse(text);
    } catch {
      // fall through to the positional parser for the error location
    }
  }
  return new PositionalJsonParser(text).parseDocument();
}

class PositionalJsonParser {
  private pos = 0;
  constructor(private readonly text: string) {}

  parseDocument(): unknown {
    this.skipSpace();
    const value = this.parseValue();
    this.skipSpace();
    if (this.pos < this.text.length) this.fail(`unexpected ${this.describeHere()} after the end of the value`);
    return value;
  }

  private fail(detail: string): never {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < this.pos && i < this.text.length; i++) {
      if (this.text[i] === '\n') {
        line++;
        lineStart = i + 1;
      }
    }
    throw new JsonSyntaxError(detail, line, this.pos - lineStart + 1);
  }

  private describeHere(): string {
    if (this.pos >= this.text.length) return 'end of input';
    return `character ${JSON.stringify(this.text[this.pos])}`;
  }

  private skipSpace(): void {
    while (this.pos < this.text.length && ' \t\n\r'.includes(this.text[this.pos]!)) this.pos++;
  }

  private parseValue(): unknown {
    const ch = this.text[this.pos];
    if (ch === '{') return this.parseObject();
    if (ch === '[') return this.parseArray();
    if (ch === '"') return this.parseString();
    if (ch === 't') return this.parseWord('true', true);
    if (ch === 'f') return this.parseWord('false', false);
    if (ch === 'n') return this.parseWord('null', null);
    if (ch === 'N') return this.parseWord('NaN', Number.NaN);
    if (ch === 'I') return this.parseWord('Infinity', Number.POSITIVE_INFINITY);
    if (ch === '-' && this.text.startsWith('-Infinity', this.pos)) return this.parseWord('-Infinity', Number.NEGATIVE_INFINITY);
    if (ch === '-' || (ch !== undefined && ch >= '0' && ch <= '9')) return this.parseNumber();
    this.fail(`expected a value, found ${this.describeHere()}`);
  }

  private parseWord<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail(`expected a value, found ${this.describeHere()}`);
    this.pos += word.length;
    return value;
  }

  private parseNumber(): number {
    const match = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(this.text.slice(this.pos, this.pos + 400));
    if (!match) this.fail(`malformed number starting with ${this.describeHere()}`);
    this.pos += match[0].length;
    return Number(match[0]);
  }

  private parseString(): string {
    const start = this.pos;
    this.pos++; // opening quote
    while (this.pos < this.text.length) {
      const ch = this.text[this.pos]!;
      if (ch === '"') {
        this.pos++;
        try {
          return JSON.parse(this.text.slice(start, this.pos)) as string;
        } catch {
          this.pos = start;
          this.fail('malformed string escape');
        }
      }
      if (ch === '\\') this.pos += 2;
      else if (ch === '\n') this.fail('unterminated string (line break inside a string)');
      else this.pos++;
    }
    this.pos = start;
    this.fail('unterminated string');
  }

  private parseArray(): unknown[] {
    const out: unknown[] = [];
    this.pos++; // [
    this.skipSpace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipSpace();
      out.push(this.parseValue());
      this.skipSpace();
      const ch = this.text[this.pos];
      if (ch === ',') {
        this.pos++;
        continue;
      }
      if (ch === ']') {
        this.pos++;
        return out;
      }
      this.fail(`expected ',' or ']' in an array, found ${this.describeHere()}`);
    }
  }

  private parseObject(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.pos++; // {
    this.skipSpace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] !== '"') this.fail(`expected a quoted property name, found ${this.describeHere()}`);
      const key = this.parseString();
      this.skipSpace();
      if (this.text[this.pos] !== ':') this.fail(`expected ':' after property name "${key}", found ${this.describeHere()}`);
      this.pos++;
      this.skipSpace();
      Object.defineProperty(out, key, { value: this.parseValue(), enumerable: true, writable: true, configurable: true });
      this.skipSpace();
      const ch = this.text[this.pos];
      if (ch === ',') {
        this.pos++;
        continue;
      }
      if (ch === '}') {
        this.pos++;
        return out;
      }
      this.fail(`expected ',' or '}' in an object, found ${this.describeHere()}`);
    }
  }
}
