// tsc must refuse this file with: Property 'snapshot_id' does not exist
import type { components } from "./api";

// A result is one of the kinds' result objects: reading a field of one
// of them needs narrowing first.
export function snapshotID(op: components["schemas"]["Operation"]): string | undefined {
    return op.result?.snapshot_id;
}
