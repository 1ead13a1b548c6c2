import { create, isFieldSet, toBinary, type DescMessage, type DescField } from '@bufbuild/protobuf';

/**
 * Protobuf encoding into a list of byte pieces instead of one buffer, so a large model is
 * written without ever being concatenated: `bytes` fields at or above `bigBytes` are emitted
 * by reference. Output is byte-identical to protobuf-es' toBinary (fields in number order,
 * then unknown fields), which the round-trip tests check.
 */
export interface EncodeHooks {
  /** Bytes fields of at least this many bytes are referenced, not copied. */
  bigBytes: number;
  /**
   * Called for each message before encoding; may return a replacement (used to move
   * tensor data to an external file). Must return the same message when nothing changes.
   */
  rewrite?: (schema: DescMessage, msg: Msg) => Msg;
}

type Msg = { $typeName: string; $unknown?: { no: number; wireType: number; data: Uint8Array }[] } & Record<string, unknown>;

export interface Pieces {
  list: Uint8Array[];
  length: number;
}

export function encodeToPieces(schema: DescMessage, msg: object, hooks: EncodeHooks): Pieces {
  const enc = new PieceEncoder(hooks);
  return enc.message(schema, msg as Msg);
}

class PieceEncoder {
  private readonly bigCache = new WeakMap<object, boolean>();
  constructor(private readonly hooks: EncodeHooks) {}

  message(schema: DescMessage, original: Msg): Pieces {
    const msg = this.hooks.rewrite ? this.hooks.rewrite(schema, original) : original;
    if (!this.hasBig(schema, msg)) {
      const b = toBinary(schema, msg as never);
      return { list: [b], length: b.length };
    }
    const out: Pieces = { list: [], length: 0 };
    const fields = [...schema.fields].sort((a, b) => a.number - b.number);
    for (const f of fields) {
      if (!isFieldSet(msg as never, f)) continue;
      const value = msg[f.localName];
      if (f.fieldKind === 'message' && this.hasBigValue(f, value)) {
        this.pushSubMessage(out, f, f.message, value as Msg);
      } else if (f.fieldKind === 'list' && f.listKind === 'message' && (value as Msg[]).some((v) => this.hasBig(f.message, v))) {
        for (const el of value as Msg[]) this.pushSubMessage(out, f, f.message, el);
      } else if (f.fieldKind === 'scalar' && value instanceof Uint8Array && value.length >= this.hooks.bigBytes) {
        push(out, tagAndLength(f.number, value.length));
        push(out, value);
      } else {
        const one = create(schema) as unknown as Msg;
        one[f.localName] = value;
        push(out, toBinary(schema, one as never));
      }
    }
    if (msg.$unknown && msg.$unknown.length > 0) {
      const one = create(schema) as unknown as Msg;
      one.$unknown = msg.$unknown;
      push(out, toBinary(schema, one as never));
    }
    return out;
  }

  private pushSubMessage(out: Pieces, f: DescField, schema: DescMessage, value: Msg): void {
    const sub = this.message(schema, value);
    push(out, tagAndLength(f.number, sub.length));
    for (const p of sub.list) push(out, p);
  }

  private hasBigValue(f: DescField & { fieldKind: 'message' }, value: unknown): boolean {
    return value !== undefined && this.hasBig(f.message, value as Msg);
  }

  /** Does this message (or anything below it) hold a big bytes field, or need rewriting? */
  private hasBig(schema: DescMessage, msg: Msg): boolean {
    const cached = this.bigCache.get(msg);
    if (cached !== undefined) return cached;
    let big = this.hooks.rewrite !== undefined && this.hooks.rewrite(schema, msg) !== msg;
    if (!big) {
      for (const f of schema.fields) {
        if (f.fieldKind === 'message') {
          const v = msg[f.localName] as Msg | undefined;
          if (v !== undefined && this.hasBig(f.message, v)) big = true;
        } else if (f.fieldKind === 'list' && f.listKind === 'message') {
          for (const v of msg[f.localName] as Msg[]) if (this.hasBig(f.message, v)) big = true;
        } else if (f.fieldKind === 'scalar') {
          const v = msg[f.localName];
          if (v instanceof Uint8Array && v.length >= this.hooks.bigBytes) big = true;
        }
        if (big) break;
      }
    }
    this.bigCache.set(msg, big);
    return big;
  }
}

function push(out: Pieces, b: Uint8Array): void {
  if (b.length === 0) return;
  out.list.push(b);
  out.length += b.length;
}

function tagAndLength(fieldNo: number, len: number): Uint8Array {
  const bytes: number[] = [];
  varint(bytes, (fieldNo << 3) | 2);
  varint(bytes, len);
  return Uint8Array.from(bytes);
}

function varint(out: number[], v: number): void {
  while (v > 0x7f) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

/** Merge small pieces into blocks of about `blockBytes` so writing makes few syscalls. */
export function coalesce(pieces: readonly Uint8Array[], blockBytes = 1 << 20): Uint8Array[] {
  const out: Uint8Array[] = [];
  let pending: Uint8Array[] = [];
  let pendingLen = 0;
  const flush = () => {
    if (pendingLen === 0) return;
    if (pending.length === 1) out.push(pending[0]);
    else out.push(Buffer.concat(pending, pendingLen));
    pending = [];
    pendingLen = 0;
  };
  for (const p of pieces) {
    if (p.length >= blockBytes) {
      flush();
      out.push(p);
      continue;
    }
    pending.push(p);
    pendingLen += p.length;
    if (pendingLen >= blockBytes) flush();
  }
  flush();
  return out;
}
