// Row values as the binlog decoder gives them, turned into query parameters: what the decoder
// already hands over as text, numbers, bytes or dates goes as it is; JSON documents it parsed go
// back as their text.
import type { Param } from '../db/connect.js';

export function toParam(v: unknown): Param {
  if (v === undefined) return null;
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' || Buffer.isBuffer(v)) return v as Param;
  if (v instanceof Date) return v;
  return JSON.stringify(v);
}
