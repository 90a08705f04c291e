// The bench's user draws: the scale run's Zipf law must be the law it claims (the run's verdict is
// a throughput ratio over it), and the uniform draw must stay the one earlier results were made with.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Workload, zipfCdf, zipfRank } from "../../bench/e2e/workload.ts";

type Body = { userId?: string; fromUserId?: string; toUserId?: string };

function draws(users: number, draw: "uniform" | "zipf", count: number): Body[] {
  const w = new Workload({ count, users, seed: 7, tag: "0badcafe", holdGapMin: 50, draw });
  const out: Body[] = [];
  for (let c = w.next(); c !== null; c = w.next())
    out.push(JSON.parse(new TextDecoder().decode(c.data)) as Body);
  return out;
}

function countsByUser(bodies: Body[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const b of bodies)
    for (const u of [b.userId, b.fromUserId, b.toUserId])
      if (u !== undefined) counts.set(u, (counts.get(u) ?? 0) + 1);
  return counts;
}

describe("the bench's Zipf user draw", () => {
  it("gives rank k a probability proportional to 1 / (k + 1)", () => {
    const cdf = zipfCdf(1000);
    const harmonic = Array.from({ length: 1000 }, (_, k) => 1 / (k + 1)).reduce((a, b) => a + b);
    expect(cdf[0]).toBeCloseTo(1 / harmonic, 12);
    expect((cdf[9] as number) - (cdf[8] as number)).toBeCloseTo(1 / 10 / harmonic, 12);
    expect(cdf[999]).toBeCloseTo(1, 12);
    expect(zipfRank(cdf, 0)).toBe(0);
    expect(zipfRank(cdf, cdf[0] as number)).toBe(0);
    expect(zipfRank(cdf, (cdf[0] as number) + 1e-12)).toBe(1);
    expect(zipfRank(cdf, 0.999_999_999)).toBe(999);
  });

  it("makes u0 the busiest user with about 1/H(n) of the draws, u1 about half of that", () => {
    const users = 100_000;
    const counts = countsByUser(draws(users, "zipf", 200_000));
    const total = [...counts.values()].reduce((a, b) => a + b);
    const harmonic = Math.log(users) + 0.5772156649;
    const u0 = (counts.get("u0") ?? 0) / total;
    const u1 = (counts.get("u1") ?? 0) / total;
    expect(u0).toBeGreaterThan(0.9 / harmonic);
    expect(u0).toBeLessThan(1.1 / harmonic);
    expect(u1 / u0).toBeGreaterThan(0.4);
    expect(u1 / u0).toBeLessThan(0.6);
    // The long tail is there too: tens of thousands of distinct users are touched.
    expect(counts.size).toBeGreaterThan(20_000);
  });

  it("never makes a transfer from a user to the same user", () => {
    const transfers = draws(3, "zipf", 20_000).filter((b) => b.fromUserId !== undefined);
    expect(transfers.length).toBeGreaterThan(1000);
    for (const t of transfers) expect(t.fromUserId).not.toBe(t.toUserId);
  });

  it("leaves the uniform draw as it was before the Zipf draw (the same commands for a seed)", () => {
    const w = new Workload({ count: 5000, users: 1000, seed: 7, tag: "0badcafe", holdGapMin: 50 });
    const h = createHash("sha256");
    for (let c = w.next(); c !== null; c = w.next()) h.update(c.subject).update(c.data);
    // The digest of these 5,000 commands as generated at 93768c1, before the draw was added.
    expect(h.digest("hex")).toBe(
      "be948ccbf8fbd5afb5899e4f19b5322d85b6914030983a1be70a193dc628de7d",
    );
  });

  it("spreads the uniform draw evenly over the users", () => {
    const counts = countsByUser(draws(10, "uniform", 50_000));
    expect(counts.size).toBe(10);
    const shares = [...counts.values()];
    const mean = shares.reduce((a, b) => a + b) / shares.length;
    for (const s of shares) expect(Math.abs(s - mean) / mean).toBeLessThan(0.05);
  });
});
