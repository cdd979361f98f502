/**
 * What two V8 heap snapshots of one process differ by: the objects in the later one that the
 * earlier one did not have (V8 keeps an object's id across snapshots), grouped by constructor,
 * with a retainer path for a sample of the biggest groups. Used to find what a long run keeps.
 *
 *   node --import tsx test/long/heap-diff.ts EARLIER.heapsnapshot LATER.heapsnapshot [GROUPS]
 *
 * GROUPS: how many groups to print (25); HEAP_DIFF_DEPTH: steps of each retainer path (12).
 */
import * as fs from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

interface Heap {
  raw: Snapshot;
  nodeFieldCount: number;
  edgeFieldCount: number;
  field: Record<string, number>;
  edgeField: Record<string, number>;
  nodeTypes: string[];
  edgeTypes: string[];
  firstEdge: Uint32Array;
}

function load(file: string): Heap {
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Snapshot;
  const meta = raw.snapshot.meta;
  const field = Object.fromEntries(meta.node_fields.map((f, i) => [f, i]));
  const edgeField = Object.fromEntries(meta.edge_fields.map((f, i) => [f, i]));
  const nodeFieldCount = meta.node_fields.length;
  const count = raw.nodes.length / nodeFieldCount;
  const firstEdge = new Uint32Array(count + 1);
  for (let n = 0, e = 0; n < count; n++) {
    firstEdge[n] = e;
    e += raw.nodes[n * nodeFieldCount + field.edge_count] * meta.edge_fields.length;
  }
  firstEdge[count] = raw.edges.length;
  return {
    raw, nodeFieldCount, edgeFieldCount: meta.edge_fields.length, field, edgeField,
    nodeTypes: meta.node_types[0], edgeTypes: meta.edge_types[0], firstEdge,
  };
}

const nodeValue = (h: Heap, n: number, f: string) => h.raw.nodes[n * h.nodeFieldCount + h.field[f]];
const nodeLabel = (h: Heap, n: number) => `${h.nodeTypes[nodeValue(h, n, 'type')]}:${h.raw.strings[nodeValue(h, n, 'name')].slice(0, 80)}`;

function main(): void {
  const [earlierFile, laterFile, groupsArg] = process.argv.slice(2);
  if (!earlierFile || !laterFile) throw new Error('usage: heap-diff.ts EARLIER.heapsnapshot LATER.heapsnapshot [GROUPS]');
  const earlier = load(earlierFile);
  const earlierIds = new Set<number>();
  for (let n = 0; n < earlier.raw.nodes.length / earlier.nodeFieldCount; n++) earlierIds.add(nodeValue(earlier, n, 'id'));
  earlier.raw.nodes = [];

  const later = load(laterFile);
  const count = later.raw.nodes.length / later.nodeFieldCount;
  const isNew = new Uint8Array(count);
  const groups = new Map<string, { count: number; bytes: number; sample: number[] }>();
  for (let n = 0; n < count; n++) {
    if (earlierIds.has(nodeValue(later, n, 'id'))) continue;
    isNew[n] = 1;
    const label = nodeLabel(later, n);
    const g = groups.get(label) ?? { count: 0, bytes: 0, sample: [] };
    g.count++;
    g.bytes += nodeValue(later, n, 'self_size');
    if (g.sample.length < 3) g.sample.push(n);
    groups.set(label, g);
  }

  // Who holds each node: only strong edges, so a path is what keeps the object alive.
  const retainers = new Map<number, { from: number; edge: string }[]>();
  for (let from = 0; from < count; from++) {
    for (let e = later.firstEdge[from]; e < later.firstEdge[from + 1]; e += later.edgeFieldCount) {
      const type = later.edgeTypes[later.raw.edges[e + later.edgeField.type]];
      if (type === 'weak' || type === 'shortcut') continue;
      const to = later.raw.edges[e + later.edgeField.to_node] / later.nodeFieldCount;
      const nameOrIndex = later.raw.edges[e + later.edgeField.name_or_index];
      const edge = type === 'element' || type === 'hidden' ? `[${nameOrIndex}]` : later.raw.strings[nameOrIndex];
      const list = retainers.get(to) ?? [];
      if (list.length < 4) list.push({ from, edge });
      retainers.set(to, list);
    }
  }
  const path = (n: number): string => {
    const steps: string[] = [];
    const seen = new Set<number>([n]);
    for (let depth = 0; depth < Number(process.env.HEAP_DIFF_DEPTH ?? 12); depth++) {
      const next = (retainers.get(n) ?? []).find((r) => !seen.has(r.from));
      if (!next) break;
      steps.push(`.${next.edge} of ${nodeLabel(later, next.from)}${isNew[next.from] ? ' (new)' : ''}`);
      seen.add(next.from);
      n = next.from;
    }
    return steps.join('\n        ');
  };

  const sorted = [...groups.entries()].sort((a, b) => b[1].bytes - a[1].bytes);
  const total = sorted.reduce((s, [, g]) => s + g.bytes, 0);
  console.log(`${sorted.reduce((s, [, g]) => s + g.count, 0)} objects, ${Math.round(total / 1024)} KiB in ${laterFile} that ${earlierFile} did not have`);
  for (const [label, g] of sorted.slice(0, Number(groupsArg ?? 25))) {
    console.log(`${String(Math.round(g.bytes / 1024)).padStart(8)} KiB ${String(g.count).padStart(8)}  ${label}`);
    console.log(`        ${path(g.sample[g.sample.length - 1])}`);
  }
}

main();
