// Adapter from Pulumi's runtime config (what `pulumi config` set for this stack) to the plain RawConfig
// the validator takes. Kept apart so the validator stays pure.
import * as pulumi from "@pulumi/pulumi";
import { PROJECT_NAME } from "./configSchema";
import { RawConfig } from "./deployConfig";

// isConfigSecret is exported by the SDK at runtime but marked @internal, so its type is not published.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runtimeConfig = require("@pulumi/pulumi/runtime/config") as { isConfigSecret(key: string): boolean };

export function readRawConfig(): RawConfig {
    const prefix = `${PROJECT_NAME}:`;
    const raw: RawConfig = {};
    for (const [fullKey, value] of Object.entries(pulumi.runtime.allConfig())) {
        if (!fullKey.startsWith(prefix)) continue;
        raw[fullKey.slice(prefix.length)] = { value, secret: runtimeConfig.isConfigSecret(fullKey) };
    }
    return raw;
}
