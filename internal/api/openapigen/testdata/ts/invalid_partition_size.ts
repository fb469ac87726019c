// tsc must refuse this file with: Type 'boolean' is not assignable to type 'string | number'
import type { paths } from "./api";

type SubmitBody = paths["/v1/operations"]["post"]["requestBody"]["content"]["application/json"];

// A partition's size is MB or "*", not a boolean.
export const install: SubmitBody = {
    task_type: "server:install",
    provider: "leaseweb",
    params: {
        server_id: "12345",
        operating_system_id: "UBUNTU_22_04_64BIT",
        partitions: [{ filesystem: "ext4", mountpoint: "/", size: true }],
    },
};
