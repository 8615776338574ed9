// Typed reading of Hugging Face `config.json` fields, with errors that name the file and the field
// (`nano.json: num_hidden_layers: expected a positive integer, got "52"`), and a record of every
// field the importer understood (so round-trip tests can check nothing it read is lost).
//
// Not here: which fields a model family has (nemotron-h.ts, transformer-families.ts, mamba2.ts).

export type HfConfig = Record<string, unknown>;

/** A config the importer cannot turn into a Strata model; the message names file and field. */
export class HfConfigError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'HfConfigError';
  }
}

function show(value: unknown): string {
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return JSON.stringify(value) ?? String(value);
}

/** Reads fields of one config; every read marks the field as understood. */
export class ConfigReader {
  readonly understood = new Set<string>();

  constructor(
    readonly config: HfConfig,
    /** How the file is named in messages (a path, or `config.json` when there is none). */
    readonly file: string,
  ) {}

  /** Throws an HfConfigError `FILE: FIELD: MESSAGE`. */
  fail(field: string, message: string): never {
    throw new HfConfigError(`${this.file}: ${field}: ${message}`, this.file, field);
  }

  /** True when the field is present and not null. */
  has(field: string): boolean {
    return this.config[field] !== undefined && this.config[field] !== null;
  }

  /** The first of `names` that is present (for legacy aliases), or the first name. */
  nameOf(...names: string[]): string {
    return names.find((n) => this.has(n)) ?? names[0]!;
  }

  private raw(field: string): unknown {
    this.understood.add(field);
    return this.config[field];
  }

  private missing(field: string): never {
    return this.fail(field, 'is missing');
  }

  int(field: string, fallback?: number, min = 1): number {
    const value = this.raw(field);
    if (value === undefined || value === null) return fallback ?? this.missing(field);
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min)
      this.fail(field, `expected ${min === 1 ? 'a positive' : min === 0 ? 'a non-negative' : `an integer >= ${min} as`} integer, got ${show(value)}`);
    return value;
  }

  /** An integer that may be null (returns null when absent or null, unless a fallback is given). */
  optionalInt(field: string, min = 1): number | null {
    if (!this.has(field)) {
      this.understood.add(field);
      return null;
    }
    return this.int(field, undefined, min);
  }

  number(field: string, fallback?: number, options: { positive?: boolean } = {}): number {
    const value = this.raw(field);
    if (value === undefined || value === null) return fallback ?? this.missing(field);
    if (typeof value !== 'number' || Number.isNaN(value)) this.fail(field, `expected a number, got ${show(value)}`);
    if (options.positive && !(value > 0 && Number.isFinite(value)))
      this.fail(field, `expected a positive number, got ${show(value)}`);
    return value;
  }

  bool(field: string, fallback?: boolean): boolean {
    const value = this.raw(field);
    if (value === undefined || value === null) return fallback ?? this.missing(field);
    if (typeof value !== 'boolean') this.fail(field, `expected true or false, got ${show(value)}`);
    return value;
  }

  string(field: string, fallback?: string): string {
    const value = this.raw(field);
    if (value === undefined || value === null) return fallback ?? this.missing(field);
    if (typeof value !== 'string') this.fail(field, `expected a string, got ${show(value)}`);
    return value;
  }

  /** A list of strings, or undefined when absent. */
  stringList(field: string): string[] | undefined {
    const value = this.raw(field);
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string'))
      this.fail(field, `expected a list of strings, got ${show(value)}`);
    return value as string[];
  }

  /** A list of integers, or undefined when absent. */
  intList(field: string): number[] | undefined {
    const value = this.raw(field);
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'number' || !Number.isInteger(v) || v < 0))
      this.fail(field, `expected a list of non-negative integers, got ${show(value)}`);
    return value as number[];
  }

  /** A list of numbers (Infinity allowed), or undefined when absent. */
  numberList(field: string): number[] | undefined {
    const value = this.raw(field);
    if (value === undefined || value === null) return undefined;
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'number' || Number.isNaN(v)))
      this.fail(field, `expected a list of numbers, got ${show(value)}`);
    return value as number[];
  }

  /** A nested object, or undefined when absent. */
  object(field: string): HfConfig | undefined {
    const value = this.raw(field);
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'object' || Array.isArray(value)) this.fail(field, `expected an object, got ${show(value)}`);
    return value as HfConfig;
  }
}
