// The Redis container's configuration: persistence as before (append-only file) and a password.
// Redis reads `requirepass` from its config file, so the password never appears on a command line
// (visible in `ps` on the host) or in the container's environment (visible in `docker inspect`).
import { createHmac } from "node:crypto";

/** Inside the container; /etc exists in every Redis image. */
export const REDIS_CONFIG_PATH = "/etc/medusa-redis.conf";

/** Health check that authenticates with the password from the config file (REDISCLI_AUTH, not -a). */
export const REDIS_HEALTH_CHECK = `REDISCLI_AUTH="$(sed -n 's/^requirepass //p' ${REDIS_CONFIG_PATH})" redis-cli ping | grep -q PONG`;

export function renderRedisConfig(password: string): string {
    if (!/^[0-9a-f]{64}$/.test(password)) throw new Error("internal: the Redis password must be 64 hex characters (it is written unquoted)");
    return ["# Written by medusa-deploy.", "appendonly yes", `requirepass ${password}`, ""].join("\n");
}

/**
 * The stack's Redis password, derived from its cookieSecret: stable across deploys without a setting
 * of its own, different for every stack, and revealing nothing about the cookie secret (HMAC).
 */
export function deriveRedisPassword(cookieSecret: string): string {
    return createHmac("sha256", cookieSecret).update("medusa-deploy redis password v1").digest("hex");
}
