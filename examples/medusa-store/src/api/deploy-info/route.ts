import type { MedusaRequest, MedusaResponse } from "@medusajs/framework/http"

// Lets a blue/green switch (and a person with curl) tell which release answers. It lives outside
// /store and /admin so it needs neither a publishable API key nor a login.
export const GET = (_req: MedusaRequest, res: MedusaResponse) => {
  res.setHeader("Cache-Control", "no-store")
  res.json({
    release: process.env.MEDUSA_RELEASE ?? null,
    colour: process.env.MEDUSA_COLOUR ?? null,
    workerMode: process.env.MEDUSA_WORKER_MODE || "shared",
  })
}
