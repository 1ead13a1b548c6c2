import { walkGraphs } from './model.js';
import type { GraphProto } from './proto.js';

/** Hands out value and node names that are unique across the whole model (all graphs). */
export class NameAllocator {
  private readonly used = new Set<string>();

  constructor(graph?: GraphProto) {
    if (graph) this.reserveGraph(graph);
  }

  reserveGraph(graph: GraphProto): void {
    for (const g of walkGraphs(graph)) {
      for (const v of [...g.input, ...g.output, ...g.valueInfo]) this.used.add(v.name);
      for (const t of g.initializer) this.used.add(t.name);
      for (const n of g.node) {
        if (n.name) this.used.add(n.name);
        for (const o of n.output) this.used.add(o);
        for (const i of n.input) this.used.add(i);
      }
    }
  }

  /** `base` if free, else `base_1`, `base_2`, …; the returned name is reserved. */
  allocate(base: string): string {
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  has(name: string): boolean {
    return this.used.has(name);
  }
}
