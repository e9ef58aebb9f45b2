/**
 * Static cost bound of a CEL expression, computed once at load from its AST and the input limits
 * (the way Kubernetes estimates CRD validation rules): every value has a size bound (string
 * length, list items, map entries) taken from the request limits, the CRD limits or the literal
 * itself; a comprehension costs its range's size times its body, so nesting multiplies; string
 * functions cost by the length they scan; matches() by input length times RE2 program size.
 * One unit is about 0.1 µs of evaluation on the reference machine (docs/adr/0003).
 */
import { callParts, type CelNode, type ComprehensionArgs } from './cel-ast.js';
import { CompiledPattern, MAX_REGEX_INPUT, MAX_REGEX_PROGRAM, RE2_METHOD } from './cel-regex.js';

/** Upper bounds of a value: n = length / items / entries; total = everything inside, flattened. */
export interface Size {
  n: number;
  total: number;
  elem?: Size;
  key?: Size;
  fields?: Readonly<Record<string, Size>>;
}

export const SCALAR: Size = { n: 1, total: 1 };

export function str(n: number): Size {
  return { n, total: n };
}

export function list(n: number, elem: Size): Size {
  return { n, total: n + n * elem.total, elem };
}

export function map(n: number, key: Size, elem: Size): Size {
  return { n, total: n + n * (key.total + elem.total), key, elem };
}

export function message(fields: Record<string, Size>): Size {
  const values = Object.values(fields);
  return { n: values.length, total: values.reduce((t, s) => t + s.total, 0), fields };
}

/** Data of unknown shape bounded only by its encoded size (JSON claims): any part is at most `bytes`. */
export function dynOf(bytes: number): Size {
  // A list item takes at least two encoded bytes ("0,"); a string at most one character per byte.
  const d: Size = { n: Math.ceil(bytes / 2), total: bytes };
  d.elem = d;
  d.key = d;
  return d;
}

export interface Estimate {
  cost: number;
  size: Size;
}

export type Roots = ReadonlyMap<string, Size>;

/** Characters one cost unit covers when scanning or copying a string. */
const CHARS_PER_UNIT = 64;
/** List items one unit covers in a native membership scan (`x in list`). */
const IN_ITEMS_PER_UNIT = 2;
/** Timezone-aware timestamp accessors go through Intl: priced as a fixed, larger call. */
const TZ_CALL = 50;

function scan(chars: number): number {
  return Math.ceil(chars / CHARS_PER_UNIT);
}

function maxSize(a: Size, b: Size): Size {
  if (a === b) return a;
  return {
    n: Math.max(a.n, b.n),
    total: Math.max(a.total, b.total),
    ...(a.elem || b.elem ? { elem: maxSize(a.elem ?? SCALAR, b.elem ?? SCALAR) } : {}),
    ...(a.key || b.key ? { key: maxSize(a.key ?? SCALAR, b.key ?? SCALAR) } : {}),
  };
}

function concat(a: Size, b: Size): Size {
  return { n: a.n + b.n, total: a.total + b.total, ...(a.elem || b.elem ? { elem: maxSize(a.elem ?? SCALAR, b.elem ?? SCALAR) } : {}) };
}

class Estimator {
  private readonly scopes: Map<string, Size>[] = [];

  constructor(
    private readonly roots: Roots,
    private readonly unknown: Size,
  ) {}

  node(n: CelNode): Estimate {
    if (n.meta.alternate) return this.node(n.meta.alternate);
    switch (n.op) {
      case 'value':
        return { cost: 0, size: literal(n.args) };
      case 'id':
        return { cost: 1, size: this.lookup(n.args as string) };
      case 'comprehension':
        return this.comprehension(n.args as ComprehensionArgs);
      case 'call':
      case 'rcall':
        return this.call(n);
      default:
        return this.operator(n);
    }
  }

