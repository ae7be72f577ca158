import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigError, parseDeployConfig } from "../../lib/deployConfig";
import { declaredInPulumiYaml, pulumiYamlConfig, pulumiYamlHeaderComment, readmeConfigReference } from "../../lib/configDocs";
import { SETTINGS } from "../../lib/configSchema";
import { thrownBy } from "../support/thrown";
import { loadStackConfig, projectConfigDeclarations, repoRoot, requiredSecretsOf, requiredSettingsOf, stackNames } from "../support/stackFiles";
import { strongSecret, requiredSettingValue } from "./fixtureSecrets";

const ctx = (stack: string) => ({ stack, homeDir: "/home/shop" });

describe("the stack files users copy", () => {
    it("the repo ships dev, staging and prod", () => {
        assert.deepEqual(stackNames(), ["dev", "prod", "staging"]);
    });

    for (const stack of stackNames()) {
        it(`Pulumi.${stack}.yaml is valid once its listed secrets are set`, () => {
            const raw = loadStackConfig(stack);
            for (const key of requiredSecretsOf(stack)) raw[key] = { value: strongSecret(key), secret: true };
            for (const key of requiredSettingsOf(stack)) raw[key] = { value: requiredSettingValue(key), secret: false };
            assert.doesNotThrow(() => parseDeployConfig(raw, ctx(stack)));
        });

        it(`Pulumi.${stack}.yaml lists exactly the settings and secrets it needs`, () => {
            const required = [...requiredSecretsOf(stack), ...requiredSettingsOf(stack)];
            if (required.length === 0) {
                assert.doesNotThrow(() => parseDeployConfig(loadStackConfig(stack), ctx(stack)));
                return;
            }
            const error = thrownBy(() => parseDeployConfig(loadStackConfig(stack), ctx(stack)));
            assert.ok(error instanceof ConfigError, "the stack file must not be valid without its secrets");
            const missing = error.problems.map((p) => /^medusa-deploy:(\w+) is required/.exec(p)?.[1]).filter(Boolean).sort();
            assert.deepEqual(missing, [...required].sort(), error.message);
            assert.equal(error.problems.length, required.length, error.message);
        });
    }

    it("staging builds, prod promotes from staging and never builds, dev runs locally", () => {
        const with_ = (stack: string) => {
            const raw = loadStackConfig(stack);
            for (const key of requiredSecretsOf(stack)) raw[key] = { value: strongSecret(key), secret: true };
            for (const key of requiredSettingsOf(stack)) raw[key] = { value: requiredSettingValue(key), secret: false };
            return parseDeployConfig(raw, ctx(stack));
        };
        assert.equal(with_("staging").image.kind, "build");
        assert.deepEqual(with_("prod").image, { kind: "promote", fromStack: "staging" });
        assert.equal(with_("dev").host.kind, "local");
        assert.equal(with_("staging").host.kind, "ssh");
    });
});

describe("configuration reference cannot drift", () => {
    it("Pulumi.yaml declares every setting with the type, default and description of lib/configSchema.ts", () => {
        assert.deepEqual(projectConfigDeclarations(), pulumiYamlConfig(), "run `npm run docs:config`");
        const text = fs.readFileSync(path.join(repoRoot, "Pulumi.yaml"), "utf8");
        assert.ok(text.includes(pulumiYamlHeaderComment()), "Pulumi.yaml's comment naming the optional settings is out of date");
        for (const [key, declaration] of Object.entries(projectConfigDeclarations())) {
            assert.notEqual(declaration.default, undefined, `${key} has no default, so Pulumi would make it required`);
        }
        assert.ok(SETTINGS.filter(declaredInPulumiYaml).length >= 10);
    });

    it("the README's reference is the one generated from the schema", () => {
        const readme = fs.readFileSync(path.join(repoRoot, "README.md"), "utf8");
        assert.ok(readme.includes(readmeConfigReference()), "README.md's configuration reference is out of date: run `npm run docs:config`");
    });

    it("every stack file uses only known settings", () => {
        const known = new Set(SETTINGS.map((s) => s.key));
        for (const stack of stackNames()) {
            for (const key of Object.keys(loadStackConfig(stack))) assert.ok(known.has(key), `Pulumi.${stack}.yaml sets unknown ${key}`);
        }
    });
});
