import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeWav, encodeWav, openDataset, readWavHeader, resample, type Dataset } from '../../src/data/index.js';
import { InputError, UsageError } from '../../src/errors.js';
import type { Feeds } from '../../src/tensor/index.js';
import { identityModel } from '../helpers/input-models.js';
import { makeTempDir } from '../helpers/tmp.js';

async function collect(ds: Dataset, batchSize: number): Promise<Feeds[]> {
  const out: Feeds[] = [];
  for await (const f of ds.batches(batchSize)) out.push(f);
  return out;
}

function tone(freq: number, rate: number, n: number, amp = 0.5): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * freq * i) / rate));
}

/** Amplitude (dB re. the input amplitude) of a resampled tone, measured on the middle half. */
function gainDb(freq: number, from: number, to: number): number {
  const y = resample(tone(freq, from, from, 1), from, to);
  const a = Math.floor(y.length / 4);
  const b = Math.floor((3 * y.length) / 4);
  let s = 0;
  for (let i = a; i < b; i++) s += y[i] * y[i];
  return 20 * Math.log10(Math.sqrt(s / (b - a)) * Math.SQRT2);
}

describe('resample (polyphase windowed sinc)', () => {
  it('48 kHz → 16 kHz: flat pass band to 6 kHz, > 80 dB rejection of what would alias', () => {
    for (const f of [100, 1000, 3000, 6000]) expect(Math.abs(gainDb(f, 48000, 16000))).toBeLessThan(0.01);
    for (const f of [8500, 10000, 15000, 20000]) expect(gainDb(f, 48000, 16000)).toBeLessThan(-80);
  });

  it('44.1 kHz → 16 kHz (L/M = 160/441) and 8 kHz → 16 kHz (upsampling) keep tones and length', () => {
    for (const f of [440, 5000]) expect(Math.abs(gainDb(f, 44100, 16000))).toBeLessThan(0.01);
    expect(gainDb(12000, 44100, 16000)).toBeLessThan(-80);
    expect(Math.abs(gainDb(1000, 8000, 16000))).toBeLessThan(0.01);
    const y = resample(tone(1000, 8000, 800), 8000, 16000);
    expect(y.length).toBe(1600);
    // The upsampled tone matches the analytic one at the new rate (phase preserved, no delay).
    for (let i = 400; i < 1200; i++) expect(y[i]).toBeCloseTo(0.5 * Math.sin((2 * Math.PI * 1000 * i) / 16000), 3);
  });

  it('keeps DC exactly and returns the input when the rates match', () => {
    const x = new Float32Array(3000).fill(0.25);
    const y = resample(x, 22050, 16000);
    for (let i = 100; i < y.length - 100; i++) expect(y[i]).toBeCloseTo(0.25, 6);
    expect(resample(x, 16000, 16000)).toBe(x);
  });
});

describe('WAV', () => {
  it('round-trips PCM 8/16/24/32 and float32, and mixes stereo down to mono', () => {
    const x = tone(440, 16000, 200, 0.8);
    for (const [bits, tol] of [
      [8, 1 / 120],
      [16, 1 / 30000],
      [24, 1e-6],
      [32, 1e-8],
    ] as const) {
      const w = decodeWav(encodeWav(x, { sampleRate: 16000, bits }), 'x.wav');
      expect(w.sampleRate).toBe(16000);
      expect(w.bitsPerSample).toBe(bits);
      let err = 0;
      for (let i = 0; i < x.length; i++) err = Math.max(err, Math.abs(w.samples[i] - x[i]));
      expect(err).toBeLessThan(tol);
    }
    const f = decodeWav(encodeWav(x, { sampleRate: 8000, float: true, bits: 32 }), 'f.wav');
    expect(f.encoding).toBe('float');
    expect(f.samples).toEqual(x);
    const stereo = Float32Array.from({ length: 400 }, (_, i) => (i % 2 ? 0.5 : -0.25));
    const m = decodeWav(encodeWav(stereo, { sampleRate: 8000, channels: 2 }), 's.wav');
    expect(m.channels).toBe(2);
    expect(m.samples.length).toBe(200);
    expect(m.samples[7]).toBeCloseTo(0.125, 4);
  });

  it('refuses other encodings and non-WAV bytes naming the file', () => {
    const adpcm = encodeWav(new Float32Array(10), { sampleRate: 8000, format: 2 });
    expect(() => decodeWav(adpcm, 'a.wav')).toThrow(/^a\.wav: unsupported WAV encoding MS ADPCM: expected PCM/);
    expect(() => decodeWav(new Uint8Array(40), 'z.wav')).toThrow(InputError);
    expect(() => decodeWav(encodeWav(new Float32Array(4), { sampleRate: 8000, bits: 16, format: 3 }), 'h.wav')).toThrow(/float with 16 bits/);
  });
});

