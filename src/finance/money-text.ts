// How finance reads amounts: minor units (the ledger's integers) and major units per the
// currency's scale (EUR scale 2: 12345 → "123.45"). Pure; bigint in, decimal string out, so no
// amount ever passes through a JS number.
import { NS_PER_MS } from "../lib/nanoseconds.ts";

/** `minor` in major units with exactly `scale` decimals ("-0.05" for -5 at scale 2). */
export function majorUnits(minor: bigint, scale: number): string {
  if (scale === 0) return minor.toString();
  const sign = minor < 0n ? "-" : "";
  const digits = (minor < 0n ? -minor : minor).toString().padStart(scale + 1, "0");
  return `${sign}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

/** A ledger timestamp (ns since the epoch) as ISO time with its nanoseconds: 2026-12-07T17:01:02.123456789Z. */
export function isoOfNs(ns: bigint): string {
  const ms = ns / NS_PER_MS;
  const iso = new Date(Number(ms)).toISOString(); // …sss Z
  return `${iso.slice(0, -1)}${(ns % NS_PER_MS).toString().padStart(6, "0")}Z`;
}

/** An ISO time given on the command line, in ns since the epoch; null when it is no time. */
export function nsOfIso(text: string): bigint | null {
  // Date.parse takes many forms; finance passes dates or date-times, so ask for one of those.
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text))
    return null;
  const fraction = /\.(\d{1,9})/.exec(text)?.[1] ?? "";
  const ms = Date.parse(text.replace(/\.\d{1,9}/, ""));
  if (Number.isNaN(ms)) return null;
  return BigInt(ms) * NS_PER_MS + BigInt(fraction.padEnd(9, "0"));
}

/** One CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function csvLine(values: ReadonlyArray<string>): string {
  return `${values.map(csvField).join(",")}\n`;
}
