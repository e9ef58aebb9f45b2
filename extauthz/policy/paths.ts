/**
 * Path templates: literal segments, {name} (one segment, captured), * (one segment), ** (the rest,
 * zero or more segments, last only). Compiled once at load into segment matchers.
 */

type Segment = { kind: 'literal'; value: string } | { kind: 'param'; name: string } | { kind: 'any' };

export interface PathTemplate {
  readonly source: string;
  readonly segments: readonly Segment[];
  readonly rest: boolean;
  /** The template with parameter names erased, to compare two templates for overlap. */
  readonly shape: string;
}

const PARAM = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

export class PathTemplateError extends Error {}

export function compilePathTemplate(source: string): PathTemplate {
  if (!source.startsWith('/')) throw new PathTemplateError('a path template starts with /');
  const parts = source === '/' ? [] : source.slice(1).split('/');
  const segments: Segment[] = [];
  const names = new Set<string>();
  let rest = false;
  parts.forEach((part, i) => {
    if (part === '**') {
      if (i !== parts.length - 1) throw new PathTemplateError('** is allowed only as the last segment');
      rest = true;
      return;
    }
    segments.push(parseSegment(part, names));
  });
  const shape = '/' + segments.map((s) => (s.kind === 'literal' ? s.value : '*')).join('/') + (rest ? '/**' : '');
  return { source, segments, rest, shape };
}

function parseSegment(part: string, names: Set<string>): Segment {
  if (part === '') throw new PathTemplateError('empty path segment (//)');
  if (part === '*') return { kind: 'any' };
  const m = PARAM.exec(part);
  if (m) {
    const name = m[1]!;
    if (names.has(name)) throw new PathTemplateError(`parameter {${name}} appears twice`);
    names.add(name);
    return { kind: 'param', name };
  }
  if (/[{}*]/.test(part)) throw new PathTemplateError(`invalid segment "${part}": use {name}, * or ** as whole segments`);
  return { kind: 'literal', value: part };
}

/** Matches decoded request path segments; returns captured params or undefined. */
export function matchPath(t: PathTemplate, segments: readonly string[]): Record<string, string> | undefined {
  if (t.rest ? segments.length < t.segments.length : segments.length !== t.segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < t.segments.length; i++) {
    const s = t.segments[i]!;
    const value = segments[i]!;
    if (s.kind === 'literal') {
      if (s.value !== value) return undefined;
    } else if (s.kind === 'param') params[s.name] = value;
  }
  return params;
}
