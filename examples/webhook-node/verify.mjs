// Verifies one opsworker webhook with the Standard Webhooks library:
//   OPSWORKER_WEBHOOK_SECRET=whsec_... WEBHOOK_ID=... WEBHOOK_TIMESTAMP=... \
//   WEBHOOK_SIGNATURE='v1,...' node verify.mjs < body.json
// In a real receiver, pass the request's raw body and headers to
// wh.verify, answer 2xx at once, and drop a webhook-id seen before.
import { Webhook } from "standardwebhooks";
import { readFileSync } from "node:fs";

const body = readFileSync(0, "utf8"); // the raw body, byte for byte
const headers = {
  "webhook-id": process.env.WEBHOOK_ID,
  "webhook-timestamp": process.env.WEBHOOK_TIMESTAMP,
  "webhook-signature": process.env.WEBHOOK_SIGNATURE,
};
// The library takes the secret with or without its whsec_ prefix.
const wh = new Webhook(process.env.OPSWORKER_WEBHOOK_SECRET);
try {
  const event = wh.verify(body, headers); // checks the timestamp too (5 minutes)
  console.log(`valid: ${headers["webhook-id"]} ${event.type}`);
} catch (err) {
  console.error(`invalid: ${err.message}`);
  process.exit(1);
}
