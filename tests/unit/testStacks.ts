// A shipped stack file's settings with its required secrets filled in with strong test values:
// the starting point of the tests that run the program under mocks.
import { RawConfig } from "../../lib/deployConfig";
import { loadStackConfig, requiredSecretsOf } from "../support/stackFiles";
import { strongSecret } from "./fixtureSecrets";

export function stackConfig(stack: string, overrides: RawConfig = {}): RawConfig {
    const raw = loadStackConfig(stack);
    for (const key of requiredSecretsOf(stack)) raw[key] = { value: strongSecret(key), secret: true };
    return { ...raw, ...overrides };
}

export const plainSetting = (value: string) => ({ value, secret: false });
