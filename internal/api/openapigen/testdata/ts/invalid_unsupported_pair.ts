// tsc must refuse this file with: Type '"ionos"' is not assignable
import type { paths } from "./api";

type SubmitBody = paths["/v1/operations"]["post"]["requestBody"]["content"]["application/json"];

// ionos does not run cdn:purge (it has no purge call).
export const purge: SubmitBody = {
    task_type: "cdn:purge",
    provider: "ionos",
    params: { files: ["/a.png"] },
};
