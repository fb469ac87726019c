// Requests and responses a client of the API writes: all of this must
// type-check against the types openapi-typescript generates from
// openapi.json.
import type { components, operations, paths } from "./api";

type SubmitBody = paths["/v1/operations"]["post"]["requestBody"]["content"]["application/json"];

export const purge: SubmitBody = {
    task_type: "cdn:purge",
    provider: "ucdn",
    params: { zone_name: "demo", zone_type: "objects", files: ["/a.png", "https://cdn.example.com/b.css"] },
};

export const edgioPurge: SubmitBody = {
    task_type: "cdn:purge",
    provider: "edgio",
    params: { media_path: "/a.png\n/b.png", media_type: "http_small" },
    account: "eu-1",
    callback_url: "https://hooks.example.com/opsworker",
    idempotency_key: "deploy-42",
};

export const install: SubmitBody = {
    task_type: "server:install",
    provider: "leaseweb",
    params: {
        server_id: "12345",
        operating_system_id: "UBUNTU_22_04_64BIT",
        partitions: [
            { filesystem: "swap", size: 4096 },
            { filesystem: "ext4", mountpoint: "/", size: "*" },
        ],
        raid: { numberOfDisks: 2, type: "SW" },
        ssh_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample ops@example.com"],
    },
};

export const scale: SubmitBody = {
    task_type: "asg:scale",
    provider: "leaseweb",
    params: { asg_id: "90b9f2cc-c655-40ea-b01a-58c00e175c96", minimum_amount: 2, maximum_amount: 6 },
};

type Operation = components["schemas"]["Operation"];

// Progress and results are typed objects, not bare maps.
export function percentage(op: Operation): number | undefined {
    return op.progress?.percentage;
}

export function snapshotID(op: Operation): string | undefined {
    const r = op.result;
    return r !== undefined && "snapshot_id" in r ? r.snapshot_id : undefined;
}

export function groupAfter(op: Operation): number | null | undefined {
    const r = op.result;
    return r !== undefined && "group_type" in r ? r.after?.desired_amount : undefined;
}

export function finished(op: Operation): boolean {
    const final: components["schemas"]["State"][] = ["succeeded", "failed", "canceled", "timed_out"];
    return final.includes(op.state);
}

type Page = paths["/v1/operations"]["get"]["responses"][200]["content"]["application/json"];

export function ids(page: Page): string[] {
    return page.operations.map((op) => op.id);
}

type Problem = paths["/v1/operations"]["post"]["responses"][415]["content"]["application/problem+json"];

export function field(p: Problem): string | undefined {
    return p.field;
}

type Succeeded = operations["webhook_operation.succeeded"]["requestBody"]["content"]["application/json"];

export function succeededAt(ev: Succeeded): [string, "operation.succeeded", string] {
    return [ev.id, ev.type, ev.data.id];
}
