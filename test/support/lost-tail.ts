// What a broker's OS crash or power loss does to a JetStream file store: the messages written
// after its last disk sync are gone when it restarts, though each was acknowledged. nats-server
// 2.9.10's store is a chain of message blocks, each a run of records
//   u32 length (high bit: has headers) | u64 sequence | i64 time | u16 subject length | subject |
//   [u32 header length | headers] | payload | u64 hash
// so losing the unsynced tail is cutting the stream's last block at a record boundary and
// removing its index (the server rebuilds it from the block). Only for a stopped server.
import { existsSync, readFileSync, readdirSync, rmSync, truncateSync } from "node:fs";
import { join } from "node:path";

const HAS_HEADERS = 0x8000_0000;
const RECORD_HEADER_BYTES = 22;

/** Cuts the last `count` records of the stream's last block; answers their sequences. */
export function loseStoredTail(storeDir: string, stream: string, count: number): number[] {
  const dir = join(storeDir, "jetstream", "$G", "streams", stream, "msgs");
  const blocks = readdirSync(dir)
    .filter((f) => f.endsWith(".blk"))
    .map((f) => Number(f.slice(0, -4)))
    .sort((a, b) => a - b);
  const last = blocks[blocks.length - 1];
  if (last === undefined) throw new Error(`stream ${stream} has no message block in ${dir}`);
  const file = join(dir, `${last}.blk`);
  const data = readFileSync(file);
  const records: Array<{ offset: number; seq: number }> = [];
  for (let offset = 0; offset + RECORD_HEADER_BYTES <= data.length;) {
    const length = data.readUInt32LE(offset) & ~HAS_HEADERS;
    if (length < RECORD_HEADER_BYTES || offset + length > data.length)
      throw new Error(`unreadable record at ${offset} of ${file}`);
    records.push({ offset, seq: Number(data.readBigUInt64LE(offset + 4)) });
    offset += length;
  }
  if (records.length < count)
    throw new Error(`block ${file} holds ${records.length} records, fewer than ${count}`);
  const lost = records.slice(records.length - count);
  truncateSync(file, (lost[0] as { offset: number }).offset);
  for (const index of [`${last}.idx`, `${last}.fss`])
    if (existsSync(join(dir, index))) rmSync(join(dir, index));
  return lost.map((r) => r.seq);
}
