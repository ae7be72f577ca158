// Settings changes that restart a shared service. The edge, Postgres and Redis run one container
// each, and almost any change of a container's inputs replaces it; the docker provider deletes the
// running container before it creates the new one, so the shop is down meanwhile (the edge: no
// requests answered; Postgres/Redis: every colour loses its database). A deploy therefore refuses
// such a change unless the operator asks for it for that one run (MEDUSA_DEPLOY_ALLOW_RESTART), and
// a preview fails with the same message, so the change is unmistakable before anything happens.
//
// Each deploy records, in the stack output `services`, the settings that shape each service's
// container; the next deploy compares.
import { DeployConfig } from "./deployConfig";
import { HostNames } from "./hostNames";

export const SERVICES = ["edge", "postgres", "redis"] as const;
export type Service = (typeof SERVICES)[number];
/** Per service: the settings its container is made from, as `setting=value` words (no secrets). */
export type ServiceSettings = Partial<Record<Service, string>>;

export const ALLOW_RESTART_VARIABLE = "MEDUSA_DEPLOY_ALLOW_RESTART";

/** /dev/shm of the Postgres container, in MB: room for parallel queries' shared memory (Docker's default is 64). */
export const POSTGRES_SHM_SIZE_MB = 256;

export class ServiceRestartError extends Error {}

export function serviceSettings(config: DeployConfig, names: HostNames): ServiceSettings {
    const settings: ServiceSettings = {
        // edgeSandbox and redisAuth name how medusa-deploy itself shapes the container: a stack
        // deployed before the edge ran as non-root with a read-only config, or before Redis had a
        // password, sees them change and is asked before its edge or Redis restarts.
        edge: words({
            edgeImage: config.edge.image,
            edgeAddress: config.edge.address,
            edgePort: String(config.edge.port),
            hostStateDir: names.edgeDir,
            edgeUser: config.edgeUser,
            edgeSandbox: "non-root,read-only-config",
        }),
    };
    const { postgres, redis } = config.services;
    if (postgres.kind === "container") settings.postgres = words({ postgresImage: postgres.image, postgresShm: `${POSTGRES_SHM_SIZE_MB}m` });
    if (redis.kind === "container") settings.redis = words({ redisImage: redis.image, redisAuth: "password-file" });
    return settings;
}

function words(values: Record<string, string>): string {
    return Object.entries(values)
        .map(([key, value]) => `${key}=${value}`)
        .join(" ");
}

/** The recorded `services` output (absent before this was recorded: nothing to compare). */
export function parseRecordedServices(stack: string, raw: unknown): ServiceSettings {
    if (raw === undefined || raw === null) return {};
    const ok =
        typeof raw === "object" &&
        !Array.isArray(raw) &&
        Object.entries(raw as Record<string, unknown>).every(([k, v]) => (SERVICES as readonly string[]).includes(k) && typeof v === "string");
    if (!ok) {
        throw new ServiceRestartError(`stack "${stack}" output "services" must map ${SERVICES.join(", ")} to strings, got ${JSON.stringify(raw)}. Inspect it with \`pulumi stack output --json\`.`);
    }
    return raw as ServiceSettings;
}

export interface ServiceRestart {
    service: Service;
    /** The settings that differ, as `setting: old → new`. */
    changes: string[];
}

/** Services whose container this deploy would replace (running before, running after, settings differ). */
export function restartsOf(recorded: ServiceSettings, next: ServiceSettings): ServiceRestart[] {
    const restarts: ServiceRestart[] = [];
    for (const service of SERVICES) {
        const before = recorded[service];
        const after = next[service];
        if (before === undefined || after === undefined || before === after) continue;
        const old = parseWords(before);
        const now = parseWords(after);
        const keys = [...new Set([...Object.keys(old), ...Object.keys(now)])];
        restarts.push({ service, changes: keys.filter((k) => old[k] !== now[k]).map((k) => `${k} ${old[k] ?? "(unset)"} → ${now[k] ?? "(unset)"}`) });
    }
    return restarts;
}

function parseWords(text: string): Record<string, string> {
    return Object.fromEntries(text.split(" ").filter(Boolean).map((word) => [word.slice(0, word.indexOf("=")), word.slice(word.indexOf("=") + 1)]));
}

/** The services MEDUSA_DEPLOY_ALLOW_RESTART names (`edge,postgres`, or `all`). */
export function parseAllowedRestarts(value: string | undefined): Set<Service> {
    if (!value || !value.trim()) return new Set();
    const names = value.split(/[\s,]+/).filter(Boolean);
    if (names.includes("all")) return new Set(SERVICES);
    const unknown = names.filter((n) => !(SERVICES as readonly string[]).includes(n));
    if (unknown.length > 0) {
        throw new ServiceRestartError(`${ALLOW_RESTART_VARIABLE} names ${unknown.join(", ")}: use a comma-separated list of ${SERVICES.join(", ")}, or all. Nothing was changed.`);
    }
    return new Set(names as Service[]);
}

const IMPACT: Record<Service, string> = {
    edge: "the shop answers no request from the moment the running edge is deleted until the new one listens",
    postgres: "every colour loses its database connection until the new container is healthy (the data volume is kept)",
    redis: "sessions, the event bus and locks are unavailable until the new container runs (the data volume is kept)",
};

/** Throws, naming each service, what changed and the way to do it, unless every restart is allowed. */
export function refuseUnannouncedRestarts(restarts: ServiceRestart[], allowed: ReadonlySet<Service>): void {
    const refused = restarts.filter((r) => !allowed.has(r.service));
    if (refused.length === 0) return;
    const lines = refused.map((r) => `  - ${r.service}: ${r.changes.join(", ")}: its container is replaced, and the running one is deleted first: ${IMPACT[r.service]}.`);
    throw new ServiceRestartError(
        [
            `this deploy would restart ${refused.map((r) => r.service).join(" and ")}, which interrupts the shop:`,
            ...lines,
            `Nothing was changed. To do it, choose a quiet moment and run that one deploy with ${ALLOW_RESTART_VARIABLE}=${refused.map((r) => r.service).join(",")} ` +
                `(e.g. ${ALLOW_RESTART_VARIABLE}=${refused.map((r) => r.service).join(",")} npm run up); or set the settings back.`,
        ].join("\n"),
    );
}
