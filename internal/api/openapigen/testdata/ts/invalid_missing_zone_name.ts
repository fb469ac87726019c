// tsc must refuse this file with: Property 'zone_name' is missing
import type { paths } from "./api";

type SubmitBody = paths["/v1/operations"]["post"]["requestBody"]["content"]["application/json"];

// zone_name is required.
export const purge: SubmitBody = {
    task_type: "cdn:purge",
    provider: "ucdn",
    params: { zone_type: "objects", files: ["/a.png"] },
};
