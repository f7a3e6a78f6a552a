/**
 * The kernel's resident size of a heap's buffer: smaps Rss of the one mapping of its size, read in
 * a child process that has no other buffer of that size (test/resident.ts, test/calloc-resident.ts).
 */
import { readFileSync } from 'node:fs';
import { KiB } from './fixtures.js';

export function residentBytes(buffer: SharedArrayBuffer): number {
  const bytes = buffer.byteLength;
  const lines = readFileSync('/proc/self/smaps', 'utf8').split('\n');
  let found = -1;
  for (let i = 0; i < lines.length; i++) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) rw-p /.exec(lines[i]!);
    if (m === null) continue;
    const size = Number(BigInt('0x' + m[2]) - BigInt('0x' + m[1]));
    if (size < bytes || size > bytes + 64 * KiB) continue;
    for (let j = i + 1; j < lines.length && !/^[0-9a-f]+-/.test(lines[j]!); j++) {
      const r = /^Rss:\s+(\d+) kB/.exec(lines[j]!);
      if (r !== null) {
        if (found >= 0) throw new Error(`two mappings of ${bytes} bytes`);
        found = Number(r[1]) * KiB;
      }
    }
  }
  if (found < 0) throw new Error(`no mapping of ${bytes} bytes (merged with a neighbour?)`);
  return found;
}
