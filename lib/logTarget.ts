// Which container `npm run logs` reads: a role of the stack, and for a colour's roles the colour
// (the live one by default). Pure.
import { Colour, isColour } from "./colour";
import { HostNames } from "./hostNames";

export const LOG_ROLES = ["server", "worker", "edge", "postgres", "redis", "daily-backup", "migration"] as const;
export type LogRole = (typeof LOG_ROLES)[number];

export function isLogRole(value: string): value is LogRole {
    return (LOG_ROLES as readonly string[]).includes(value);
}

export function logContainer(names: HostNames, role: LogRole, colour: Colour | undefined, live: unknown): string {
    switch (role) {
        case "edge":
            return names.edge;
        case "postgres":
            return names.postgres;
        case "redis":
            return names.redis;
        case "daily-backup":
            return names.dailyBackup;
        case "migration":
            // host/run-migration.sh runs it with --rm: its output lives in the deploy's log.
            throw new Error("a migration's container is removed when it ends: its output is in the `pulumi up` output of that deploy (npm run up / the CI job's log), with secrets masked");
        case "server":
        case "worker": {
            const which = colour ?? (isColour(live) ? live : undefined);
            if (!which) throw new Error(`the stack has no live colour recorded: name one with --colour blue|green`);
            return role === "server" ? names.server(which) : names.worker(which);
        }
    }
}
