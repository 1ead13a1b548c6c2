/**
 * Indices of the points on the Pareto front (smaller size, smaller drop both better): a point is kept
 * when no other point is at most as large and at most as bad, and strictly better in one.
 */
export function paretoFront(points: readonly { sizeBytes: number; drop: number }[]): number[] {
  const order = points.map((_, i) => i).sort((a, b) => points[a].sizeBytes - points[b].sizeBytes || points[a].drop - points[b].drop || a - b);
  const front: number[] = [];
  let bestDrop = Infinity;
  for (const i of order) {
    if (points[i].drop < bestDrop) {
      front.push(i);
      bestDrop = points[i].drop;
    }
  }
  return front.sort((a, b) => a - b);
}
