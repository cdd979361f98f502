// A small C-like expression language over kernel objects, as typed at a debugger prompt:
//   init_task.tasks.next          *(struct task_struct *)0xffff888003a1c000
//   per_cpu(runqueues, 1).nr_running     &init_task     init_task.comm[0]
//   container_of(init_task.tasks.next, struct task_struct, tasks)->pid     (u64)jiffies + 1

import type { Kernel, KObject } from './object';
import { hex, ObjectError } from './object';

export class ExpressionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExpressionError';
  }
}

type Node =
  | { kind: 'num'; value: bigint }
  | { kind: 'ident'; name: string }
  | { kind: 'member'; object: Node; name: string; arrow: boolean }
  | { kind: 'index'; object: Node; index: Node }
  | { kind: 'deref'; operand: Node }
  | { kind: 'addr'; operand: Node }
  | { kind: 'neg'; operand: Node }
  | { kind: 'cast'; type: string; operand: Node }
  | { kind: 'binary'; op: '+' | '-'; left: Node; right: Node }
  | { kind: 'percpu'; object: Node; cpu: Node }
  | { kind: 'containerof'; pointer: Node; type: string; member: string };

interface Token {
  text: string;
  kind: 'ident' | 'num' | 'punct';
  at: number;
}

const TYPE_KEYWORDS = new Set(['struct', 'union', 'enum', 'unsigned', 'signed', 'void', 'char', 'int', 'long', 'short', 'const', 'volatile', 'bool', '_Bool']);
const MAX_LENGTH = 4096;
const MAX_DEPTH = 64;

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  const re = /\s*(?:(0[xX][0-9a-fA-F]+|\d+)|([A-Za-z_]\w*)|(->|[()[\]*&.,+-]))/y;
  let at = 0;
  while (at < src.length) {
    if (/^\s*$/.test(src.slice(at))) break;
    re.lastIndex = at;
    const m = re.exec(src);
    if (!m) {
      const column = at + (src.slice(at).length - src.slice(at).trimStart().length) + 1;
      throw new ExpressionError(`unexpected character '${src[column - 1]}' at column ${column} of '${src}'`);
    }
    const start = m.index + m[0].length - (m[1] ?? m[2] ?? m[3]).length;
    if (m[1]) tokens.push({ text: m[1], kind: 'num', at: start });
    else if (m[2]) tokens.push({ text: m[2], kind: 'ident', at: start });
    else tokens.push({ text: m[3], kind: 'punct', at: start });
    at = re.lastIndex;
  }
  return tokens;
}

class Parser {
  private pos = 0;
  private depth = 0;

  constructor(
    private readonly src: string,
    private readonly tokens: Token[],
    private readonly isTypeName: (ident: string) => boolean,
  ) {}

  parse(): Node {
    const node = this.additive();
    if (this.pos < this.tokens.length) this.fail(`unexpected '${this.tokens[this.pos].text}'`);
    return node;
  }

  private fail(message: string): never {
    const t = this.tokens[this.pos];
    throw new ExpressionError(`${message} at ${t ? `column ${t.at + 1}` : 'end'} of '${this.src}'`);
  }

  private peek(offset = 0): Token | undefined {
    return this.tokens[this.pos + offset];
  }

  private take(text?: string): Token {
    const t = this.tokens[this.pos];
    if (!t) this.fail(text ? `expected '${text}'` : 'unexpected end');
    if (text !== undefined && t.text !== text) this.fail(`expected '${text}', found '${t.text}'`);
    this.pos++;
    return t;
  }

