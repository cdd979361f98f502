// Symbols (against this machine's own /proc/kallsyms) and the expression parser's bounds.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ExpressionError, parseExpression } from '../../src/kernel/objects/expression';
import { parseKallsyms, SymbolError, SymbolTable } from '../../src/kernel/symbols/symbols';

describe('symbols', () => {
  const text = existsSync('/proc/kallsyms') ? readFileSync('/proc/kallsyms', 'utf8') : '';
  const symbols = parseKallsyms(text).filter((s) => s.address !== 0n);
  const skip = symbols.length < 1000 ? 'no readable /proc/kallsyms (not root?)' : false;

  it('name → address and address → symbol+offset agree with /proc/kallsyms', { skip }, () => {
    const table = new SymbolTable(symbols);
    const byAddress = new Map<bigint, string[]>();
    for (const s of symbols) byAddress.set(s.address, [...(byAddress.get(s.address) ?? []), s.name]);
    const sorted = [...byAddress.keys()].sort((a, b) => (a < b ? -1 : 1));
    for (let i = 0; i < sorted.length - 1; i += Math.max(1, Math.floor(sorted.length / 2000))) {
      const at = sorted[i];
      const gap = sorted[i + 1] - at;
      const names = byAddress.get(at)!;
      assert.ok(names.includes(table.describe(at)!), `0x${at.toString(16)}: ${table.describe(at)} not among ${names.join(', ')}`);
      if (gap > 1n && gap < 1n << 20n) {
        const inside = at + gap - 1n;
        assert.match(table.describe(inside)!, new RegExp(`^[^+]+\\+0x${(gap - 1n).toString(16)}$`));
      }
    }
    const line = text.split('\n').find((l) => / [Tt] _text$/.test(l) || / [Tt] _stext$/.test(l))!;
    const [addr, , name] = line.split(' ');
    assert.equal(table.address(name), BigInt('0x' + addr));
    assert.throws(() => table.address('no_such_symbol_here'), (err: unknown) => err instanceof SymbolError && /no symbol 'no_such_symbol_here'/.test(err.message));
    assert.equal(table.describe(1n), undefined, 'nothing below the first symbol');
  });
});

describe('expression parser bounds', () => {
  it('rejects malformed input with the column', () => {
    for (const [src, pattern] of [
      ['init_task.', /expected a member name|unexpected end/],
      ['init_task..x', /expected a member name|unexpected '\.'/],
      ['(struct task_struct *', /expected '\)'/],
      ['a ? b : c', /unexpected character '\?' at column 3/],
      ['per_cpu(x)', /expected ','/],
      ['frobnicate(1)', /unknown function 'frobnicate'/],
      ['1 2', /unexpected '2' at column 3/],
    ] as const) {
      assert.throws(() => parseExpression(src), (err: unknown) => err instanceof ExpressionError && pattern.test(err.message), src);
    }
  });

  it('bounds nesting and length', () => {
    assert.throws(() => parseExpression('*'.repeat(100) + 'x'), /nested deeper than 64/);
    assert.throws(() => parseExpression('('.repeat(100) + 'x' + ')'.repeat(100)), /nested deeper than 64/);
    assert.throws(() => parseExpression('x'.repeat(5000)), /longer than 4096/);
    assert.doesNotThrow(() => parseExpression('container_of(init_task.tasks.next, struct task_struct, tasks)->real_parent->comm[0]'));
  });
});