  private lookup(name: string): Size {
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const s = this.scopes[i]!.get(name);
      if (s) return s;
    }
    return this.roots.get(name) ?? this.unknown;
  }

  private scoped(name: string, size: Size, n: CelNode): Estimate {
    this.scopes.push(new Map([[name, size]]));
    try {
      return this.node(n);
    } finally {
      this.scopes.pop();
    }
  }

  private comprehension(c: ComprehensionArgs): Estimate {
    const range = this.node(c.iterable);
    const init = this.node(c.init);
    const item = (c.iterable.checkedType?.kind === 'map' ? range.size.key : range.size.elem) ?? this.unknown;
    const step = this.scoped(c.iterVarName, item, c.step);
    const times = range.size.n;
    const cost = range.cost + init.cost + times * (step.cost + 1);
    const size = c.kind === 'quantifier' ? SCALAR : list(times, step.size);
    return { cost, size };
  }

  private operator(n: CelNode): Estimate {
    const est = operands(n).map((p) => this.node(p));
    const cost = est.reduce((t, e) => t + e.cost, 1);
    if (n.op === '?:') return { cost: est[0]!.cost + 1 + Math.max(est[1]!.cost, est[2]!.cost), size: maxSize(est[1]!.size, est[2]!.size) };
    const rule = OPERATORS[n.op];
    return rule ? rule(n, est, cost, this.unknown) : { cost, size: SCALAR };
  }

  private call(n: CelNode): Estimate {
    const macro = n.meta.macro;
    if (macro?.exp && macro.val && macro.var) {
      const val = this.node(macro.val);
      const exp = this.scoped(macro.var, val.size, macro.exp);
      return { cost: val.cost + exp.cost + 1, size: exp.size };
    }
    if (macro) return { cost: 1 + (macro.args ?? []).length, size: SCALAR };
    const parts = callParts(n)!;
    const recv = parts.receiver ? this.node(parts.receiver) : undefined;
    const args = parts.args.map((a) => this.node(a));
    const base = (recv?.cost ?? 0) + args.reduce((t, e) => t + e.cost, 1);
    const fn = functionCost(parts.name, recv?.size, args.map((a) => a.size), parts.args);
    return { cost: base + fn.cost, size: fn.size ?? this.unknown };
  }
}

type OperatorRule = (n: CelNode, est: Estimate[], cost: number, unknown: Size) => Estimate;

const COMPARE: OperatorRule = (_n, est, cost) => ({ cost: cost + scan(Math.min(est[0]!.size.total, est[1]!.size.total)), size: SCALAR });
const SELECT: OperatorRule = (n, est, cost, unknown) => ({ cost, size: select(est[0]!.size, (n.args as [CelNode, string])[1], unknown) });
const INDEX: OperatorRule = (n, est, cost, unknown) => ({ cost, size: index(est[0]!.size, (n.args as CelNode[])[1]!, unknown) });

/** Cost on top of the operands' and result size, per operator (others: one unit, a scalar). */
const OPERATORS: Readonly<Record<string, OperatorRule>> = {
  '.': SELECT,
  '.?': SELECT,
  '[]': INDEX,
  '[?]': INDEX,
  '+': (_n, est, cost) => ({ cost: cost + scan(est[0]!.size.total + est[1]!.size.total), size: concat(est[0]!.size, est[1]!.size) }),
  '==': COMPARE,
  '!=': COMPARE,
  '<': COMPARE,
  '<=': COMPARE,
  '>': COMPARE,
  '>=': COMPARE,
  // A native scan: a few elements per unit.
  in: (n, est, cost) => ({ cost: cost + (isMap(n) ? 1 : Math.ceil(est[1]!.size.n / IN_ITEMS_PER_UNIT) * (1 + scan(est[0]!.size.total))), size: SCALAR }),
  list: (_n, est, cost) => ({ cost: cost + est.length, size: list(est.length, est.reduce((s, e) => maxSize(s, e.size), est[0]?.size ?? SCALAR)) }),
  map: (_n, est, cost) => ({ cost, size: mapLiteral(est) }),
  accuPush: (_n, est, cost) => ({ cost, size: est[0]?.size ?? SCALAR }),
};

function literal(v: unknown): Size {
  if (typeof v === 'string') return str(v.length);
  if (v instanceof Uint8Array) return str(v.length);
  return SCALAR;
}

function operands(n: CelNode): CelNode[] {
  const a = n.args;
  if (n.op === '.' || n.op === '.?') return [(a as [CelNode])[0]];
  if (n.op === 'map') return (a as [CelNode, CelNode][]).flat();
  if (Array.isArray(a)) return a as CelNode[];
  return a && typeof a === 'object' ? [a as CelNode] : [];
}

