// Every setting comes from the environment, so one image serves as server, worker and migration job
// in every colour and every stack. With REDIS_URL set the store uses the Redis modules that a
// production deployment with more than one process needs (shared events, workflows, cache, locks).
import { defineConfig, loadEnv } from "@medusajs/framework/utils"

loadEnv(process.env.NODE_ENV || "development", process.cwd())

type WorkerMode = "shared" | "worker" | "server"

function workerMode(): WorkerMode {
  const mode = process.env.MEDUSA_WORKER_MODE || "shared"
  if (mode !== "shared" && mode !== "worker" && mode !== "server") {
    throw new Error(`MEDUSA_WORKER_MODE must be shared, worker or server, got "${mode}"`)
  }
  return mode
}

function redisModules(redisUrl: string) {
  const modules: { key?: string; resolve: string; options: Record<string, unknown> }[] = [
    {
      resolve: "@medusajs/medusa/event-bus-redis",
      options: { redisUrl },
    },
    {
      resolve: "@medusajs/medusa/workflow-engine-redis",
      options: { redis: { redisUrl } },
    },
    {
      // Deprecated since 2.11 in favour of the Caching Module, which is still behind a feature flag.
      resolve: "@medusajs/medusa/cache-redis",
      options: { redisUrl },
    },
    {
      resolve: "@medusajs/medusa/locking",
      options: {
        providers: [
          {
            resolve: "@medusajs/medusa/locking-redis",
            id: "locking-redis",
            is_default: true,
            options: { redisUrl },
          },
        ],
      },
    },
  ]
  if (process.env.MEDUSA_FF_CACHING === "true") {
    modules.push({
      resolve: "@medusajs/medusa/caching",
      options: {
        providers: [
          {
            resolve: "@medusajs/medusa/caching-redis",
            id: "caching-redis",
            is_default: true,
            options: { redisUrl },
          },
        ],
      },
    })
  }
  return modules
}

const redisUrl = process.env.REDIS_URL || undefined

module.exports = defineConfig({
  projectConfig: {
    databaseUrl: process.env.DATABASE_URL,
    redisUrl,
    workerMode: workerMode(),
    http: {
      storeCors: process.env.STORE_CORS || "http://localhost:8000",
      adminCors: process.env.ADMIN_CORS || "http://localhost:9000",
      authCors: process.env.AUTH_CORS || "http://localhost:8000,http://localhost:9000",
      // Left undefined in production when unset: Medusa then refuses to sign with a known default.
      jwtSecret: process.env.JWT_SECRET || (process.env.NODE_ENV === "production" ? undefined : "supersecret"),
      cookieSecret: process.env.COOKIE_SECRET || (process.env.NODE_ENV === "production" ? undefined : "supersecret"),
    },
  },
  admin: {
    // The worker never serves the admin; any process can also be told to skip it.
    disable: process.env.DISABLE_MEDUSA_ADMIN === "true" || workerMode() === "worker",
    backendUrl: process.env.MEDUSA_BACKEND_URL || "/",
  },
  modules: redisUrl ? redisModules(redisUrl) : [],
})
