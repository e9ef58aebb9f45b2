import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { RE2JS } from 're2js';
import { regexSizeBound } from './regex-size.js';
import { compileCel, CelCompileError } from './cel.js';
import { compilePolicySteps } from './compile.js';
import { loadYaml } from '../../test/helpers/policies.js';

describe('regexSizeBound: an upper estimate of the RE2 program, before re2js compiles', () => {
  test('property: never below the program re2js builds', () => {
    const piece = fc.constantFrom('a', 'b', '.', '*?', '+?', '??', '{2,9}?', '[a-z]', '[^\\]x]', '\\d', '\\pL', '\\p{Greek}', '\\Qa{9}\\E', '(', ')', '(?:', '(?i)', '|', '*', '+', '?', '{3}', '{2,}', '{1,5}', '{0,40}', '{7,7}', '^', '$', '\\{', '{x}');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 14 }), (parts) => {
        const p = parts.join('');
        let size: number;
        try {
          size = RE2JS.compile(p).programSize();
        } catch {
          return; // not a pattern: RE2 refuses it anyway
        }
        assert.ok(regexSizeBound(p) >= size, `${p}: bound ${regexSizeBound(p)} < program ${size}`);
      }),
      { numRuns: 20000 },
    );
  });

  // What a policy author writes to make the compile itself slow (measured 40–280 ms each before).
  const costly: [string, string][] = [
    ['three counted repetitions of 1000', '(a{1,1000})(b{1,1000})(c{1,1000})'],
    ['two of 990', '(a{1,990})(b{1,990})'],
    ['nested repetitions', '((a{1,10}){1,10}){1,10}((a{1,9}){1,9}){1,9}'],
    ['a hundred Unicode classes', '\\\\pL'.repeat(100)],
    ['a pattern longer than 1024 characters', 'ab|'.repeat(400) + 'c'],
  ];
  for (const [why, pattern] of costly) {
    test(`refused before compiling: ${why}`, () => {
      assert.throws(() => compileCel(`request.method.matches('${pattern}')`, { expect: 'bool' }), (err: unknown) => err instanceof CelCompileError && /may compile to about \d+ instructions|longer than 1024 characters/.test(err.message));
    });
  }

  test('a refusal is cached like a program: the same source is refused again without compiling', () => {
    const source = "request.method.matches('(q{1,1000})(r{1,1000})')";
    const first = (() => { try { compileCel(source, { expect: 'bool' }); } catch (err) { return err; } return undefined; })();
    const second = (() => { try { compileCel(source, { expect: 'bool' }); } catch (err) { return err; } return undefined; })();
    assert.ok(first instanceof CelCompileError);
    assert.equal(second, first);
  });

  test('ordinary patterns pass', () => {
    for (const p of ['^[a-z0-9-]{1,63}$', '^(GET|HEAD)$', '^\\\\d{4}-\\\\d{2}-\\\\d{2}$', '(?i)^bearer [a-z0-9._~+/-]+=*$', '^\\\\pL{1,40}$']) {
      assert.doesNotThrow(() => compileCel(`request.method.matches('${p}')`, { expect: 'bool' }), p);
    }
  });
});

describe('a policy compiles in slices: a yield per CEL expression and per rule', () => {
  test('a policy of many costly rules gives the event loop a turn after each of them', () => {
    const rules = Array.from({ length: 40 }, (_, i) => `    - name: r${i}\n      principals: { anonymous: true }\n      when: "request.method.matches('(a${i}{1,1000})(b{1,1000})')"\n`).join('');
    const loaded = loadYaml({ 'p.yaml': `apiVersion: portcullis.io/v1alpha1\nkind: ApiPolicy\nmetadata: { name: slow, namespace: t }\nspec:\n  hosts: [slow.example]\n  rules:\n${rules}` });
    const steps = compilePolicySteps(loaded.sources.policies[0]!);
    let yields = 0;
    let r = steps.next();
    for (; !r.done; r = steps.next()) yields++;
    // Each rule: its when compiled ahead (one yield), then the rule itself (one yield).
    assert.equal(yields, 80);
    assert.equal(r.value.problems.length, 40);
    assert.ok(r.value.problems.every((p) => p.code === 'POLICY_CEL' && /may compile to about/.test(p.message)), r.value.problems[0]?.format());
  });

  test('a rule of many quota expressions yields after each of them', () => {
    const quotas = Array.from({ length: 8 }, (_, j) => `{ name: q${j}, limit: 5, per: 1m, key: "request.method + '${j}'", cost: "size(request.path) + ${j}" }`).join(', ');
    const loaded = loadYaml({ 'p.yaml': `apiVersion: portcullis.io/v1alpha1\nkind: ApiPolicy\nmetadata: { name: many, namespace: t }\nspec:\n  hosts: [many.example]\n  rules:\n    - name: r\n      principals: { anonymous: true }\n      when: "request.method == 'GET'"\n      quotas: [${quotas}]\n` });
    assert.deepEqual(loaded.problems.map((p) => p.format()), []);
    const steps = compilePolicySteps(loaded.sources.policies[0]!);
    let yields = 0;
    let r = steps.next();
    for (; !r.done; r = steps.next()) yields++;
    assert.deepEqual(r.value.problems.map((p) => p.format()), []);
    // when, 8 keys and 8 costs ahead, then the rule.
    assert.equal(yields, 1 + 16 + 1);
  });
});
