import * as fs from 'node:fs';
import * as path from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { makeOwnTempDir, removeOwnTempDir } from '../files.js';
import { DataLocation, ModelProtoSchema, StringStringEntryProtoSchema, isExternal, walkTensors, type Model, type TensorProto } from '../onnx/index.js';
import { Session, type SessionOptions } from './session.js';

/** Tensors at least this large move to the temp file; smaller ones stay inline (copied off the file buffer). */
const SPILL_MIN_BYTES = 4096;
/** External offsets aligned to a page, so onnxruntime may map the data instead of copying it. */
const SPILL_ALIGN = 4096;

export interface SpilledSession {
  session: Session;
  /** Bytes that were moved out of the JS model while the session lives (0 when nothing was spilled). */
  spilledBytes: number;
  /** Release the session, put the tensors back into the model (fresh buffers), remove the temp files. */
  release(): Promise<void>;
}

/**
 * Open a session on `model` without holding its weights twice: every inline tensor of at least 4 KiB
 * is written to a temp file, the model's TensorProtos are turned into external references to it (in
 * place: `model` must not be read while the session lives), onnxruntime loads from that file, and the
 * JS copies can be collected. Smaller inline tensors are copied off the buffer the model was parsed
 * from, so that buffer is released too. `release()` restores every tensor byte for byte. Models that
 * already have external data, or are small, open as usual.
 */
export async function openSpilledSession(model: Model, opts: SessionOptions & { minBytes?: number } = {}): Promise<SpilledSession> {
  const tensors = [...walkTensors(model.proto.graph!)];
  const big = tensors.filter((t) => !isExternal(t) && t.rawData.length >= SPILL_MIN_BYTES);
  const total = big.reduce((a, t) => a + t.rawData.length, 0);
  if (tensors.some(isExternal) || total < (opts.minBytes ?? 64 * 1024 * 1024)) {
    const session = await Session.open(model, opts);
    return { session, spilledBytes: 0, release: () => session.release() };
  }
  const dir = makeOwnTempDir('spill');
  const dataName = 'weights.bin';
  const dataPath = path.join(dir, dataName);
  const moved: { t: TensorProto; offset: number; length: number; location: DataLocation | undefined; external: TensorProto['externalData'] }[] = [];
  const restore = () => {
    if (moved.length === 0) return;
    const fd = fs.openSync(dataPath, 'r');
    try {
      for (const m of moved) {
        const bytes = new Uint8Array(m.length);
        let done = 0;
        while (done < m.length) {
          const n = fs.readSync(fd, bytes, done, m.length - done, m.offset + done);
          if (n <= 0) throw new Error(`spill: short read of tensor "${m.t.name}"`);
          done += n;
        }
        m.t.rawData = bytes;
        // proto2 presence: a field that was unset must be unset again (not set to its default).
        if (m.location === undefined) delete (m.t as { dataLocation?: DataLocation }).dataLocation;
        else m.t.dataLocation = m.location;
        m.t.externalData = m.external;
      }
    } finally {
      fs.closeSync(fd);
    }
    moved.length = 0;
  };
  try {
    const fd = fs.openSync(dataPath, 'w');
    try {
      let offset = 0;
      for (const t of big) {
        const pad = (SPILL_ALIGN - (offset % SPILL_ALIGN)) % SPILL_ALIGN;
        offset += pad;
        const length = t.rawData.length;
        let done = 0;
        while (done < length) done += fs.writeSync(fd, t.rawData, done, length - done, offset + done);
        moved.push({ t, offset, length, location: Object.prototype.hasOwnProperty.call(t, 'dataLocation') ? t.dataLocation : undefined, external: t.externalData });
        t.rawData = new Uint8Array(0);
        t.dataLocation = DataLocation.EXTERNAL;
        t.externalData = [
          create(StringStringEntryProtoSchema, { key: 'location', value: dataName }),
          create(StringStringEntryProtoSchema, { key: 'offset', value: String(offset) }),
          create(StringStringEntryProtoSchema, { key: 'length', value: String(length) }),
        ];
        offset += length;
      }
    } finally {
      fs.closeSync(fd);
    }
    // Small tensors parsed from one file buffer keep all of it alive: give them their own bytes.
    for (const t of tensors) if (!isExternal(t) && t.rawData.buffer.byteLength > 2 * t.rawData.byteLength + 4096) t.rawData = t.rawData.slice();
    const file = path.join(dir, 'model.onnx');
    fs.writeFileSync(file, toBinary(ModelProtoSchema, model.proto));
    const session = await Session.open(file, { ...opts, name: opts.name ?? model.file });
    return {
      session,
      spilledBytes: total,
      async release() {
        try {
          await session.release();
        } finally {
          try {
            restore();
          } finally {
            removeOwnTempDir(dir);
          }
        }
      },
    };
  } catch (err) {
    try {
      restore();
    } finally {
      removeOwnTempDir(dir);
    }
    throw err;
  }
}
