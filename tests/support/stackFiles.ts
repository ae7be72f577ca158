// Loads a stack file the way the Pulumi CLI hands it to the program: project defaults from
// Pulumi.yaml, then the stack's values; `secure:` values are secrets; objects arrive as JSON text.
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { PROJECT_NAME } from "../../lib/configSchema";
import { RawConfig } from "../../lib/deployConfig";

export const repoRoot = path.resolve(__dirname, "..", "..");

export function stackNames(): string[] {
    return fs
        .readdirSync(repoRoot)
        .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
        .filter((s): s is string => s !== undefined)
        .sort();
}

function asText(value: unknown): string {
    return typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
}

export function projectConfigDeclarations(): Record<string, { type: string; default?: unknown; secret?: boolean; description?: string }> {
    const project = yaml.load(fs.readFileSync(path.join(repoRoot, "Pulumi.yaml"), "utf8")) as { config?: Record<string, never> };
    return project.config ?? {};
}

export function stackFileText(stack: string): string {
    return fs.readFileSync(path.join(repoRoot, `Pulumi.${stack}.yaml`), "utf8");
}

/** The `# required secrets: a, b` header line of a stack file: what a user must set before `up`. */
export function requiredSecretsOf(stack: string): string[] {
    const line = /^# required secrets: (.*)$/m.exec(stackFileText(stack));
    if (!line) throw new Error(`Pulumi.${stack}.yaml has no "# required secrets:" header line`);
    return line[1] === "(none)" ? [] : line[1].split(",").map((s) => s.trim());
}

/**
 * The `# required settings: a, b` header line of a stack file: plain settings with no safe default
 * that a user must set for their own host (sshHostKey). Empty when the file has no such line.
 */
export function requiredSettingsOf(stack: string): string[] {
    const line = /^# required settings: (.*)$/m.exec(stackFileText(stack));
    return line ? line[1].split(",").map((s) => s.trim()) : [];
}

export function loadStackConfig(stack: string): RawConfig {
    const raw: RawConfig = {};
    for (const [key, declaration] of Object.entries(projectConfigDeclarations())) {
        if (declaration.default !== undefined) raw[key] = { value: asText(declaration.default), secret: false };
    }
    const file = yaml.load(stackFileText(stack)) as { config?: Record<string, unknown> } | undefined;
    for (const [fullKey, value] of Object.entries(file?.config ?? {})) {
        const [namespace, key] = fullKey.split(":");
        if (namespace !== PROJECT_NAME) continue;
        const secure = typeof value === "object" && value !== null && "secure" in value;
        raw[key] = { value: secure ? "(encrypted)" : asText(value), secret: secure };
    }
    return raw;
}

/** What the program sees as PULUMI_CONFIG (fully namespaced keys), for pulumi.runtime.setAllConfig. */
export function namespaced(raw: RawConfig): { config: Record<string, string>; secretKeys: string[] } {
    const config: Record<string, string> = {};
    const secretKeys: string[] = [];
    for (const [key, setting] of Object.entries(raw)) {
        config[`${PROJECT_NAME}:${key}`] = setting.value;
        if (setting.secret) secretKeys.push(`${PROJECT_NAME}:${key}`);
    }
    return { config, secretKeys };
}
