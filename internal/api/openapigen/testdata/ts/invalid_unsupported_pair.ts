// tsc must refuse this file with: Type '"leaseweb"' is not assignable
import type { paths } from "./api";

type SubmitBody = paths["/v1/operations"]["post"]["requestBody"]["content"]["application/json"];

// leaseweb does not run cdn:purge.
export const purge: SubmitBody = {
    task_type: "cdn:purge",
    provider: "leaseweb",
    params: { files: ["/a.png"] },
};
