// A reference model of balances, computed only from events in ledger order. Tests compare it with
// the ledger (balance queries) and with every event's own `balances`.
export type ModelBalance = { posted: bigint; held: bigint };

type Event = Record<string, unknown> & { event: string };

export class BalanceModel {
  readonly users = new Map<string, ModelBalance>();
  private readonly holds = new Map<string, { userId: string; currency: string; amount: bigint }>();

  private of(userId: string, currency: string): ModelBalance {
    const key = `${currency}/${userId}`;
    let b = this.users.get(key);
    if (!b) this.users.set(key, (b = { posted: 0n, held: 0n }));
    return b;
  }

  /** Applies one event; returns mismatches between its `balances` and the model after it. */
  apply(e: Event): string[] {
    const s = (k: string) => String(e[k]);
    const amount = e["amount"] === undefined ? 0n : BigInt(s("amount"));
    const currency = s("currency");
    switch (e.event) {
      case "credited":
        this.of(s("userId"), currency).posted += amount;
        break;
      case "debited":
        this.of(s("userId"), currency).posted -= amount;
        break;
      case "held":
        this.of(s("userId"), currency).held += amount;
        this.holds.set(s("operationId"), { userId: s("userId"), currency, amount });
        break;
      case "captured": {
        const b = this.of(s("userId"), currency);
        b.held -= amount;
        b.posted -= amount;
        break;
      }
      case "released":
      case "expired":
        this.of(s("userId"), currency).held -= amount;
        break;
      case "transferred": {
        const fee = e["fee"] === undefined ? 0n : BigInt(s("fee"));
        this.of(s("fromUserId"), currency).posted -= amount + fee;
        this.of(s("toUserId"), currency).posted += amount;
        break;
      }
      default:
        return [];
    }
    const problems: string[] = [];
    for (const line of (e["balances"] as Array<Record<string, string>> | undefined) ?? []) {
      const b = this.of(String(line["userId"]), String(line["currency"]));
      const want = {
        posted: b.posted.toString(),
        held: b.held.toString(),
        available: (b.posted - b.held).toString(),
      };
      const got = { posted: line["posted"], held: line["held"], available: line["available"] };
      if (JSON.stringify(want) !== JSON.stringify(got))
        problems.push(
          `${e.event} ${s("operationId")}: ${line["userId"]} ${JSON.stringify(got)} != model ${JSON.stringify(want)}`,
        );
    }
    return problems;
  }

  /** Applies events sorted by ledger timestamp (expired events carry no balances to check). */
  applyAll(events: ReadonlyArray<Event>): string[] {
    const ordered = events
      .filter((e) => e["ledgerTimestamp"] !== undefined)
      .sort((a, b) => {
        const x = BigInt(String(a["ledgerTimestamp"]));
        const y = BigInt(String(b["ledgerTimestamp"]));
        return x < y ? -1 : x > y ? 1 : 0;
      });
    return ordered.flatMap((e) => this.apply(e));
  }
}
