// Reads every stack setting once, applies defaults and validates it. Every check runs, whatever an
// earlier one found, and all problems are collected into one ConfigError, so a user fixes their stack
// file in one go, and nothing is declared (let alone changed on a host) until the whole configuration
// is valid. Checks that need something besides the settings (the app folder, a local state folder)
// look at this machine only; nothing here connects anywhere.
import * as fs from "node:fs";
import * as path from "node:path";
import { appFolderProblems } from "./appFolder";
import { PROJECT_NAME, SETTINGS, SettingSpec, findSetting } from "./configSchema";
import { parseByteSize } from "./buildkitdToml";
import { daemonExtraProblems } from "./daemonJson";
import { BACKUP_FOLDER_PURPOSE, hostStateDirPathProblems, localHostStateDirProblems } from "./hostStateDir";
import { portProblems, PortUse } from "./portRules";
import { HOST_KEY_EXAMPLE, parseHostKey } from "./sshTransport";
import { JWT_LIKE, lineProblem, PASSWORD_LIKE, placeholderWeakness, sshPrivateKeyProblem, StrengthRule, weakness } from "./secretRules";
import { SecretValue } from "./secretValue";
import { corsProblems, hostOf, isLoopbackHost, originProblem } from "./urlRules";
import { parseStackRef } from "./stackRef";
import { accountsById, ContainerUser, hostAccountCollisions, parseContainerUser } from "./containerUsers";
import { checkMaintenancePage } from "./edgeControls";
import { EdgeClientLimits } from "./haproxyConfig";
import { isDigestPinned, mutableImageProblem, parseAllowMutableImages, PINNED_IMAGE_SETTINGS, PinnedImageSetting } from "./imagePinning";

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
    /** Folder of this project, which a relative appPath starts from. @default the folder above lib/ */
    projectDir?: string;
    /**
     * Organization of this stack, when known. promoteFrom naming this project and stack in another
     * organization is then allowed; unknown, any organization counts as this one.
     */
    organization?: string;
    /** The user running pulumi, for the ownership of a local hostStateDir. @default process.getuid() */
    uid?: number;
}

export type HostTarget =
    | { kind: "local" }
    | { kind: "ssh"; user: string; hostname: string; port: number; privateKey: SecretValue; /** Pinned host key, `<type> <base64>`. */ hostKey: string };

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
          /** The image's `medusa` user. */
          appUser: ContainerUser;
          /** Network of the BuildKit builder container. */
          buildNetwork: "host" | "bridge";
      }
    | { kind: "promote"; fromStack: string };

export type PostgresService = { kind: "container"; image: string; password: SecretValue } | { kind: "external"; url: SecretValue };
export type RedisService = { kind: "container"; image: string } | { kind: "external"; url: SecretValue };

