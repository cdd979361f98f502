// One instance of a protocol.h struct inside a reply: its fields read by name through the
// offsets of layout.ts, little-endian as the agent writes them. The decoders share it so that
// none of them repeats the offset arithmetic.
import type { FieldLayout, StructLayout } from './layout';

const textDecoder = new TextDecoder('utf-8');

/** A NUL-padded char array as a string (up to the first NUL). */
export function cString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return textDecoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
}

export class StructView {
  private constructor(
    private readonly bytes: Uint8Array,
    private readonly view: DataView,
    readonly layout: StructLayout,
    /** Where the struct starts in `bytes`. */
    readonly base: number,
  ) {}

  /** `count` structs back to back from `base` of `bytes`; `what` names the bytes when they are too short. */
  static array(bytes: Uint8Array, layout: StructLayout, count: number, base = 0, what = layout.name): StructView[] {
    const need = count * layout.size;
    if (base + need > bytes.length) throw new Error(`${what}: ${bytes.length - base} bytes, need ${need}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return Array.from({ length: count }, (_, i) => new StructView(bytes, view, layout, base + i * layout.size));
  }

  /** The struct at `base` of `bytes`. */
  static at(bytes: Uint8Array, layout: StructLayout, base = 0, what = layout.name): StructView {
    return StructView.array(bytes, layout, 1, base, what)[0];
  }

  private field(name: string): FieldLayout {
    const f = this.layout.fields[name];
    if (!f) throw new Error(`${this.layout.name} has no field ${name}`);
    return f;
  }

  /** Byte offset in `bytes` of element `index` of a field whose elements are `width` bytes. */
  private offset(name: string, index: number, width: number): number {
    const f = this.field(name);
    if (!Number.isInteger(index) || index < 0 || (index + 1) * width > f.size) throw new Error(`${this.layout.name}.${name}[${index}] is outside the field`);
    return this.base + f.offset + index * width;
  }

  u16(name: string, index = 0): number {
    return this.view.getUint16(this.offset(name, index, 2), true);
  }

  u32(name: string, index = 0): number {
    return this.view.getUint32(this.offset(name, index, 4), true);
  }

  i32(name: string, index = 0): number {
    return this.view.getInt32(this.offset(name, index, 4), true);
  }

  u64(name: string, index = 0): bigint {
    return this.view.getBigUint64(this.offset(name, index, 8), true);
  }

  /** A char array field as a string (up to its first NUL). */
  text(name: string): string {
    const f = this.field(name);
    return cString(this.bytes.subarray(this.base + f.offset, this.base + f.offset + f.size));
  }

  /** A single char field as a one-letter string. */
  char(name: string): string {
    return String.fromCharCode(this.bytes[this.offset(name, 0, 1)]);
  }

  /** The first `count` elements of a field that is an array of `layout` structs. */
  elements(name: string, layout: StructLayout, count: number): StructView[] {
    const f = this.field(name);
    if (count * layout.size > f.size) throw new Error(`${this.layout.name}.${name} holds fewer than ${count} ${layout.name}`);
    return Array.from({ length: count }, (_, i) => new StructView(this.bytes, this.view, layout, this.base + f.offset + i * layout.size));
  }
}
