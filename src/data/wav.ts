/**
 * WAV (RIFF/WAVE) reading: PCM 8/16/24/32-bit and IEEE float 32/64, plain or WAVE_FORMAT_EXTENSIBLE,
 * any channel count (mixed down to mono by averaging). Samples come out as float32 in [-1, 1)
 * (PCM divided by 2^(bits-1)). Other encodings (ADPCM, µ-law, …) are refused naming the file.
 */
import * as fs from 'node:fs';
import { InputError } from '../errors.js';
import { describeFsError } from '../files.js';

export interface WavAudio {
  readonly sampleRate: number;
  /** Channels in the file (before the mix-down). */
  readonly channels: number;
  readonly bitsPerSample: number;
  readonly encoding: 'pcm' | 'float';
  /** Mono samples in [-1, 1]. */
  readonly samples: Float32Array;
}

const FORMAT_NAMES: Readonly<Record<number, string>> = { 2: 'MS ADPCM', 6: 'A-law', 7: 'µ-law', 0x11: 'IMA ADPCM', 0x55: 'MP3', 0x50: 'MPEG' };

export interface WavHeader {
  readonly sampleRate: number;
  readonly channels: number;
  readonly bitsPerSample: number;
  /** Frames (samples per channel) in the data chunk. */
  readonly frames: number;
}

/** Read the header of a WAV file (the first 1 MiB, enough for the fmt chunk and any metadata before data). */
export function readWavHeader(file: string): WavHeader {
  let head: Buffer;
  let size: number;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      size = fs.fstatSync(fd).size;
      head = Buffer.alloc(Math.min(size, 1 << 20));
      fs.readSync(fd, head, 0, head.length, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    throw new InputError('E_READ', describeFsError(err, 'cannot read audio'), { file, cause: err });
  }
  return parseWav(head, file, size).header;
}

/**
 * Find and check the fmt and data chunks. `fileSize` (when `bytes` is a prefix of the file) sizes the
 * data chunk from its header instead of the bytes at hand.
 */
function parseWav(bytes: Uint8Array, file: string, fileSize = bytes.length): { header: WavHeader & { encoding: 'pcm' | 'float' }; data: Uint8Array } {
  const fail = (msg: string) => new InputError('E_DATA_FORMAT', msg, { file });
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (o: number) => String.fromCharCode(bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]);
  if (bytes.length < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw fail(`not a WAV file: expected a RIFF/WAVE header, got ${bytes.length < 12 ? `${bytes.length} bytes` : JSON.stringify(tag(0) + '…' + tag(8))}`);
  let fmt: { format: number; channels: number; rate: number; align: number; bits: number } | undefined;
  let data: Uint8Array | undefined;
  let dataSize = 0;
  for (let o = 12; o + 8 <= bytes.length; ) {
    const id = tag(o);
    const size = dv.getUint32(o + 4, true);
    const body = o + 8;
    const end = Math.min(body + size, bytes.length);
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > bytes.length) throw fail(`fmt chunk of ${size} bytes: expected at least 16`);
      let format = dv.getUint16(body, true);
      if (format === 0xfffe && size >= 40) format = dv.getUint16(body + 24, true); // SubFormat GUID's first two bytes
      fmt = { format, channels: dv.getUint16(body + 2, true), rate: dv.getUint32(body + 4, true), align: dv.getUint16(body + 12, true), bits: dv.getUint16(body + 14, true) };
    } else if (id === 'data') {
      data = bytes.subarray(body, end);
      dataSize = Math.min(size, fileSize - body);
      if (fmt) break;
    }
    o = body + size + (size & 1);
  }
  if (!fmt) throw fail('no fmt chunk: expected a WAV file with a format header');
  if (!data) throw fail('no data chunk: expected audio samples');
  const { format, channels, rate, bits } = fmt;
  const isPcm = format === 1;
  const isFloat = format === 3;
  if (!isPcm && !isFloat) throw fail(`unsupported WAV encoding ${FORMAT_NAMES[format] ?? `format ${format}`}: expected PCM (8/16/24/32-bit) or IEEE float (32/64-bit)`);
  if ((isPcm && ![8, 16, 24, 32].includes(bits)) || (isFloat && bits !== 32 && bits !== 64)) throw fail(`unsupported WAV encoding: ${isPcm ? 'PCM' : 'float'} with ${bits} bits per sample: expected ${isPcm ? '8, 16, 24 or 32' : '32 or 64'}`);
  if (channels < 1) throw fail('0 channels: expected at least one');
  if (!(rate > 0)) throw fail(`sample rate ${rate}: expected a positive rate`);
  return { header: { sampleRate: rate, channels, bitsPerSample: bits, frames: Math.floor(dataSize / (channels * (bits / 8))), encoding: isFloat ? 'float' : 'pcm' }, data };
}

