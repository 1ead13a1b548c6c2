/**
 * Calibration coverage (issue 11): does the calibration data exercise a model output at all? A
 * quantized range is only as good as the data that set it: a wake-word head calibrated on windows
 * without one positive example gets its output range capped below the decision point and never fires
 * again, while fidelity on the same data looks perfect. Pure arithmetic over the float model's outputs.
 *
 * Warnings (each a plain fact about the data, no tuned constant):
 * - constant: every value of the output is the same (max = min);
 * - a Sigmoid output (or any output in [0, 1] whose producer is Sigmoid) that never passes 0.5 — or
 *   never drops below it: the data holds one decision only;
 * - a Softmax/LogSoftmax output [.., C] (C > 1) whose argmax over the last axis is the same class at
 *   every row/position (raw scores from a Gemm are not judged: they may be an embedding).
 */
export class OutputCoverage {
  private min = Infinity;
  private max = -Infinity;
  private count = 0;
  private classes = 0;
  private readonly argmaxSeen = new Set<number>();
  private rows = 0;

  constructor(
    readonly name: string,
    /** Op type producing the output (Sigmoid, Softmax, …), when known. */
    readonly producerOp?: string,
  ) {}

  /** Fold in one batch of the float model's output (`dims` its shape). */
  update(y: Float32Array, dims: readonly number[]): void {
    for (let i = 0; i < y.length; i++) {
      const v = y[i];
      if (!Number.isFinite(v)) continue;
      if (v < this.min) this.min = v;
      if (v > this.max) this.max = v;
    }
    this.count += y.length;
    const c = dims.length >= 2 ? dims[dims.length - 1] : 0;
    if (c > 1 && y.length % c === 0) {
      this.classes = c;
      for (let r = 0; r < y.length / c; r++) {
        let best = 0;
        for (let k = 1; k < c; k++) if (y[r * c + k] > y[r * c + best]) best = k;
        this.argmaxSeen.add(best);
      }
      this.rows += y.length / c;
    }
  }

  /** Warnings about this output over everything folded in (none when nothing was seen). */
  warnings(): string[] {
    if (this.count === 0 || !(this.max >= this.min)) return [];
    const out: string[] = [];
    const n = this.count;
    if (this.max === this.min) {
      out.push(`calibration coverage: output "${this.name}" is constant (${this.min}) over all ${n} calibration values: the data does not exercise it, so its quantized range says nothing about real inputs`);
      return out;
    }
    const isSigmoid = this.producerOp === 'Sigmoid';
    if (isSigmoid && this.max < 0.5) {
      out.push(`calibration coverage: Sigmoid output "${this.name}" never passes 0.5 on the calibration data (max ${this.max.toPrecision(4)}): not one positive example, so the quantized output may never fire; calibrate with positive examples`);
    } else if (isSigmoid && this.min > 0.5) {
      out.push(`calibration coverage: Sigmoid output "${this.name}" never drops below 0.5 on the calibration data (min ${this.min.toPrecision(4)}): not one negative example; calibrate with both outcomes`);
    }
    const classLike = this.producerOp === 'Softmax' || this.producerOp === 'LogSoftmax';
    if (classLike && this.classes > 1 && this.rows > 1 && this.argmaxSeen.size === 1) {
      const [k] = this.argmaxSeen;
      out.push(`calibration coverage: output "${this.name}" has the same argmax class (${k} of ${this.classes}) at all ${this.rows} calibration rows/positions: the data covers one class only; calibrate with inputs of several classes`);
    }
    return out;
  }
}
