// tsc must refuse this file with: Type '"video"' is not assignable
import type { paths } from "./api";

type SubmitBody = paths["/v1/operations"]["post"]["requestBody"]["content"]["application/json"];

// zone_type is objects or livestream.
export const purge: SubmitBody = {
    task_type: "cdn:purge",
    provider: "ucdn",
    params: { zone_name: "demo", zone_type: "video", files: ["/a.png"] },
};
