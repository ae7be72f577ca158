// Reads every stack setting once, applies defaults and validates it. All problems are collected into
// one ConfigError, so a user fixes their stack file in one go, and nothing is declared (let alone
// changed on a host) until the whole configuration is valid.
import * as path from "node:path";
import { PROJECT_NAME, SETTINGS, SettingSpec, findSetting } from "./configSchema";
import { SecretValue } from "./secretValue";

/** A config value as Pulumi hands it over: text (objects as JSON) and whether it is a secret. */
export interface RawSetting {
    value: string;
    secret: boolean;
}
/** Keys without the project namespace. */
export type RawConfig = Record<string, RawSetting>;

export interface ConfigContext {
    stack: string;
    /** Home directory of the user running pulumi (for the local host's state dir). */
    homeDir: string;
}

export type HostTarget =
    | { kind: "local" }
    | { kind: "ssh"; user: string; hostname: string; port: number; privateKey: SecretValue };

export type ImageSource =
    | {
          kind: "build";
          appPath: string;
          registry: string;
          cacheRef: string;
          platform: string;
          nodeImage: string;
          systemPackages: string;
          npmrc?: SecretValue;
      }
    | { kind: "promote"; fromStack: string };

export type PostgresService = { kind: "container"; image: string; password: SecretValue } | { kind: "external"; url: SecretValue };
export type RedisService = { kind: "container"; image: string } | { kind: "external"; url: SecretValue };

export interface DeployConfig {
    stack: string;
    host: HostTarget;
    sudo: boolean;
    hostStateDir: string;
    daemon: { manage: boolean; buildkitKeepStorage: string; logMaxSize: string; logMaxFile: number; extra: Record<string, unknown> };
    /** `auto` or an explicit release name. */
    release: string;
    image: ImageSource;
    registryAuth?: { username: string; password: SecretValue };
    services: { postgres: PostgresService; redis: RedisService };
    app: {
        jwtSecret: SecretValue;
        cookieSecret: SecretValue;
        storeCors: string;
        adminCors: string;
        authCors: string;
        env: Record<string, string>;
        secretEnv?: SecretValue;
        healthTimeoutSeconds: number;
    };
    edge: { address: string; port: number; image: string; publicUrl: string };
    localRegistry?: { port: number };
    devDefaults: boolean;
}

export class ConfigError extends Error {
    constructor(
        readonly stack: string,
        readonly problems: string[],
    ) {
        super(
            `Stack "${stack}" has ${problems.length} invalid setting${problems.length === 1 ? "" : "s"} ` +
                `(nothing was changed):\n` +
                problems.map((p) => `  - ${p}`).join("\n"),
        );
        this.name = "ConfigError";
    }
}

/** Dev-only values for unset secrets when `devDefaults` is on; they say what they are. */
export const DEV_ONLY_SECRETS: Record<string, string> = {
    jwtSecret: "dev-only-jwt-secret-never-use-in-production",
    cookieSecret: "dev-only-cookie-secret-never-use-in-production",
    postgresPassword: "dev-only-postgres-password",
};

