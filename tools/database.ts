// The shop's database by hand: a backup now, or a restore of a named backup.
//
//   npm run backup -- --stack <stack> [--cwd DIR]
//   npm run restore -- --stack <stack> --backup <name> [--cwd DIR]
//
// Both read the stack's settings (secrets decrypted by the pinned Pulumi CLI, as `pulumi up` does)
// and run the host scripts on the stack's docker host: directly for host `local`, over ssh with the
// stack's own key and pinned host key otherwise. A restore takes the shop offline while it runs: it
// stops the live colour's worker and server (so nothing writes meanwhile), restores in a single
// transaction, starts the server again and waits until Docker calls it healthy, then starts the
// worker. A failed restore leaves the database as it was and brings the shop back the same way.
import * as path from "node:path";
import { backupEnv, backupTarget } from "../lib/databaseBackup";
import { DeployConfig } from "../lib/deployConfig";
import { healthGateEnv } from "../lib/healthGate";
import { renderHostInvocation } from "../lib/hostInvocation";
import { hostNames } from "../lib/hostNames";
import { OUTPUT_NAMES } from "../lib/previousState";
import { isColour } from "../lib/colour";
import { shellQuote } from "../lib/shellQuote";
import { HostRun, onHost, readStack, script } from "./stackHost";

interface Arguments {
    action: "backup" | "restore";
    stack: string;
    backup?: string;
    cwd: string;
}

const USAGE = "usage: npm run backup -- --stack <stack> | npm run restore -- --stack <stack> --backup <name>";

export function parseArguments(argv: string[]): Arguments {
    const [action, ...rest] = argv;
    if (action !== "backup" && action !== "restore") throw new Error(USAGE);
    const values: Record<string, string> = {};
    for (let i = 0; i < rest.length; i += 2) {
        const flag = rest[i];
        if (!["--stack", "--backup", "--cwd"].includes(flag) || rest[i + 1] === undefined) throw new Error(`unknown or incomplete argument ${JSON.stringify(flag)}; ${USAGE}`);
        values[flag.slice(2)] = rest[i + 1];
    }
    if (!values.stack) throw new Error(`--stack is required: name the stack whose database to ${action === "backup" ? "back up" : "restore"}; ${USAGE}`);
    if (action === "restore" && !values.backup) {
        throw new Error(`--backup is required: name the backup to restore (the stack output lastBackup names the last deploy's: \`pulumi stack output lastBackup --stack ${values.stack}\`); nothing was changed`);
    }
    if (values.backup !== undefined && !/^[A-Za-z0-9._-]+\.dump$/.test(values.backup)) throw new Error(`--backup must be a backup file name such as ${values.stack}-deploy-<release>-<time>.dump, got ${JSON.stringify(values.backup)}`);
    return { action, stack: values.stack, backup: values.backup, cwd: path.resolve(values.cwd ?? path.join(__dirname, "..")) };
}

/** `docker <verb> <container>` on the host, tolerating a container that does not exist. */
function docker(config: DeployConfig, verb: "start" | "stop", container: string): Promise<HostRun> {
    const text = `docker ${verb} "$CONTAINER" >/dev/null 2>&1 || ! docker inspect "$CONTAINER" >/dev/null 2>&1`;
    return onHost(config, renderHostInvocation({ script: text, name: `docker-${verb}`, env: { CONTAINER: container }, sudo: false }));
}

async function backupNow(config: DeployConfig): Promise<number> {
    const names = hostNames(config.stack, config.hostStateDir);
    const target = backupTarget(config, names);
    const env = { ...backupEnv(target, config.backup.dir), BACKUP_NAME_PREFIX: `${config.stack}-manual` };
    const run = await onHost(config, script(config, "backup-database", env, true), `${target.password.reveal()}\n`);
    return run.status;
}

async function restore(config: DeployConfig, outputs: Record<string, unknown>, backup: string): Promise<number> {
    const names = hostNames(config.stack, config.hostStateDir);
    const live = outputs[OUTPUT_NAMES.live];
    if (!isColour(live)) throw new Error(`stack ${config.stack} has no live colour recorded (outputs: ${Object.keys(outputs).join(", ") || "none"}): nothing to restore into; nothing was changed`);
    const target = backupTarget(config, names);
    const env = { ...backupEnv(target, config.backup.dir), BACKUP_NAME: backup };
    const check = await onHost(config, renderHostInvocation({ script: 'test -f "$1" && test ! -L "$1"', name: "backup-exists", env: {}, sudo: config.sudo }) + ` ${shellQuote(path.posix.join(config.backup.dir, backup))}`);
    if (check.status !== 0) throw new Error(`backup ${backup} is not a file in ${config.backup.dir} on the host: nothing was stopped or changed`);

    const server = names.server(live);
    const worker = names.worker(live);
    console.log(`restore: stopping ${worker} and ${server}: the shop is offline until the restore ends`);
    await docker(config, "stop", worker);
    await docker(config, "stop", server);
    const restored = await onHost(config, script(config, "restore-database", env, true), `${target.password.reveal()}\n`);
    console.log(`restore: starting ${server} and waiting until it is healthy`);
    await docker(config, "start", server);
    const gateEnv = { ...healthGateEnv({ container: server, timeoutSeconds: config.app.healthTimeoutSeconds }) };
    const healthy = await onHost(config, script(config, "health-gate", gateEnv, false));
    await docker(config, "start", worker);
    if (restored.status !== 0) {
        console.error(`restore: FAILED (exit ${restored.status}); the database is as it was before, and the ${live} colour ${healthy.status === 0 ? "serves again" : "did NOT become healthy: look at `docker logs " + server + "`"}`);
        return 1;
    }
    if (healthy.status !== 0) {
        console.error(`restore: ${backup} was restored, but ${server} did not become healthy: look at \`docker logs ${server}\``);
        return 1;
    }
    console.log(`restore: ${backup} restored; ${live} serves again`);
    return 0;
}

async function main(): Promise<void> {
    const args = parseArguments(process.argv.slice(2));
    const { config, outputs } = await readStack(args.stack, args.cwd);
    process.exitCode = args.action === "backup" ? await backupNow(config) : await restore(config, outputs, args.backup as string);
}

if (require.main === module) {
    main().catch((error: Error) => {
        console.error(`database: ${error.message}`);
        process.exitCode = 2;
    });
}