export interface DeployConfig {
    stack: string;
    host: HostTarget;
    sudo: boolean;
    hostStateDir: string;
    daemon: {
        manage: boolean;
        buildkitKeepStorage: string;
        logMaxSize: string;
        logMaxFile: number;
        extra: Record<string, unknown>;
        /** Image of the BuildKit builder container; undefined: buildx's default (moby/buildkit). */
        buildkitImage?: string;
    };
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
    edge: {
        address: string;
        port: number;
        image: string;
        publicUrl: string;
        clientLimits: EdgeClientLimits;
        /** The shop's maintenance page (the content of maintenancePageFile); absent: the built-in one. */
        maintenancePage?: string;
    };
    /** uid:gid of the edge process when host scripts run as root. */
    edgeUser: string;
    /** "auto": traffic moves once the new colour is healthy; "manual": it waits for `npm run switch`. */
    promotion: "auto" | "manual";
    /** After a traffic switch: how long the new colour's edge counters are watched, and the error share that reverts it. */
    switchWatch: {
        /** Seconds; 0 disables the watch. */
        seconds: number;
        /** More than 0, at most 1. */
        maxErrorRate: number;
    };
    localRegistry?: { port: number };
    devDefaults: boolean;
    /** The pre-migration backup. */
    backup: {
        enabled: boolean;
        /** Folder on the host. */
        dir: string;
        /** Deploy backups kept. */
        keepDeploy: number;
        /** pg_dump/pg_restore image. */
        clientImage: string;
        /** The daily backup container, when on. */
        daily?: { at: string; keepDays: number };
    };
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

/** Where published dev secrets and weak secrets are acceptable: nothing but this machine reaches it. */
export const DEV_SANDBOX_RULE =
    "a local dev sandbox: a stack named dev, dev-<name> or local, with host `local`, edgeAddress on loopback (127.x.x.x) and publicUrl, if set, on localhost";
/** The same, short, for messages about a single weak value. */
const DEV_SANDBOX_SHORT = "a local dev sandbox (a dev stack on host `local` with the edge on loopback)";

const RELEASE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const SSH_HOST = /^ssh:\/\/([a-z_][a-z0-9_.-]*)@([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::(\d+))?$/;
// registry host[:port] then at least one lowercase path component; no tag, no digest.
const REPOSITORY = /^(?:[a-z0-9]([a-z0-9.-]*[a-z0-9])?(?::\d{1,5})?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;
const TAGGED = /^(.+):([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$/;
const IMAGE_REF = /^[a-z0-9]([a-z0-9.:/_-]*[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$/;
const SIZE = /^\d+(\.\d+)?(B|KB|MB|GB|TB)$/;
const LOG_SIZE = /^\d+[kmg]$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Plain env names that look like they carry a secret. */
const SECRET_LOOKING_ENV = /(SECRET|PASSWORD|PASSWD|TOKEN|API_KEY|APIKEY|PRIVATE_KEY|ACCESS_KEY|SECRET_KEY|CREDENTIALS)$/i;
export const PLATFORMS = ["linux/amd64", "linux/arm64"] as const;
const PLATFORM_ALIASES: Record<string, string> = {
    amd64: "linux/amd64", x86_64: "linux/amd64", "x86-64": "linux/amd64", "linux/x86_64": "linux/amd64", "linux/x86-64": "linux/amd64",
    arm64: "linux/arm64", aarch64: "linux/arm64", "linux/aarch64": "linux/arm64", "linux/arm64/v8": "linux/arm64",
};
/** Env names the deployment sets itself; appEnv must not override them. */
const RESERVED_ENV = ["DATABASE_URL", "REDIS_URL", "JWT_SECRET", "COOKIE_SECRET", "STORE_CORS", "ADMIN_CORS", "AUTH_CORS", "MEDUSA_WORKER_MODE", "DISABLE_MEDUSA_ADMIN", "PORT", "NODE_ENV", "MEDUSA_RELEASE", "MEDUSA_COLOUR"];
/** Tag of the system-packages base image in the registry (components/medusaImage.ts). */
const BASE_IMAGE_TAG = "base";

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

    /** Unset, or set to its fixed default (project defaults arrive like set values). */
    isDefault(key: string): boolean {
        const d = this.spec(key).default;
        return !this.has(key) || (d !== undefined && this.raw[key].value === String(d));
    }

    problem(key: string, message: string): void {
        this.problems.push(`${PROJECT_NAME}:${key} ${message}`);
    }

    /** Whether a problem was already reported for the setting (so a value that is not one is not checked further). */
    failed(key: string): boolean {
        return this.problems.some((p) => p.startsWith(`${PROJECT_NAME}:${key} `));
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
        if (raw === undefined || (raw.value === "" && !spec.emptyMeansNone)) {
            return typeof spec.default === "string" ? spec.default : undefined;
        }
        if (spec.secret && !raw.secret) {
            if (!this.failed(key)) this.problem(key, `is a secret but is set in plain text: run \`pulumi config set --secret ${PROJECT_NAME}:${key} <value>\``);
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
        if (!this.failed(key)) this.problem(key, `must be true or false, got "${raw}"`);
        return fallback;
    }

    /** The setting's whole number; its default when unset; undefined (and a problem) when invalid. */
    integer(key: string, min: number, max: number, hint = ""): number | undefined {
        const raw = this.raw[key]?.value;
        const d = this.spec(key).default;
        if (raw === undefined || raw === "") return typeof d === "number" ? d : undefined;
        if (!/^-?\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
            // "5m" for a number of seconds: say what it would be.
            const duration = key.endsWith("Seconds") ? /^(\d+)\s*(s|sec|m|min|h)$/.exec(raw) : null;
            const inSeconds = duration ? Number(duration[1]) * ({ s: 1, sec: 1, m: 60, min: 60, h: 3600 } as Record<string, number>)[duration[2]] : undefined;
            const unit = inSeconds !== undefined ? ` (in seconds, without a unit: ${raw} is ${inSeconds})` : "";
            if (!this.failed(key)) this.problem(key, `must be a whole number from ${min} to ${max}${hint}${unit}, got "${raw}"`);
            return undefined;
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

/** What the checks after the host need to know about it. */
interface HostFacts {
    target: HostTarget;
    /** Anything but a valid `local`: a host text that does not parse counts as remote, the stricter case. */
    remote: boolean;
    /** The ssh port, when the host is a valid ssh URL. */
    sshPort?: number;
}

function parseHost(r: Reader, ctx: ConfigContext): HostFacts {
    const host = r.text("host") ?? "local";
    if (!r.has("host") && !isDevStack(ctx.stack)) {
        r.problem("host", `must be set for stack "${ctx.stack}" (only dev stacks default to the local Docker): \`local\` or \`ssh://user@host[:port]\``);
    }
    if (host === "local") {
        if (r.has("sshPrivateKey") && (r.has("host") || isDevStack(ctx.stack))) r.problem("sshPrivateKey", "is set but host is `local`, which connects without ssh: remove it (`pulumi config rm medusa-deploy:sshPrivateKey`)");
        if (r.has("sshHostKey") && (r.has("host") || isDevStack(ctx.stack))) r.problem("sshHostKey", "is set but host is `local`, which connects without ssh: remove it (`pulumi config rm medusa-deploy:sshHostKey`)");
        return { target: { kind: "local" }, remote: !r.has("host") && !isDevStack(ctx.stack) };
    }
    const m = SSH_HOST.exec(host);
    if (!m) {
        const hint = /^(tcp|unix|npipe|https?):/.test(host)
            ? " (medusa-deploy reaches a remote Docker only through ssh, which also runs its host scripts)"
            : /^[^:/]+@[^/]+$/.test(host)
              ? ` (did you mean ssh://${host}?)`
              : "";
        r.problem("host", `must be \`local\` or \`ssh://user@host[:port]\`${hint}, got "${host}"`);
    }
    const port = m?.[3] === undefined ? 22 : Number(m[3]);
    if (m && (port < 1 || port > 65535)) r.problem("host", `has port ${port}; valid ports are 1-65535`);

    // An unparsable host that still looks like ssh is meant to be one: its key is checked as well.
    const looksLikeSsh = m !== null || /^ssh:|@/.test(host);
    const privateKey = looksLikeSsh ? r.secret("sshPrivateKey") : undefined;
    if (looksLikeSsh && !privateKey && !r.failed("sshPrivateKey")) {
        r.problem("sshPrivateKey", `is required for an ssh host: \`pulumi config set --secret ${PROJECT_NAME}:sshPrivateKey < ~/.ssh/id_ed25519\``);
    }
    const keyProblem = privateKey ? sshPrivateKeyProblem(privateKey.reveal()) : undefined;
    if (keyProblem) r.problem("sshPrivateKey", `${keyProblem} (value not shown: it is a secret)`);
    const hostKey = looksLikeSsh ? parseSshHostKey(r, m?.[2] ?? "the host") : undefined;
    const target: HostTarget = m
        ? { kind: "ssh", user: m[1], hostname: m[2], port, privateKey: privateKey ?? new SecretValue(""), hostKey: hostKey ?? "" }
        : { kind: "local" };
    return { target, remote: true, sshPort: m && !r.failed("host") ? port : undefined };
}

/** The pinned host key: required, so no connection ever trusts a key it is shown for the first time. */
function parseSshHostKey(r: Reader, hostname: string): string | undefined {
    const text = r.text("sshHostKey");
    const howTo = `on ${hostname}: \`cat /etc/ssh/ssh_host_ed25519_key.pub\`, then \`pulumi config set ${PROJECT_NAME}:sshHostKey "ssh-ed25519 AAAA…"\``;
    if (text === undefined) {
        r.problem("sshHostKey", `is required for an ssh host: every connection checks the host against it. Read it ${howTo}`);
        return undefined;
    }
    const parsed = parseHostKey(text);
    if (!parsed) {
        r.problem("sshHostKey", `must be a public host key as ssh prints it, \`<type> <base64>\` (e.g. ${HOST_KEY_EXAMPLE}), got ${JSON.stringify(text.slice(0, 60))}. Read it ${howTo}`);
        return undefined;
    }
    return `${parsed.type} ${parsed.key}`;
}

/** What keeps this stack from being a local dev sandbox, as phrases; empty when it is one. */
function sandboxGaps(stack: string, host: HostFacts, edge: DeployConfig["edge"], publicUrlSet: boolean): string[] {
    const gaps: string[] = [];
    if (!isDevStack(stack)) gaps.push(`"${stack}" is not a dev stack name`);
    if (host.remote) gaps.push("host is not `local`");
    if (!isLoopbackHost(edge.address)) gaps.push(`edgeAddress ${edge.address} is not a loopback address`);
    const publicHost = hostOf(edge.publicUrl);
    if (publicUrlSet && publicHost !== undefined && !isLoopbackHost(publicHost)) gaps.push(`publicUrl's host ${publicHost} is not this machine`);
    return gaps;
}

/** Settings that a weak or reused secret would expose, checked together once all are read. */
interface SecretPolicy {
    stack: string;
    /** Weak values are fine in a sandbox; line breaks and malformed keys never are. */
    sandbox: boolean;
}

function checkLine(r: Reader, key: string, value: string | undefined): void {
    const line = value === undefined ? undefined : lineProblem(value);
    if (line) r.problem(key, `${line} (value not shown: it is a secret)`);
}

/** Refuses a guessable secret outside a sandbox. `inUrl`: the value is the password part of a URL setting. */
function checkStrength(r: Reader, policy: SecretPolicy, key: string, value: string | undefined, rule: StrengthRule, inUrl = false): void {
    if (value === undefined || policy.sandbox) return;
    const why = weakness(value, rule);
    if (!why) return;
    const advice = inUrl
        ? `Give the database user a password of at least ${rule.minLength} random characters (e.g. from \`openssl rand -hex 24\`) and set the URL with it`
        : `Use at least ${rule.minLength} random characters, e.g. \`pulumi config set --secret ${PROJECT_NAME}:${key} ${rule.generate}\``;
    r.problem(
        key,
        `${inUrl ? "has a password that " : ""}is too weak for stack "${policy.stack}" (value not shown: it is a secret): ${why}. ${advice}. ` +
            `Weaker values are accepted only on ${DEV_SANDBOX_SHORT}`,
    );
}

function requiredSecret(r: Reader, key: string, devDefaults: boolean, why: string): { value: SecretValue; set: boolean } {
    const value = r.secret(key);
    if (value) return { value, set: true };
    if (devDefaults && DEV_ONLY_SECRETS[key]) return { value: new SecretValue(DEV_ONLY_SECRETS[key]), set: false };
    if (!r.failed(key)) {
        r.problem(key, `is required${why}: \`pulumi config set --secret ${PROJECT_NAME}:${key} <value>\``);
    }
    return { value: new SecretValue(""), set: false };
}

/** The parts of a stack reference, filling in what a short form leaves out. */
function stackRefParts(ref: string): { organization?: string; project: string; stack: string } {
    const parts = parseStackRef(ref) ?? { stack: ref.split("/").pop() ?? ref };
    return { organization: parts.organization, project: parts.project ?? PROJECT_NAME, stack: parts.stack };
}

function checkPromoteFrom(r: Reader, ctx: ConfigContext, promoteFrom: string): void {
    const ref = stackRefParts(promoteFrom.trim());
    const example = `organization/${PROJECT_NAME}/staging`;
    const same = (a: string | undefined, b: string | undefined) => a === undefined || b === undefined || a.toLowerCase() === b.toLowerCase();
    if (ref.stack.toLowerCase() === ctx.stack.toLowerCase() && same(ref.project, PROJECT_NAME) && same(ref.organization, ctx.organization)) {
        r.problem(
            "promoteFrom",
            `names this same stack ("${promoteFrom}" is stack ${ctx.stack} of project ${PROJECT_NAME}): a stack cannot promote its own image. ` +
                `Name the stack that builds and verifies the release, e.g. ${example}, or remove promoteFrom to build here`,
        );
        return;
    }
    if (!parseStackRef(promoteFrom)) {
        r.problem(
            "promoteFrom",
            `must name a stack as \`stack\`, \`project/stack\` or \`org/project/stack\` (letters, digits, . _ -; the short forms take this stack's organization and project, so one stack file works on a file backend and on Pulumi Cloud), e.g. staging, got "${promoteFrom}"`,
        );
        return;
    }
    if (isDevStack(ref.stack) && !isDevStack(ctx.stack)) {
        r.problem(
            "promoteFrom",
            `names the dev stack ${promoteFrom}: a dev stack's images live in its loopback registry on the developer's machine, which no other host can pull from. Promote from the stack that verifies releases, e.g. ${example}`,
        );
    }
}

function checkImage(r: Reader, key: string, value: string, example: string): boolean {
    if (!IMAGE_REF.test(value)) {
        r.problem(key, `must be an image reference such as ${example} (lowercase repository, optional :tag and @sha256: digest), got "${value}"`);
        return false;
    }
    return true;
}

function tagOf(image: string): { repository: string; tag?: string } {
    const withoutDigest = image.split("@")[0];
    const m = /^(.*?)(?::([^:/]+))?$/.exec(withoutDigest);
    return { repository: m?.[1] ?? withoutDigest, tag: m?.[2] };
}

function parseImageSource(r: Reader, ctx: ConfigContext, release: string): ImageSource {
    const promoteFrom = r.text("promoteFrom");
    if (promoteFrom !== undefined) {
        checkPromoteFrom(r, ctx, promoteFrom);
        for (const buildOnly of ["registry", "cacheRef", "npmrc", "buildkitImage", "localRegistryPort"]) {
            if (r.has(buildOnly)) r.problem(buildOnly, `is a build setting, but this stack promotes from ${promoteFrom} and never builds: remove it`);
        }
        for (const buildOnly of ["appPath", "platform", "nodeImage", "systemPackages", "appUser", "buildNetwork"]) {
            if (!r.isDefault(buildOnly)) r.problem(buildOnly, `is a build setting, but this stack promotes from ${promoteFrom} and never builds: remove it`);
        }
        return { kind: "promote", fromStack: promoteFrom };
    }

    const appPath = r.text("appPath") ?? "examples/medusa-store";
    for (const problem of appFolderProblems(appPath, ctx.projectDir ?? path.resolve(__dirname, ".."), ctx.homeDir)) r.problem("appPath", problem);

    const registry = r.text("registry");
    if (registry === undefined) {
        r.problem("registry", "is required for a stack that builds: an image repository without tag, e.g. `registry.example.com/shop/medusa` (or set promoteFrom)");
    } else if (!REPOSITORY.test(registry)) {
        const hint = /^[a-z]+:\/\//i.test(registry)
            ? " (without the scheme: Docker names a registry by host only)"
            : registry.endsWith("/")
              ? " (without the trailing slash)"
              : registry !== registry.toLowerCase()
                ? ` (Docker repositories are lowercase: ${registry.toLowerCase()})`
                : "";
        r.problem("registry", `must be an image repository without tag or digest, lowercase, e.g. \`registry.example.com/shop/medusa\`${hint}, got "${registry}"`);
    }
    const cacheRef = r.text("cacheRef") ?? `${registry ?? "registry"}:buildcache`;
    const tagged = TAGGED.exec(cacheRef);
    if (r.has("cacheRef") && (!tagged || !REPOSITORY.test(tagged[1]))) {
        r.problem("cacheRef", `must be a tagged image reference such as \`registry.example.com/shop/medusa:buildcache\`, got "${cacheRef}"`);
    }
    if (registry !== undefined && !r.failed("registry") && release !== "auto") {
        // The release is the app image's tag in the same repository as the base image and (by default) the cache.
        const taken = new Map<string, string>([[BASE_IMAGE_TAG, "the system-packages base image"]]);
        if (tagged && tagged[1] === registry) {
            taken.set(tagged[2], "the build cache (cacheRef)");
            taken.set(`${tagged[2]}-base`, "the base image's build cache");
        }
        const what = taken.get(release);
        if (what) r.problem("release", `"${release}" is the tag of ${what} in ${registry}: the release image would overwrite it. Choose another name, e.g. the git commit, or auto`);
    }

    const rawPlatform = r.text("platform") ?? "linux/amd64";
    if (!(PLATFORMS as readonly string[]).includes(rawPlatform)) {
        const alias = PLATFORM_ALIASES[rawPlatform.toLowerCase()];
        r.problem("platform", `must be one of ${PLATFORMS.join(", ")}${alias ? ` (did you mean ${alias}?)` : ""}, got "${rawPlatform}"`);
    }
    const nodeImage = r.text("nodeImage") ?? "node:20-bookworm-slim";
    if (checkImage(r, "nodeImage", nodeImage, "node:20-bookworm-slim")) {
        const { repository, tag } = tagOf(nodeImage);
        const major = repository.split("/").pop() === "node" ? /^(\d+)/.exec(tag ?? "")?.[1] : undefined;
        if (major !== undefined && Number(major) < 20) r.problem("nodeImage", `is Node.js ${major}, but Medusa v2 needs Node.js 20 or newer: use e.g. node:20-bookworm-slim or node:22-bookworm-slim`);
    }
    const systemPackages = r.text("systemPackages") ?? "";
    if (!/^[a-z0-9.+\- ]*$/.test(systemPackages)) {
        r.problem("systemPackages", `must be Debian package names separated by spaces, got "${systemPackages}"`);
    }
    const appUserText = r.text("appUser") ?? "70001:70001";
    const appUser = parseContainerUser(appUserText, "70001:70001");
    if (typeof appUser === "string") r.problem("appUser", appUser);
    const buildNetwork = r.text("buildNetwork") ?? (r.has("localRegistryPort") ? "host" : "bridge");
    if (buildNetwork !== "host" && buildNetwork !== "bridge") r.problem("buildNetwork", `must be \`bridge\` (the builder's own network) or \`host\` (the host's network, needed to push to a registry on the host's loopback), got "${buildNetwork}"`);
    return {
        kind: "build",
        appPath,
        registry: registry ?? "",
        cacheRef,
        platform: rawPlatform,
        nodeImage,
        systemPackages,
        npmrc: r.secret("npmrc"),
        appUser: typeof appUser === "string" ? { uid: 70001, gid: 70001 } : appUser,
        buildNetwork: buildNetwork === "host" ? "host" : "bridge",
    };
}

/** Validates a postgres:// or redis:// URL held in a secret, including the password it carries. */
function checkServiceUrl(r: Reader, policy: SecretPolicy, key: string, value: string, schemes: RegExp, example: string): void {
    let url: URL | undefined;
    try {
        url = new URL(value);
    } catch {
        url = undefined;
    }
    if (!schemes.test(value) || !url || url.hostname === "") {
        r.problem(key, `must be a URL such as ${example} (value not shown: it is a secret)`);
        return;
    }
    if (url.password) checkStrength(r, policy, key, decodeURIComponent(url.password), PASSWORD_LIKE, true);
}

function parseServices(r: Reader, devDefaults: boolean, policy: SecretPolicy): DeployConfig["services"] & { postgresPasswordSet?: string } {
    const databaseUrl = r.secret("databaseUrl");
    if (databaseUrl) {
        checkServiceUrl(r, policy, "databaseUrl", databaseUrl.reveal(), /^postgres(ql)?:\/\//, "postgres://user:password@db.example.com:5432/medusa, a postgres:// or postgresql:// URL");
        if (r.has("postgresPassword")) r.problem("postgresPassword", "is set, but databaseUrl is too, so no Postgres container is run and the password is unused: remove one of them");
        if (!r.isDefault("postgresImage") && !backupsUseClient(r)) {
            r.problem("postgresImage", "is set, but databaseUrl is too, so no Postgres container is run, and preMigrationBackup and dailyBackup are off, so no backup uses it: remove one of them");
        }
    }
    let postgres: PostgresService;
    let postgresPasswordSet: string | undefined;
    if (databaseUrl) {
        postgres = { kind: "external", url: databaseUrl };
    } else {
        const image = r.text("postgresImage") ?? "";
        if (checkImage(r, "postgresImage", image, "postgres:16")) {
            const { repository, tag } = tagOf(image);
            if (repository.split("/").pop() === "postgres" && !image.includes("@") && !/^\d/.test(tag ?? "")) {
                r.problem("postgresImage", `must pin a major version, e.g. postgres:16, got "${image}": a data directory opens only with the major version that created it, so a moving tag would stop the database after a pull`);
            }
        }
        const password = requiredSecret(r, "postgresPassword", devDefaults, " when databaseUrl is not set (a Postgres container is run)");
        if (password.set) {
            postgresPasswordSet = password.value.reveal();
            checkLine(r, "postgresPassword", postgresPasswordSet);
            checkStrength(r, policy, "postgresPassword", postgresPasswordSet, PASSWORD_LIKE);
        }
        postgres = { kind: "container", image, password: password.value };
    }

    const redisUrl = r.secret("redisUrl");
    if (redisUrl) {
        checkServiceUrl(r, policy, "redisUrl", redisUrl.reveal(), /^rediss?:\/\//, "redis://:password@cache.example.com:6379, a redis:// or rediss:// URL");
        if (!r.isDefault("redisImage")) r.problem("redisImage", "is set, but redisUrl is too, so no Redis container is run: remove one of them");
    }
    const redisImage = r.text("redisImage") ?? "";
    if (!redisUrl) checkImage(r, "redisImage", redisImage, "redis:7");
    const redis: RedisService = redisUrl ? { kind: "external", url: redisUrl } : { kind: "container", image: redisImage };
    return { postgres, redis, postgresPasswordSet };
}

function parseEdge(r: Reader, ctx: ConfigContext): DeployConfig["edge"] {
    const address = r.text("edgeAddress") ?? "127.0.0.1";
    if (!IPV4.test(address)) {
        const hint = address === "localhost" ? " (for localhost write 127.0.0.1)" : address.includes(":") ? " (an address only, the port is edgePort)" : "";
        r.problem("edgeAddress", `must be an IPv4 address such as 127.0.0.1 or 0.0.0.0${hint}, got "${address}"`);
    }
    const port = r.integer("edgePort", 1, 65535, " (a TCP port)") ?? 8080;
    const image = r.text("edgeImage") ?? "";
    if (checkImage(r, "edgeImage", image, "haproxy:2.8")) {
        const { repository, tag } = tagOf(image);
        const version = repository.split("/").pop() === "haproxy" ? /^(\d+)(?:\.(\d+))?/.exec(tag ?? "") : null;
        if (version && (Number(version[1]) < 2 || (Number(version[1]) === 2 && version[2] !== undefined && Number(version[2]) < 6))) {
            r.problem("edgeImage", `is HAProxy ${version[0]}, but the traffic switch needs 2.6 or newer (runtime server address changes and state files): use e.g. haproxy:2.8`);
        }
    }
    const shownAddress = address === "0.0.0.0" ? "localhost" : address;
    const publicUrl = r.text("publicUrl") ?? `http://${shownAddress}${port === 80 ? "" : `:${port}`}`;
    const why = originProblem(publicUrl);
    if (why) {
        r.problem("publicUrl", `must be the origin the shop is reached at, scheme://host[:port] such as https://shop.example.com: "${publicUrl}" ${why}`);
    } else {
        const host = hostOf(publicUrl) ?? "";
        if (!isDevStack(ctx.stack) && publicUrl.startsWith("http:") && !isLoopbackHost(host)) {
            r.problem("publicUrl", `must use https:// on stack "${ctx.stack}" (got "${publicUrl}"): over http, admin and customer logins cross the network in clear. Terminate TLS in front of the edge and set e.g. https://${host}; http is accepted on dev stacks and loopback addresses`);
        }
    }
    if (!r.has("publicUrl") && IPV4.test(address) && !isLoopbackHost(address) && !isDevStack(ctx.stack)) {
        r.problem("publicUrl", `must be set when the edge listens beyond loopback (edgeAddress ${address}): the default ${publicUrl} is only right on the docker host itself and would be the CORS origin. Set the address customers use, e.g. https://shop.example.com`);
    }
    const clientLimits: EdgeClientLimits = {
        connections: r.integer("edgeClientConnections", 1, 100000, " (connections per client address)") ?? 200,
        requestsPer10s: r.integer("edgeClientRequestsPer10s", 1, 10000000, " (requests per client address in 10 seconds)") ?? 5000,
    };
    const maintenancePage = readMaintenancePage(r, ctx);
    return { address, port, image, publicUrl: publicUrl.replace(/\/$/, ""), clientLimits, ...(maintenancePage !== undefined ? { maintenancePage } : {}) };
}

function readMaintenancePage(r: Reader, ctx: ConfigContext): string | undefined {
    const file = r.text("maintenancePageFile");
    if (file === undefined) return undefined;
    const resolved = path.resolve(ctx.projectDir ?? path.resolve(__dirname, ".."), file);
    let page: string;
    try {
        page = fs.readFileSync(resolved, "utf8");
    } catch (error) {
        r.problem("maintenancePageFile", `must name a readable HTML file (relative to the project folder, or absolute): ${resolved}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
        return undefined;
    }
    try {
        checkMaintenancePage("maintenancePageFile", page);
    } catch (error) {
        r.problem("maintenancePageFile", (error as Error).message.replace(/^maintenancePageFile: /, `${resolved}: `));
        return undefined;
    }
    return page;
}

/** Whether a backup (before a migration or daily) runs the Postgres client image. */
function backupsUseClient(r: Reader): boolean {
    return r.boolean("preMigrationBackup", true) || r.boolean("dailyBackup", true);
}

function parseBackup(r: Reader, hostStateDir: string, services: DeployConfig["services"]): DeployConfig["backup"] {
    const enabled = r.boolean("preMigrationBackup", true);
    const dir = r.text("backupDir") ?? `${hostStateDir.replace(/\/+$/, "")}/backups`;
    const example = `${hostStateDir.replace(/\/+$/, "")}/backups`;
    for (const problem of hostStateDirPathProblems(dir, example, BACKUP_FOLDER_PURPOSE)) r.problem("backupDir", `"${dir}" ${problem}`);
    const keepDeploy = r.integer("backupKeepDeploy", 1, 1000, " (backups)") ?? 10;
    const postgres = services.postgres;
    const clientImage = postgres.kind === "container" ? postgres.image : (r.text("postgresImage") ?? "postgres:16");
    const at = r.text("dailyBackupTime") ?? "03:30";
    if (!/^([01][0-9]|2[0-3]):[0-5][0-9]$/.test(at)) r.problem("dailyBackupTime", `"${at}" is not a time of day: use HH:MM in UTC, 00:00 to 23:59, e.g. 03:30`);
    const keepDays = r.integer("backupKeepDailyDays", 1, 3650, " (days)") ?? 14;
    const daily = r.boolean("dailyBackup", true) ? { at, keepDays } : undefined;
    return { enabled, dir, keepDeploy, clientImage, daily };
}

/** Edge, Postgres and Redis images by digest outside a dev sandbox, unless allowMutableImages names them. */
function checkImagePins(r: Reader, ctx: ConfigContext, policy: SecretPolicy, images: Record<PinnedImageSetting, string | undefined>): void {
    const allowed = parseAllowMutableImages(r.text("allowMutableImages") ?? "");
    for (const name of allowed.unknown) {
        r.problem("allowMutableImages", `names "${name}", which is not an image setting that must be pinned: use a comma-separated list of ${PINNED_IMAGE_SETTINGS.join(", ")}`);
    }
    if (policy.sandbox) return;
    for (const setting of PINNED_IMAGE_SETTINGS) {
        const image = images[setting];
        if (image === undefined || r.failed(setting) || isDigestPinned(image) || allowed.settings.has(setting)) continue;
        r.problem(setting, mutableImageProblem(setting, image, ctx.stack, r.isDefault(setting)));
    }
}

function parseEdgeUser(r: Reader): ContainerUser | undefined {
    const parsed = parseContainerUser(r.text("edgeUser") ?? "70002:70002", "70002:70002");
    if (typeof parsed === "string") {
        r.problem("edgeUser", parsed);
        return undefined;
    }
    return parsed;
}

/** On host `local` the docker host is this machine: its accounts can be asked. */
function checkLocalAccounts(r: Reader, image: ImageSource, edgeUser: ContainerUser | undefined, scriptsRunAsRoot: boolean): void {
    const passwd = accountsById("/etc/passwd");
    const groups = accountsById("/etc/group");
    const users: Array<[string, ContainerUser | undefined]> = [];
    if (image.kind === "build" && !r.failed("appUser")) users.push(["appUser", image.appUser]);
    // Without root the edge runs as the user running pulumi, and edgeUser is not used.
    if (scriptsRunAsRoot) users.push(["edgeUser", edgeUser]);
    for (const [setting, user] of users) {
        if (!user) continue;
        const clashes = hostAccountCollisions(user, passwd, groups);
        if (clashes.length > 0) {
            r.problem(setting, `${user.uid}:${user.gid} collides with this host's accounts (${clashes.join(", ")}): that account could read the process's environment and signal it. Choose ids no account uses, e.g. ${setting === "appUser" ? "70001:70001" : "70002:70002"}`);
        }
    }
    if (users.length === 2 && users[0][1] && users[1][1] && users[0][1].uid === users[1][1].uid) {
        r.problem("edgeUser", `must differ from appUser (both uid ${users[0][1].uid}): the edge and the app must not be able to read each other's processes`);
    }
}

function parseCors(r: Reader, key: "storeCors" | "adminCors" | "authCors", fallback: string): string {
    const value = r.text(key);
    if (value === undefined) return fallback;
    for (const { entry, reason } of corsProblems(value)) {
        r.problem(key, `has the entry "${entry}", which ${reason}. Write comma-separated origins such as https://shop.example.com,https://admin.example.com (or /regex/ entries)`);
    }
    return value;
}

function parseAppEnv(r: Reader): Record<string, string> {
    const env = r.object("appEnv") ?? {};
    const result: Record<string, string> = {};
    for (const [name, value] of Object.entries(env)) {
        if (!ENV_NAME.test(name)) r.problem("appEnv", `has an invalid variable name "${name}" (letters, digits, _; not starting with a digit)`);
        else if (RESERVED_ENV.includes(name)) r.problem("appEnv", `must not set ${name}: the deployment sets it (use the matching setting instead)`);
        else if (SECRET_LOOKING_ENV.test(name)) r.problem("appEnv", `sets ${name}, which looks like a secret, in plain text (the stack file and state would hold it readable): move it to appSecretEnv with \`pulumi config set --secret --path '${PROJECT_NAME}:appSecretEnv.${name}' <value>\``);
        else if (typeof value === "object" && value !== null) r.problem("appEnv", `value of ${name} must be a string, number or boolean`);
        else if (/[\r\n]/.test(String(value))) r.problem("appEnv", `value of ${name} must be one line (env files cannot carry line breaks)`);
        else result[name] = String(value);
    }
    return result;
}

function secretEnvSetting(r: Reader, policy: SecretPolicy, plainEnv: Record<string, unknown>): SecretValue | undefined {
    const env = r.object("appSecretEnv");
    if (env === undefined) return undefined;
    for (const name of Object.keys(env)) {
        const value = String(env[name]);
        if (!ENV_NAME.test(name)) r.problem("appSecretEnv", `has an invalid variable name "${name}" (letters, digits, _; not starting with a digit)`);
        else if (RESERVED_ENV.includes(name)) r.problem("appSecretEnv", `must not set ${name}: the deployment sets it (use the matching setting instead)`);
        else if (name in plainEnv) r.problem("appSecretEnv", `and appEnv both set ${name}: keep it in one of them (appSecretEnv if it is a secret)`);
        else if (typeof env[name] === "object" && env[name] !== null) r.problem("appSecretEnv", `value of ${name} must be a string, number or boolean (value not shown: it is a secret)`);
        else if (/[\r\n]/.test(value)) r.problem("appSecretEnv", `value of ${name} must be one line (value not shown: it is a secret)`);
        else if (!policy.sandbox && placeholderWeakness(value)) r.problem("appSecretEnv", `value of ${name} is a well-known placeholder (value not shown: it is a secret): set the real value, or remove ${name}`);
    }
    return new SecretValue(JSON.stringify(env));
}

function parseStateDir(r: Reader, ctx: ConfigContext, host: HostFacts): string {
    const fallback = host.remote ? `/var/lib/medusa-deploy/${ctx.stack}` : path.posix.join(ctx.homeDir, ".medusa-deploy", ctx.stack);
    const dir = r.text("hostStateDir") ?? fallback;
    const defaulted = r.has("hostStateDir") ? "" : ` (the default for ${host.remote ? "an ssh host" : "host `local`"}; set ${PROJECT_NAME}:hostStateDir)`;
    // The example in a message must itself be acceptable: when the home folder is the problem, name a generic one.
    const example = hostStateDirPathProblems(fallback, fallback).length === 0 ? fallback : `/home/<you>/.medusa-deploy/${ctx.stack}`;
    const problems = hostStateDirPathProblems(dir, example);
    if (problems.length === 0 && !host.remote) {
        problems.push(...localHostStateDirProblems(dir, example, { uid: ctx.uid ?? process.getuid?.() ?? -1 }));
    }
    for (const problem of problems) r.problem("hostStateDir", `"${dir}" ${problem}${defaulted}`);
    return dir;
}

/** Whether dockerd and buildkitd would take the size (lib/buildkitdToml.ts parses it as they do). */
function positiveSize(size: string): boolean {
    try {
        return parseByteSize(size) > 0;
    } catch {
        return false;
    }
}

function parseDaemon(r: Reader, host: HostFacts, image: ImageSource): DeployConfig["daemon"] {
    const manage = r.boolean("manageDaemon", host.remote);
    const buildkitKeepStorage = r.text("buildkitKeepStorage") ?? "10GB";
    if (!SIZE.test(buildkitKeepStorage)) r.problem("buildkitKeepStorage", `must be a size such as 10GB or 512MB (units B, KB, MB, GB, TB), got "${buildkitKeepStorage}"`);
    else if (!positiveSize(buildkitKeepStorage)) r.problem("buildkitKeepStorage", `must be more than 0 bytes (it bounds the build cache; 0 would be refused by dockerd and the builder), e.g. 10GB, got "${buildkitKeepStorage}"`);
    const logMaxSize = r.text("dockerLogMaxSize") ?? "10m";
    if (!LOG_SIZE.test(logMaxSize) || /^0+[kmg]$/.test(logMaxSize)) r.problem("dockerLogMaxSize", `must be a number above 0 with k, m or g, such as 10m, got "${logMaxSize}"`);
    const logMaxFile = r.integer("dockerLogMaxFile", 1, 100) ?? 3;

    const extra = r.object("daemonExtra") ?? {};
    for (const problem of daemonExtraProblems(extra)) r.problem("daemonExtra", problem);
    if (!manage && !r.failed("manageDaemon")) {
        const unused = ["daemonExtra", "dockerLogMaxSize", "dockerLogMaxFile"].filter((k) => (k === "daemonExtra" ? Object.keys(extra).length > 0 : !r.isDefault(k)));
        for (const key of unused) {
            r.problem(key, "is set, but manageDaemon is false, so nothing writes it to daemon.json: set medusa-deploy:manageDaemon to true (the host's daemon.json is then merged with these settings) or remove it");
        }
    }

    const buildkitImage = r.text("buildkitImage");
    if (buildkitImage !== undefined && image.kind === "build") checkImage(r, "buildkitImage", buildkitImage, "moby/buildkit:v0.17.3 (or the local image the toolchain script builds)");
    return { manage, buildkitKeepStorage, logMaxSize, logMaxFile, extra, buildkitImage };
}

function parsePromotion(r: Reader): DeployConfig["promotion"] {
    const raw = r.text("promotion") ?? "auto";
    if (raw === "auto" || raw === "manual") return raw;
    r.problem("promotion", `must be \`auto\` (traffic moves once the new colour is healthy) or \`manual\` (the new colour is staged; \`npm run switch\` moves traffic), got "${raw}"`);
    return "auto";
}

function parseSwitchWatch(r: Reader): DeployConfig["switchWatch"] {
    const seconds = r.integer("switchWatchSeconds", 0, 3600, " (seconds; 0 disables the watch)") ?? 30;
    const raw = r.text("switchWatchMaxErrorRate");
    let maxErrorRate = 0.05;
    if (raw !== undefined) {
        const value = /^(\d+(\.\d+)?|\.\d+)$/.test(raw) ? Number(raw) : NaN;
        if (!(value > 0 && value <= 1)) {
            const percent = /^(\d+(\.\d+)?)%?$/.exec(raw);
            const hint = percent && Number(percent[1]) > 1 && Number(percent[1]) <= 100 ? ` (for ${percent[1]}% write ${Number(percent[1]) / 100})` : "";
            r.problem("switchWatchMaxErrorRate", `must be a fraction more than 0 and at most 1, e.g. 0.05 (a new colour failing 5% of its responses during the watch is switched back)${hint}, got "${raw}"`);
        } else {
            maxErrorRate = value;
        }
    }
    return { seconds, maxErrorRate };
}

function checkRegistryAuth(r: Reader, policy: SecretPolicy): DeployConfig["registryAuth"] {
    const username = r.text("registryUsername");
    const password = r.secret("registryPassword");
    if (username !== undefined && password === undefined && !r.failed("registryPassword")) {
        r.problem("registryPassword", `is required when registryUsername is set: \`pulumi config set --secret ${PROJECT_NAME}:registryPassword <token>\``);
    }
    if (username === undefined && password !== undefined) r.problem("registryUsername", "is required when registryPassword is set");
    if (password) {
        checkLine(r, "registryPassword", password.reveal());
        const why = policy.sandbox ? undefined : placeholderWeakness(password.reveal());
        if (why) r.problem("registryPassword", `is a well-known placeholder (value not shown: it is a secret): set the token your registry issued, \`pulumi config set --secret ${PROJECT_NAME}:registryPassword <token>\``);
    }
    return username !== undefined && password ? { username, password } : undefined;
}

function checkPorts(r: Reader, host: HostFacts, edgePort: number, localRegistryPort: number | undefined): void {
    const uses: PortUse[] = [];
    if (!r.failed("edgePort")) uses.push({ setting: "edgePort", port: edgePort, what: "the edge", suggestion: "e.g. 8080 behind an existing proxy, or 80/443 to serve directly" });
    if (localRegistryPort !== undefined) uses.push({ setting: "localRegistryPort", port: localRegistryPort, what: "the local registry", suggestion: "e.g. 5000" });
    if (host.sshPort !== undefined) uses.push({ setting: "host", port: host.sshPort, what: "the host's ssh port", fixed: true });
    for (const problem of portProblems(uses)) r.problem(problem.setting, problem.message);
}

export function parseDeployConfig(raw: RawConfig, ctx: ConfigContext): DeployConfig {
    const r = new Reader(raw);

    for (const key of r.unknownKeys()) {
        const known = SETTINGS.map((s) => s.key).filter((k) => k.toLowerCase() === key.toLowerCase());
        r.problem(key, `is not a setting of this project${known.length ? ` (did you mean ${known[0]}?)` : ""}; see the README's configuration reference`);
    }

    const devDefaults = r.boolean("devDefaults", false);
    const host = parseHost(r, ctx);
    const sudo = r.boolean("sudo", host.remote);
    const edge = parseEdge(r, ctx);

    const gaps = sandboxGaps(ctx.stack, host, edge, r.has("publicUrl"));
    const policy: SecretPolicy = { stack: ctx.stack, sandbox: gaps.length === 0 };
    if (devDefaults && gaps.length > 0) {
        r.problem(
            "devDefaults",
            `must be false on stack "${ctx.stack}": its dev-only secrets are published in this repository, so it is allowed only on ${DEV_SANDBOX_RULE}. ` +
                `Here ${gaps.join(", ")}. Remove devDefaults and set real secrets, e.g. \`pulumi config set --secret ${PROJECT_NAME}:jwtSecret "$(openssl rand -hex 32)"\` (likewise cookieSecret and postgresPassword)`,
        );
    }

    const hostStateDir = parseStateDir(r, ctx, host);

    const rawRelease = r.text("release") ?? "auto";
    const release = rawRelease.toLowerCase() === "auto" ? "auto" : rawRelease;
    if (rawRelease !== release) r.problem("release", `must be written \`auto\` (lowercase) to follow the app folder, got "${rawRelease}"`);
    else if (release !== "auto" && !RELEASE.test(release)) {
        r.problem("release", `must be \`auto\` or a name of letters, digits, '.', '_' and '-' (at most 128, usable as an image tag), got "${release}"`);
    }

    const image = parseImageSource(r, ctx, release);
    const daemon = parseDaemon(r, host, image);
    const registryAuth = checkRegistryAuth(r, policy);
    const { postgresPasswordSet, ...services } = parseServices(r, devDefaults, policy);

    const backupClient = services.postgres.kind === "container" || backupsUseClient(r);
    checkImagePins(r, ctx, policy, { edgeImage: edge.image, postgresImage: backupClient ? (services.postgres.kind === "container" ? services.postgres.image : (r.text("postgresImage") ?? "postgres:16")) : undefined, redisImage: services.redis.kind === "container" ? services.redis.image : undefined });
    const edgeUser = parseEdgeUser(r);
    if (!host.remote) checkLocalAccounts(r, image, edgeUser, sudo || (ctx.uid ?? process.getuid?.() ?? -1) === 0);

    const jwt = requiredSecret(r, "jwtSecret", devDefaults, "");
    const cookie = requiredSecret(r, "cookieSecret", devDefaults, "");
    const chosen: Array<[string, string | undefined]> = [
        ["jwtSecret", jwt.set ? jwt.value.reveal() : undefined],
        ["cookieSecret", cookie.set ? cookie.value.reveal() : undefined],
    ];
    for (const [key, value] of chosen) {
        checkLine(r, key, value);
        checkStrength(r, policy, key, value, JWT_LIKE);
    }
    const secrets: Array<[string, string | undefined]> = [...chosen, ["postgresPassword", postgresPasswordSet], ["registryPassword", registryAuth?.password.reveal()]];
    if (!policy.sandbox) {
        for (let i = 0; i < secrets.length; i++) {
            for (let j = 0; j < i; j++) {
                if (secrets[i][1] !== undefined && secrets[i][1] === secrets[j][1]) {
                    r.problem(secrets[i][0], `must differ from ${PROJECT_NAME}:${secrets[j][0]} (value not shown: it is a secret): one leaked value would expose both. Generate each on its own, e.g. \`openssl rand -hex 32\``);
                }
            }
        }
    }

    const env = parseAppEnv(r);
    const app: DeployConfig["app"] = {
        jwtSecret: jwt.value,
        cookieSecret: cookie.value,
        storeCors: parseCors(r, "storeCors", edge.publicUrl),
        adminCors: parseCors(r, "adminCors", edge.publicUrl),
        authCors: parseCors(r, "authCors", edge.publicUrl),
        env,
        secretEnv: secretEnvSetting(r, policy, env),
        healthTimeoutSeconds: r.integer("healthTimeoutSeconds", 30, 3600, " (seconds)") ?? 300,
    };
    const switchWatch = parseSwitchWatch(r);
    const promotion = parsePromotion(r);
    const backup = parseBackup(r, hostStateDir, services);

    const localRegistryPort = r.integer("localRegistryPort", 1, 65535, " (a TCP port)");
    if (localRegistryPort !== undefined && host.remote && !r.failed("localRegistryPort")) r.problem("localRegistryPort", "is only for host `local` (a dev registry on this machine's loopback): remove it, and set registry to a registry the host can reach");
    if (localRegistryPort !== undefined && image.kind === "build" && !r.failed("registry") && !host.remote) {
        const registryHost = image.registry.split("/")[0];
        if (registryHost !== `localhost:${localRegistryPort}` && registryHost !== `127.0.0.1:${localRegistryPort}`) {
            r.problem("registry", `must be in the local registry, e.g. localhost:${localRegistryPort}/medusa-store, when localRegistryPort is ${localRegistryPort} (got "${image.registry}"): otherwise the local registry runs unused and pushes go elsewhere. Or remove localRegistryPort`);
        }
    }
    checkPorts(r, host, edge.port, localRegistryPort);

    if (r.problems.length > 0) throw new ConfigError(ctx.stack, r.problems);
    return {
        stack: ctx.stack,
        host: host.target,
        sudo,
        hostStateDir,
        daemon,
        release,
        image,
        registryAuth,
        services,
        app,
        edge,
        edgeUser: edgeUser ? `${edgeUser.uid}:${edgeUser.gid}` : "70002:70002",
        switchWatch,
        promotion,
        localRegistry: localRegistryPort === undefined ? undefined : { port: localRegistryPort },
        devDefaults,
        backup,
    };
}