describe('audio folders', () => {
  let dir: string;
  beforeAll(() => {
    dir = makeTempDir();
    fs.mkdirSync(path.join(dir, 'clips'));
    // 1.0 s at 48 kHz (PCM16), 0.5 s at 16 kHz (float32), 0.05 s at 16 kHz stereo PCM24.
    fs.writeFileSync(path.join(dir, 'clips', 'a.wav'), encodeWav(tone(1000, 48000, 48000), { sampleRate: 48000, bits: 16 }));
    fs.writeFileSync(path.join(dir, 'clips', 'b.wav'), encodeWav(tone(1000, 16000, 8000), { sampleRate: 16000, float: true, bits: 32 }));
    fs.writeFileSync(path.join(dir, 'clips', 'c.wav'), encodeWav(tone(1000, 16000, 1600), { sampleRate: 16000, bits: 24, channels: 2 }));
  });

  it('resamples to --sample-rate and cuts windows of the input length; short files give one padded window', async () => {
    const model = identityModel([{ name: 'audio', dtype: 'float32', dims: ['batch', 4000] }]);
    const ds = await openDataset(path.join(dir, 'clips'), model, { sampleRate: 16000 });
    // a: 16000 samples → 4 windows; b: 8000 → 2; c: 800 → 1 (padded).
    expect(ds.sampleCount).toBe(7);
    expect(ds.sampleKeys).toEqual(['a.wav', 'a.wav', 'a.wav', 'a.wav', 'b.wav', 'b.wav', 'c.wav']);
    expect(ds.description).toMatch(/3 WAV files at 16000 Hz, windows of 4000, hop 4000/);
    expect(ds.warnings.join()).toMatch(/resampled 1 of 3 files to 16000 Hz/);
    const batches = await collect(ds, 8);
    expect(batches[0].audio.dims).toEqual([7, 4000]);
    const d = batches[0].audio.data as Float32Array;
    // Window 1 of a.wav is the 1 kHz tone at 16 kHz, samples 4000..7999.
    for (let i = 100; i < 3900; i += 97) expect(d[4000 + i]).toBeCloseTo(0.5 * Math.sin((2 * Math.PI * 1000 * (4000 + i)) / 16000), 3);
    // c.wav: 800 samples then zeros.
    expect(d[6 * 4000 + 900]).toBe(0);
    expect(Math.abs(d[6 * 4000 + 101])).toBeGreaterThan(0.05);
  });

  it('--window/--hop on a dynamic input, and scale=32768 for an int16-scale model', async () => {
    const model = identityModel([{ name: 'wav', dtype: 'float32', dims: ['batch', 1, 'time'] }]);
    const ds = await openDataset(path.join(dir, 'clips', 'b.wav'), model, { window: 2000, hop: 1000, preprocess: { scale: 32768 } });
    expect(ds.sampleCount).toBe(7); // (8000 - 2000) / 1000 + 1
    const [b] = await collect(ds, 16);
    expect(b.wav.dims).toEqual([7, 1, 2000]);
    const d = b.wav.data as Float32Array;
    expect(d[2000 + 5]).toBeCloseTo(32768 * 0.5 * Math.sin((2 * Math.PI * 1000 * 1005) / 16000), 0);
    expect(ds.warnings.join()).toMatch(/no --sample-rate given, using the files' 16000 Hz/);
  });

  it('whole files on a dynamic input; int16 inputs get PCM16 values', async () => {
    const model = identityModel([{ name: 'pcm', dtype: 'int16', dims: ['batch', 'n'] }]);
    const ds = await openDataset(path.join(dir, 'clips'), model, { sampleRate: 16000 });
    expect(ds.sampleCount).toBe(3);
    const batches = await collect(ds, 4);
    expect(batches.map((b) => b.pcm.dims)).toEqual([[1, 16000], [1, 8000], [1, 800]]);
    expect((batches[1].pcm.data as Int16Array)[4]).toBe(Math.round(16384 * Math.sin((2 * Math.PI * 4) / 16)));
  });

  it('refuses mixed rates without --sample-rate, unsupported encodings and a window the model does not fix', async () => {
    const model = identityModel([{ name: 'audio', dtype: 'float32', dims: ['batch', 4000] }]);
    await expect(openDataset(path.join(dir, 'clips'), model)).rejects.toThrow(/b\.wav: sample rate 16000 Hz, .*a\.wav has 48000 Hz: pass --sample-rate/);
    await expect(openDataset(path.join(dir, 'clips'), model, { sampleRate: 16000, window: 1000 })).rejects.toThrow(UsageError);
    const bad = path.join(dir, 'bad');
    fs.mkdirSync(bad);
    fs.writeFileSync(path.join(bad, 'x.wav'), encodeWav(new Float32Array(100), { sampleRate: 16000, format: 7 }));
    const err = await openDataset(bad, model).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).exitCode).toBe(3);
    expect((err as InputError).file).toBe(path.join(bad, 'x.wav'));
    expect((err as Error).message).toMatch(/unsupported WAV encoding µ-law/);
    expect(readWavHeader(path.join(dir, 'clips', 'a.wav'))).toEqual({ sampleRate: 48000, channels: 1, bitsPerSample: 16, frames: 48000, encoding: 'pcm' });
  });
});