/** Parse WAV bytes (the whole file) into mono float samples. */
export function decodeWav(bytes: Uint8Array, file: string): WavAudio {
  const { header, data } = parseWav(bytes, file);
  const { channels, bitsPerSample: bits } = header;
  const isFloat = header.encoding === 'float';
  const bps = bits / 8;
  const frames = Math.floor(data.length / (bps * channels));
  const out = new Float32Array(frames);
  const d = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const inv = 1 / channels;
  const read: (o: number) => number = isFloat
    ? bits === 32
      ? (o) => d.getFloat32(o, true)
      : (o) => d.getFloat64(o, true)
    : bits === 8
      ? (o) => (d.getUint8(o) - 128) / 128
      : bits === 16
        ? (o) => d.getInt16(o, true) / 32768
        : bits === 24
          ? (o) => ((d.getUint8(o) | (d.getUint8(o + 1) << 8) | (d.getInt8(o + 2) << 16)) / 8388608)
          : (o) => d.getInt32(o, true) / 2147483648;
  for (let f = 0, o = 0; f < frames; f++) {
    let s = 0;
    for (let c = 0; c < channels; c++, o += bps) s += read(o);
    out[f] = channels === 1 ? s : s * inv;
  }
  return { sampleRate: header.sampleRate, channels, bitsPerSample: bits, encoding: header.encoding, samples: out };
}

export function readWav(file: string): WavAudio {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new InputError('E_READ', describeFsError(err, 'cannot read audio'), { file, cause: err });
  }
  return decodeWav(bytes, file);
}

/** Encode mono or interleaved samples as a WAV file (for tests and fixtures). */
export function encodeWav(samples: Float32Array, opts: { sampleRate: number; channels?: number; bits?: 8 | 16 | 24 | 32; float?: boolean; format?: number }): Uint8Array {
  const channels = opts.channels ?? 1;
  const bits = opts.bits ?? 16;
  const isFloat = opts.float ?? false;
  const bps = bits / 8;
  const dataBytes = samples.length * bps;
  const buf = new Uint8Array(44 + dataBytes);
  const dv = new DataView(buf.buffer);
  const put = (o: number, s: string) => {
    for (let i = 0; i < 4; i++) buf[o + i] = s.charCodeAt(i);
  };
  put(0, 'RIFF');
  dv.setUint32(4, 36 + dataBytes, true);
  put(8, 'WAVE');
  put(12, 'fmt ');
  dv.setUint32(16, 16, true);
  dv.setUint16(20, opts.format ?? (isFloat ? 3 : 1), true);
  dv.setUint16(22, channels, true);
  dv.setUint32(24, opts.sampleRate, true);
  dv.setUint32(28, opts.sampleRate * channels * bps, true);
  dv.setUint16(32, channels * bps, true);
  dv.setUint16(34, bits, true);
  put(36, 'data');
  dv.setUint32(40, dataBytes, true);
  const clamp = (v: number, m: number) => Math.max(-m, Math.min(m - 1, Math.round(v * m)));
  for (let i = 0, o = 44; i < samples.length; i++, o += bps) {
    const v = samples[i];
    if (isFloat) dv.setFloat32(o, v, true);
    else if (bits === 8) dv.setUint8(o, clamp(v, 128) + 128);
    else if (bits === 16) dv.setInt16(o, clamp(v, 32768), true);
    else if (bits === 24) {
      const x = clamp(v, 8388608);
      dv.setUint8(o, x & 0xff);
      dv.setUint8(o + 1, (x >> 8) & 0xff);
      dv.setInt8(o + 2, x >> 16);
    } else dv.setInt32(o, clamp(v, 2147483648), true);
  }
  return buf;
}
