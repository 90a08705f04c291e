// Account ids shared by the multi-process test and its child writers.
export const settlementId = 1_000n;
export const userId = (i: number) => 2_000n + BigInt(i);