  private nested<T>(f: () => T): T {
    if (++this.depth > MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH}`);
    try {
      return f();
    } finally {
      this.depth--;
    }
  }

  private additive(): Node {
    let left = this.unary();
    while (this.peek()?.text === '+' || this.peek()?.text === '-') {
      const op = this.take().text as '+' | '-';
      left = { kind: 'binary', op, left, right: this.unary() };
    }
    return left;
  }

  private startsType(): boolean {
    const t = this.peek(1);
    if (this.peek()?.text !== '(' || !t || t.kind !== 'ident') return false;
    if (TYPE_KEYWORDS.has(t.text)) return true;
    // `(name)` or `(name *)` where name is a type and the cast applies to what follows.
    let k = 2;
    while (this.peek(k)?.text === '*') k++;
    return this.peek(k)?.text === ')' && this.isTypeName(t.text) && this.peek(k + 1) !== undefined && !['+', '-', ')', ',', ']', '.', '->', '['].includes(this.peek(k + 1)!.text);
  }

  private typeName(): string {
    const words: string[] = [];
    while (this.peek() && this.peek()!.text !== ')' && this.peek()!.text !== ',') {
      const t = this.take();
      if (t.kind !== 'ident' && t.text !== '*') this.fail(`unexpected '${t.text}' in a type name`);
      words.push(t.text);
    }
    if (words.length === 0) this.fail('expected a type name');
    return words.join(' ').replace(/ \*/g, ' *');
  }

  private unary(): Node {
    return this.nested(() => {
      const t = this.peek();
      if (!t) this.fail('expected an expression');
      if (t.text === '*') {
        this.take();
        return { kind: 'deref', operand: this.unary() };
      }
      if (t.text === '&') {
        this.take();
        return { kind: 'addr', operand: this.unary() };
      }
      if (t.text === '-') {
        this.take();
        return { kind: 'neg', operand: this.unary() };
      }
      if (this.startsType()) {
        this.take('(');
        const type = this.typeName();
        this.take(')');
        return { kind: 'cast', type, operand: this.unary() };
      }
      return this.postfix(this.primary());
    });
  }

  private postfix(node: Node): Node {
    for (;;) {
      const t = this.peek();
      if (t?.text === '.' || t?.text === '->') {
        this.take();
        const name = this.take();
        if (name.kind !== 'ident') this.fail('expected a member name');
        node = { kind: 'member', object: node, name: name.text, arrow: t.text === '->' };
      } else if (t?.text === '[') {
        this.take();
        const index = this.nested(() => this.additive());
        this.take(']');
        node = { kind: 'index', object: node, index };
      } else {
        return node;
      }
    }
  }

  private primary(): Node {
    const t = this.take();
    if (t.kind === 'num') return { kind: 'num', value: BigInt(t.text) };
    if (t.text === '(') {
      const inner = this.nested(() => this.additive());
      this.take(')');
      return inner;
    }
    if (t.kind !== 'ident') this.fail(`unexpected '${t.text}'`);
    const head = t.text;
    if (this.peek()?.text === '(') {
      if (head === 'per_cpu' || head === 'per_cpu_ptr') {
        this.take('(');
        const object = this.nested(() => this.additive());
        this.take(',');
        const cpu = this.nested(() => this.additive());
        this.take(')');
        return { kind: 'percpu', object, cpu };
      }
      if (head === 'container_of') {
        this.take('(');
        const pointer = this.nested(() => this.additive());
        this.take(',');
        const type = this.typeName();
        this.take(',');
        const member = this.take();
        if (member.kind !== 'ident') this.fail('expected a member name');
        this.take(')');
        return { kind: 'containerof', pointer, type, member: member.text };
      }
      this.fail(`unknown function '${head}' (known: per_cpu, container_of)`);
    }
    return { kind: 'ident', name: head };
  }
}

export function parseExpression(src: string, isTypeName: (ident: string) => boolean = () => false): Node {
  if (src.length > MAX_LENGTH) throw new ExpressionError(`expression longer than ${MAX_LENGTH} characters`);
  return new Parser(src, tokenize(src), isTypeName).parse();
}

/** Evaluates an expression to an object (an lvalue in memory, or a value). */
export async function evaluate(kernel: Kernel, src: string): Promise<KObject> {
  const isTypeName = (ident: string): boolean =>
    kernel.symbols.get(ident) === undefined && kernel.btf.byName(ident).some((id) => ['typedef', 'int', 'float'].includes(kernel.btf.kindOf(id)));
  const ast = parseExpression(src, isTypeName);
  return evalNode(kernel, ast);
}

async function evalNode(kernel: Kernel, node: Node): Promise<KObject> {
  switch (node.kind) {
    case 'num':
      return kernel.value(kernel.model.typeId('unsigned long'), node.value, hex(node.value));
    case 'ident':
      try {
        return kernel.variable(node.name);
      } catch (err) {
        throw new ExpressionError(err instanceof Error ? err.message : String(err));
      }
    case 'member': {
      const obj = await evalNode(kernel, node.object);
      if (node.arrow) {
        if (obj.resolved.kind !== 'ptr') throw obj.fail(`'->${node.name}' needs a pointer`);
        return (await obj.deref()).memberOf(node.name);
      }
      return obj.member(node.name);
    }
    case 'index': {
      const obj = await evalNode(kernel, node.object);
      const i = await (await evalNode(kernel, node.index)).readInt();
      return obj.index(i);
    }
    case 'deref':
      return (await evalNode(kernel, node.operand)).deref();
    case 'addr':
      return (await evalNode(kernel, node.operand)).addressOf();
    case 'neg': {
      const v = await (await evalNode(kernel, node.operand)).readInt();
      return kernel.value(kernel.model.typeId('long'), -v, `-${hex(v)}`);
    }
    case 'cast':
      return (await evalNode(kernel, node.operand)).cast(node.type);
    case 'binary': {
      const left = await evalNode(kernel, node.left);
      const right = await (await evalNode(kernel, node.right)).readInt();
      const t = left.resolved;
      const scale = t.kind === 'ptr' ? BigInt(t.type === 0 ? 1 : kernel.btf.sizeof(t.type)) : 1n;
      const v = await left.readInt();
      const result = node.op === '+' ? v + right * scale : v - right * scale;
      if (t.kind !== 'ptr' && t.kind !== 'int' && t.kind !== 'enum' && t.kind !== 'enum64') {
        throw new ObjectError(`${left.expression}: arithmetic needs an integer or pointer`);
      }
      return kernel.value(left.typeId, result, `${left.expression} ${node.op} ${right}`);
    }
    case 'percpu': {
      const obj = await evalNode(kernel, node.object);
      const cpu = await (await evalNode(kernel, node.cpu)).readInt();
      return kernel.perCpu(obj, Number(cpu));
    }
    case 'containerof': {
      const ptr = await evalNode(kernel, node.pointer);
      return ptr.containerOf(node.type, node.member);
    }
  }
}

/**
 * The address an expression designates, for raw reads (`grass read 'init_task.comm' 16`):
 * an object's own address, or a pointer's value; with the object's size when it has one.
 */
export async function expressionAddress(kernel: Kernel, src: string): Promise<{ address: bigint; size?: number; type: string }> {
  const obj = await evaluate(kernel, src);
  const t = obj.resolved;
  let size: number | undefined;
  if (obj.address !== undefined && obj.bitSize === 0) {
    try {
      size = obj.size;
    } catch {
      size = undefined;
    }
    return { address: obj.address, size, type: obj.typeName };
  }
  if (t.kind === 'ptr') {
    try {
      size = t.type === 0 ? undefined : kernel.btf.sizeof(t.type);
    } catch {
      size = undefined;
    }
    return { address: await obj.readInt(), size, type: kernel.btf.typeName(t.type) };
  }
  throw obj.fail('designates no address (not an object in memory or a pointer)');
}
