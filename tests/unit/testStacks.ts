// What the tests that run the program under mocks start from: a shipped stack file's settings with
// its required secrets filled in with strong test values, digest-pinned release images, and the
// names of a declared resource's dependencies.
import * as pulumi from "@pulumi/pulumi";
import { RawConfig } from "../../lib/deployConfig";
import { DeclaredResource, valueOf } from "../support/pulumiProgram";
import { loadStackConfig, requiredSecretsOf, requiredSettingsOf } from "../support/stackFiles";
import { requiredSettingValue, strongSecret } from "./fixtureSecrets";

export function stackConfig(stack: string, overrides: RawConfig = {}): RawConfig {
    const raw = loadStackConfig(stack);
    for (const key of requiredSecretsOf(stack)) raw[key] = { value: strongSecret(key), secret: true };
    for (const key of requiredSettingsOf(stack)) raw[key] = { value: requiredSettingValue(key), secret: false };
    return { ...raw, ...overrides };
}

export const plainSetting = (value: string) => ({ value, secret: false });
export const release = (name: string): RawConfig => ({ release: plainSetting(name) });

export const digest = (c: string) => `sha256:${c.repeat(64)}`;
export const imageA = `localhost:5000/medusa-store:A@${digest("a")}`;
export const imageB = `localhost:5000/medusa-store:B@${digest("b")}`;
export const DEV = "organization/medusa-deploy/dev";
export const STAGING = "organization/medusa-deploy/staging";

/** Names of the resources `r` depends on directly, sorted. */
export async function dependsOnNames(r: DeclaredResource): Promise<string[]> {
    const deps = (await valueOf(r.opts.dependsOn as pulumi.Input<pulumi.Input<pulumi.Resource>[]>)) ?? [];
    const list = Array.isArray(deps) ? deps : [deps];
    const resources = await Promise.all(list.map(async (d) => (await valueOf(d as pulumi.Input<pulumi.Resource>)) as pulumi.Resource));
    return resources.map((res) => (res as unknown as { __name?: string }).__name ?? "").sort();
}
