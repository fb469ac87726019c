// tsc must refuse this file with: is not assignable to type '"objects" | "livestream"'
import type { paths } from "./api";

type SubmitBody = paths["/v1/operations"]["post"]["requestBody"]["content"]["application/json"];

// The params follow the provider: edgio takes media_path, not UCDN's zone.
export const purge: SubmitBody = {
    task_type: "cdn:purge",
    provider: "edgio",
    params: { zone_name: "demo", zone_type: "objects", files: ["/a.png"] },
};