const RELEASE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const SSH_HOST = /^ssh:\/\/([a-z_][a-z0-9_.-]*)@([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::(\d+))?$/;
// registry host[:port] then at least one lowercase path component; no tag, no digest.
const REPOSITORY = /^(?:[a-z0-9]([a-z0-9.-]*[a-z0-9])?(?::\d{1,5})?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;
const TAGGED = /^(.+):([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$/;
const IMAGE_REF = /^[a-z0-9]([a-z0-9.:/_-]*[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$/;
const STACK_REF = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;
const SIZE = /^\d+(\.\d+)?(B|KB|MB|GB|TB)$/;
const LOG_SIZE = /^\d+[kmg]$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const PLATFORMS = ["linux/amd64", "linux/arm64"] as const;
/** Env names the deployment sets itself; appEnv must not override them. */
const RESERVED_ENV = ["DATABASE_URL", "REDIS_URL", "JWT_SECRET", "COOKIE_SECRET", "STORE_CORS", "ADMIN_CORS", "AUTH_CORS", "MEDUSA_WORKER_MODE", "DISABLE_MEDUSA_ADMIN", "PORT", "NODE_ENV", "MEDUSA_RELEASE", "MEDUSA_COLOUR"];

/** Non-production stacks may leave `host` unset (it then means the local Docker). */
export function isDevStack(stack: string): boolean {
    return /^dev([-_.].*)?$/.test(stack) || stack === "local";
}

class Reader {
    readonly problems: string[] = [];
    constructor(private readonly raw: RawConfig) {}

    has(key: string): boolean {
        return this.raw[key] !== undefined && this.raw[key].value !== "";
    }

    problem(key: string, message: string): void {
        this.problems.push(`${PROJECT_NAME}:${key} ${message}`);
    }

    private spec(key: string): SettingSpec {
        const spec = findSetting(key);
        if (!spec) throw new Error(`internal: setting ${key} is not in the schema`);
        return spec;
    }

    /** Plain value. A secret-only setting set in plain text is reported, never used. */
    text(key: string): string | undefined {
        const spec = this.spec(key);
        const raw = this.raw[key];
        if (raw === undefined || raw.value === "") {
            return typeof spec.default === "string" ? spec.default : undefined;
        }
        if (spec.secret && !raw.secret) {
            this.problem(key, `is a secret but is set in plain text: run \`pulumi config set --secret ${PROJECT_NAME}:${key} <value>\``);
            return undefined;
        }
        return raw.value;
    }

    secret(key: string): SecretValue | undefined {
        const value = this.text(key);
        return value === undefined ? undefined : new SecretValue(value);
    }

    boolean(key: string, fallback: boolean): boolean {
        const raw = this.raw[key]?.value;
        if (raw === undefined || raw === "") {
            const d = this.spec(key).default;
            return typeof d === "boolean" ? d : fallback;
        }
        if (raw === "true") return true;
        if (raw === "false") return false;
        this.problem(key, `must be true or false, got "${raw}"`);
        return fallback;
    }

    integer(key: string, min: number, max: number, fallback?: number): number | undefined {
        const raw = this.raw[key]?.value;
        const d = this.spec(key).default;
        if (raw === undefined || raw === "") return typeof d === "number" ? d : fallback;
        if (!/^-?\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
            this.problem(key, `must be a whole number from ${min} to ${max}, got "${raw}"`);
            return typeof d === "number" ? d : fallback;
        }
        return Number(raw);
    }

    object(key: string): Record<string, unknown> | undefined {
        const raw = this.text(key);
        if (raw === undefined) return undefined;
        try {
            const parsed: unknown = JSON.parse(raw);
            if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
        } catch {
            // reported below
        }
        this.problem(key, `must be an object (a YAML mapping in the stack file), got ${this.spec(key).secret ? "[secret]" : JSON.stringify(raw)}`);
        return undefined;
    }

    unknownKeys(): string[] {
        return Object.keys(this.raw).filter((k) => !findSetting(k));
    }
}

function parseHost(r: Reader, ctx: ConfigContext): HostTarget {
    const host = r.text("host") ?? "local";
    if (!r.has("host") && !isDevStack(ctx.stack)) {
        r.problem("host", `must be set for stack "${ctx.stack}" (only dev stacks default to the local Docker): \`local\` or \`ssh://user@host[:port]\``);
    }
    if (host === "local") return { kind: "local" };
    const m = SSH_HOST.exec(host);
    if (!m) {
        r.problem("host", `must be \`local\` or \`ssh://user@host[:port]\`, got "${host}"`);
        return { kind: "local" };
    }
    const port = m[3] === undefined ? 22 : Number(m[3]);
    if (port < 1 || port > 65535) r.problem("host", `has port ${port}; valid ports are 1-65535`);
    const privateKey = r.secret("sshPrivateKey");
    if (!privateKey && !r.problems.some((p) => p.includes(":sshPrivateKey "))) {
        r.problem("sshPrivateKey", `is required for an ssh host: \`pulumi config set --secret ${PROJECT_NAME}:sshPrivateKey < ~/.ssh/id_ed25519\``);
    }
    return { kind: "ssh", user: m[1], hostname: m[2], port, privateKey: privateKey ?? new SecretValue("") };
}

function requiredSecret(r: Reader, key: string, devDefaults: boolean, why: string): SecretValue {
    const value = r.secret(key);
    if (value) return value;
    if (devDefaults && DEV_ONLY_SECRETS[key]) return new SecretValue(DEV_ONLY_SECRETS[key]);
    if (!r.problems.some((p) => p.startsWith(`${PROJECT_NAME}:${key} `))) {
        r.problem(key, `is required${why}: \`pulumi config set --secret ${PROJECT_NAME}:${key} <value>\``);
    }
    return new SecretValue("");
}

function parseImageSource(r: Reader): ImageSource {
    const promoteFrom = r.text("promoteFrom");
    if (promoteFrom !== undefined) {
        if (!STACK_REF.test(promoteFrom)) {
            r.problem("promoteFrom", `must name a stack as \`org/project/stack\` (for a local backend: \`organization/${PROJECT_NAME}/staging\`), got "${promoteFrom}"`);
        }
        for (const buildOnly of ["registry", "cacheRef", "npmrc"]) {
            if (r.has(buildOnly)) r.problem(buildOnly, `is a build setting, but this stack promotes from ${promoteFrom} and never builds: remove it`);
        }
        return { kind: "promote", fromStack: promoteFrom };
    }

    const appPath = r.text("appPath") ?? "examples/medusa-store";

    const registry = r.text("registry");
    if (registry === undefined) {
        r.problem("registry", "is required for a stack that builds: an image repository without tag, e.g. `registry.example.com/shop/medusa` (or set promoteFrom)");
    } else if (!REPOSITORY.test(registry)) {
        r.problem("registry", `must be an image repository without tag or digest, lowercase, e.g. \`registry.example.com/shop/medusa\`, got "${registry}"`);
    }
    const cacheRef = r.text("cacheRef") ?? `${registry ?? "registry"}:buildcache`;
    const tagged = TAGGED.exec(cacheRef);
    if (r.has("cacheRef") && (!tagged || !REPOSITORY.test(tagged[1]))) {
        r.problem("cacheRef", `must be a tagged image reference such as \`registry.example.com/shop/medusa:buildcache\`, got "${cacheRef}"`);
    }
    const platform = r.text("platform") ?? "linux/amd64";
    if (!(PLATFORMS as readonly string[]).includes(platform)) {
        r.problem("platform", `must be one of ${PLATFORMS.join(", ")}, got "${platform}"`);
    }
    const nodeImage = r.text("nodeImage") ?? "node:20-bookworm-slim";
    if (!IMAGE_REF.test(nodeImage)) r.problem("nodeImage", `must be an image reference such as node:20-bookworm-slim, got "${nodeImage}"`);
    const systemPackages = r.text("systemPackages") ?? "";
    if (!/^[a-z0-9.+\- ]*$/.test(systemPackages)) {
        r.problem("systemPackages", `must be Debian package names separated by spaces, got "${systemPackages}"`);
    }
    return { kind: "build", appPath, registry: registry ?? "", cacheRef, platform, nodeImage, systemPackages, npmrc: r.secret("npmrc") };
}

function parseServices(r: Reader, devDefaults: boolean): DeployConfig["services"] {
    const databaseUrl = r.secret("databaseUrl");
    if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl.reveal())) {
        r.problem("databaseUrl", "must be a postgres:// or postgresql:// URL (value not shown: it is a secret)");
    }
    const postgres: PostgresService = databaseUrl
        ? { kind: "external", url: databaseUrl }
        : { kind: "container", image: imageSetting(r, "postgresImage"), password: requiredSecret(r, "postgresPassword", devDefaults, " when databaseUrl is not set (a Postgres container is run)") };

    const redisUrl = r.secret("redisUrl");
    if (redisUrl && !/^rediss?:\/\//.test(redisUrl.reveal())) {
        r.problem("redisUrl", "must be a redis:// or rediss:// URL (value not shown: it is a secret)");
    }
    const redis: RedisService = redisUrl ? { kind: "external", url: redisUrl } : { kind: "container", image: imageSetting(r, "redisImage") };
    return { postgres, redis };
}

function imageSetting(r: Reader, key: string): string {
    const value = r.text(key) ?? "";
    if (!IMAGE_REF.test(value)) r.problem(key, `must be an image reference such as ${findSetting(key)?.default}, got "${value}"`);
    return value;
}

function parseEdge(r: Reader): DeployConfig["edge"] {
    const address = r.text("edgeAddress") ?? "127.0.0.1";
    if (!IPV4.test(address)) r.problem("edgeAddress", `must be an IPv4 address such as 127.0.0.1 or 0.0.0.0, got "${address}"`);
    const port = r.integer("edgePort", 1, 65535) ?? 8080;
    const image = imageSetting(r, "edgeImage");
    const shownAddress = address === "0.0.0.0" ? "localhost" : address;
    const publicUrl = r.text("publicUrl") ?? `http://${shownAddress}:${port}`;
    if (!/^https?:\/\/[^\s/]+(\/\S*)?$/.test(publicUrl)) r.problem("publicUrl", `must be an http(s) URL, got "${publicUrl}"`);
    return { address, port, image, publicUrl: publicUrl.replace(/\/$/, "") };
}

function parseAppEnv(r: Reader): Record<string, string> {
    const env = r.object("appEnv") ?? {};
    const result: Record<string, string> = {};
    for (const [name, value] of Object.entries(env)) {
        if (!ENV_NAME.test(name)) r.problem("appEnv", `has an invalid variable name "${name}" (letters, digits, _; not starting with a digit)`);
        else if (RESERVED_ENV.includes(name)) r.problem("appEnv", `must not set ${name}: the deployment sets it (use the matching setting instead)`);
        else if (typeof value === "object" && value !== null) r.problem("appEnv", `value of ${name} must be a string, number or boolean`);
        else if (/[\r\n]/.test(String(value))) r.problem("appEnv", `value of ${name} must be one line (env files cannot carry line breaks)`);
        else result[name] = String(value);
    }
    return result;
}

export function parseDeployConfig(raw: RawConfig, ctx: ConfigContext): DeployConfig {
    const r = new Reader(raw);

    for (const key of r.unknownKeys()) {
        const known = SETTINGS.map((s) => s.key).filter((k) => k.toLowerCase() === key.toLowerCase());
        r.problem(key, `is not a setting of this project${known.length ? ` (did you mean ${known[0]}?)` : ""}; see the README's configuration reference`);
    }

    const devDefaults = r.boolean("devDefaults", false);
    const host = parseHost(r, ctx);
    if (devDefaults && host.kind !== "local") {
        r.problem("devDefaults", "is only allowed with host `local`: a remote host needs real secrets");
    }
    const isLocal = host.kind === "local";
    const sudo = r.boolean("sudo", !isLocal);

    const stateDirDefault = isLocal ? path.posix.join(ctx.homeDir, ".medusa-deploy", ctx.stack) : `/var/lib/medusa-deploy/${ctx.stack}`;
    const hostStateDir = r.text("hostStateDir") ?? stateDirDefault;
    if (!path.posix.isAbsolute(hostStateDir) || hostStateDir.split("/").includes("..") || /\s/.test(hostStateDir)) {
        r.problem("hostStateDir", `must be an absolute path without spaces or "..", got "${hostStateDir}"`);
    }

    const buildkitKeepStorage = r.text("buildkitKeepStorage") ?? "10GB";
    if (!SIZE.test(buildkitKeepStorage)) r.problem("buildkitKeepStorage", `must be a size such as 10GB or 512MB (units B, KB, MB, GB, TB), got "${buildkitKeepStorage}"`);
    const logMaxSize = r.text("dockerLogMaxSize") ?? "10m";
    if (!LOG_SIZE.test(logMaxSize)) r.problem("dockerLogMaxSize", `must be a number with k, m or g, such as 10m, got "${logMaxSize}"`);
    const logMaxFile = r.integer("dockerLogMaxFile", 1, 100) ?? 3;
    const daemonExtra = r.object("daemonExtra") ?? {};

    const release = r.text("release") ?? "auto";
    if (release !== "auto" && !RELEASE.test(release)) {
        r.problem("release", `must be \`auto\` or a name of letters, digits, '.', '_' and '-' (at most 128, usable as an image tag), got "${release}"`);
    }

    const image = parseImageSource(r);
    const registryUsername = r.text("registryUsername");
    const registryPassword = r.secret("registryPassword");
    if (registryUsername !== undefined && registryPassword === undefined && !r.problems.some((p) => p.includes(":registryPassword "))) {
        r.problem("registryPassword", `is required when registryUsername is set: \`pulumi config set --secret ${PROJECT_NAME}:registryPassword <token>\``);
    }
    if (registryUsername === undefined && registryPassword !== undefined) {
        r.problem("registryUsername", "is required when registryPassword is set");
    }

    const services = parseServices(r, devDefaults);
    const edge = parseEdge(r);
    const healthTimeoutSeconds = r.integer("healthTimeoutSeconds", 30, 3600) ?? 300;

    const localRegistryPort = r.integer("localRegistryPort", 1, 65535);
    if (localRegistryPort !== undefined && !isLocal) r.problem("localRegistryPort", "is only for host `local` (a dev registry on loopback)");
    if (localRegistryPort !== undefined && localRegistryPort === edge.port) r.problem("localRegistryPort", `must differ from edgePort (${edge.port})`);

    const config: DeployConfig = {
        stack: ctx.stack,
        host,
        sudo,
        hostStateDir,
        daemon: { manage: r.boolean("manageDaemon", !isLocal), buildkitKeepStorage, logMaxSize, logMaxFile, extra: daemonExtra },
        release,
        image,
        registryAuth: registryUsername !== undefined && registryPassword ? { username: registryUsername, password: registryPassword } : undefined,
        services,
        app: {
            jwtSecret: requiredSecret(r, "jwtSecret", devDefaults, ""),
            cookieSecret: requiredSecret(r, "cookieSecret", devDefaults, ""),
            storeCors: r.text("storeCors") ?? edge.publicUrl,
            adminCors: r.text("adminCors") ?? edge.publicUrl,
            authCors: r.text("authCors") ?? edge.publicUrl,
            env: parseAppEnv(r),
            secretEnv: secretEnvSetting(r),
            healthTimeoutSeconds,
        },
        edge,
        localRegistry: localRegistryPort === undefined ? undefined : { port: localRegistryPort },
        devDefaults,
    };

    if (r.problems.length > 0) throw new ConfigError(ctx.stack, r.problems);
    return config;
}

function secretEnvSetting(r: Reader): SecretValue | undefined {
    const env = r.object("appSecretEnv");
    if (env === undefined) return undefined;
    for (const name of Object.keys(env)) {
        if (!ENV_NAME.test(name)) r.problem("appSecretEnv", `has an invalid variable name "${name}"`);
        else if (RESERVED_ENV.includes(name)) r.problem("appSecretEnv", `must not set ${name}: the deployment sets it`);
        else if (/[\r\n]/.test(String(env[name]))) r.problem("appSecretEnv", `value of ${name} must be one line (value not shown: it is a secret)`);
    }
    return new SecretValue(JSON.stringify(env));
}
