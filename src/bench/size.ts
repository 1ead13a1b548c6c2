import * as fs from 'node:fs';
import type { ModelSize } from '../documents/index.js';
import { InputError } from '../errors.js';
import { describeFsError } from '../files.js';
import { externalPath, externalRef, isExternal, walkTensors, type Model } from '../onnx/index.js';

/** Bytes on disk of a model: the .onnx file plus every external data file it references (each once). */
export function modelSize(model: Model): ModelSize {
  const modelBytes = statSize(model.file, model.file);
  const files = new Set<string>();
  for (const t of walkTensors(model.proto.graph!)) if (isExternal(t)) files.add(externalPath(model, externalRef(t, model.file)));
  let externalDataBytes = 0;
  for (const f of files) externalDataBytes += statSize(f, model.file);
  return { modelBytes, externalDataBytes, totalBytes: modelBytes + externalDataBytes };
}

function statSize(p: string, file: string): number {
  try {
    return fs.statSync(p).size;
  } catch (err) {
    throw new InputError('E_READ', `${p}: ${describeFsError(err, 'cannot read')}`, { file, cause: err });
  }
}