function isMap(n: CelNode): boolean {
  const right = (n.args as CelNode[])[1];
  return right?.checkedType?.kind === 'map';
}

function select(recv: Size, field: string, unknown: Size): Size {
  return recv.fields?.[field] ?? recv.elem ?? unknown;
}

function index(recv: Size, key: CelNode, unknown: Size): Size {
  if (recv.fields && key.op === 'value' && typeof key.args === 'string') return recv.fields[key.args] ?? unknown;
  return recv.elem ?? unknown;
}

function mapLiteral(est: Estimate[]): Size {
  const keys = est.filter((_, i) => i % 2 === 0).map((e) => e.size);
  const values = est.filter((_, i) => i % 2 === 1).map((e) => e.size);
  return map(keys.length, keys.reduce(maxSize, SCALAR), values.reduce(maxSize, SCALAR));
}

interface FnCost {
  cost: number;
  size?: Size;
}

type FnRule = (first: Size, args: Size[], argNodes: CelNode[]) => FnCost;

// An argument besides the value is a time zone (getHours('Europe/Paris')).
const constant: FnRule = (first, args) => ({ cost: 1 + scan(first.total) + (args.length > 0 ? TZ_CALL : 0), size: SCALAR });
const scanning: FnRule = (first) => ({ cost: 1 + scan(first.total) * 2, size: first === SCALAR ? str(32) : { n: first.n * 2, total: first.total * 2 } });
const search: FnRule = (first, args) => ({ cost: 1 + scan(first.total) * Math.max(1, scan(args[0]?.total ?? 1)), size: SCALAR });
const regex: FnRule = (first, _args, nodes) => ({ cost: 1 + regexCost(first, nodes[0]), size: SCALAR });

/** Cost and result size of every library function a policy can call; none other is accepted. */
const FUNCTIONS: Readonly<Record<string, FnRule>> = {
  ...Object.fromEntries(['size', 'int', 'uint', 'double', 'bool', 'type', 'duration', 'timestamp'].map((f) => [f, constant])),
  ...Object.fromEntries(['getDate', 'getDayOfMonth', 'getDayOfWeek', 'getDayOfYear', 'getFullYear', 'getHours', 'getMilliseconds', 'getMinutes', 'getMonth', 'getSeconds'].map((f) => [f, constant])),
  // A prefix or suffix test reads at most the argument's length.
  startsWith: (_first, args) => ({ cost: 1 + scan(args[0]?.total ?? 1), size: SCALAR }),
  endsWith: (_first, args) => ({ cost: 1 + scan(args[0]?.total ?? 1), size: SCALAR }),
  ...Object.fromEntries(['lowerAscii', 'upperAscii', 'trim', 'substring', 'string', 'bytes', 'hex', 'base64', 'at'].map((f) => [f, scanning])),
  contains: search,
  indexOf: search,
  lastIndexOf: search,
  dyn: (first) => ({ cost: 1, size: first }),
  split: (first) => ({ cost: 1 + scan(first.total), size: list(first.total + 1, first) }),
  join: (first, args) => {
    const chars = first.total + first.n * (args[0]?.total ?? 0);
    return { cost: 1 + scan(chars), size: str(chars) };
  },
  json: (first) => ({ cost: 1 + first.total, size: dynOf(first.total) }),
  [RE2_METHOD]: regex,
};

function regexCost(recv: Size, patternArg: CelNode | undefined): number {
  const p = patternArg?.args;
  const program = p instanceof CompiledPattern ? p.programSize : MAX_REGEX_PROGRAM;
  return Math.min(recv.total, MAX_REGEX_INPUT) * program;
}

/** Cost and result size of one library function; a function without a model is refused. */
function functionCost(name: string, recv: Size | undefined, args: Size[], argNodes: CelNode[]): FnCost {
  const rule = Object.hasOwn(FUNCTIONS, name) ? FUNCTIONS[name] : undefined;
  if (!rule) throw new CostModelError(`no cost model for function ${name}()`);
  return rule(recv ?? args[0] ?? SCALAR, recv ? args : args.slice(1), argNodes);
}

export class CostModelError extends Error {}

/** The cost bound of an expression whose AST has been type-checked (checkedType set). */
export function estimateCost(root: CelNode, roots: Roots, unknown: Size): Estimate {
  return new Estimator(roots, unknown).node(root);
}
