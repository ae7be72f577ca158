// What a stack is running, at a glance:
//
//   npm run status -- --stack <stack> [--json] [--cwd DIR]
//
// The live colour; each colour's release, image digest and source (the stack's outputs), its server
// and worker containers' state, health and uptime (docker inspect on the host); the edge's state of
// each colour's server with its request and error counters (HAProxy's show stat); the services; the
// last deploy backup. Exit 0 when the live colour is healthy and the edge sends it traffic, 1 when
// not (each problem is listed), 2 when the stack or its host cannot be read: monitoring can run it.
import * as path from "node:path";
import { edgeControlFiles, parseMaintenanceMap } from "../lib/edgeControls";
import { EDGE_BACKEND_NAME } from "../lib/haproxyConfig";
import { hostNames } from "../lib/hostNames";
import { InspectedContainer, parseEdgeStats, renderStatus, stackStatus, statusContainers } from "../lib/stackStatus";
import { onHost, readStack, script } from "./stackHost";

const USAGE = "usage: npm run status -- --stack <stack> [--json]";

export function parseStatusArguments(argv: string[]): { stack: string; json: boolean; cwd: string } {
    let stack: string | undefined;
    let json = false;
    let cwd = path.join(__dirname, "..");
    for (let i = 0; i < argv.length; i++) {
        const flag = argv[i];
        if (flag === "--json") json = true;
        else if ((flag === "--stack" || flag === "--cwd") && argv[i + 1] !== undefined) {
            if (flag === "--stack") stack = argv[++i];
            else cwd = path.resolve(argv[++i]);
        } else throw new Error(`unknown or incomplete argument ${JSON.stringify(flag)}; ${USAGE}`);
    }
    if (!stack) throw new Error(`--stack is required; ${USAGE}`);
    return { stack, json, cwd };
}

/** Splits stack-status.sh's output into its sections: the inspect JSON, the stat CSV, the edge's maps. */
export function splitHostReport(stdout: string): { inspected: InspectedContainer[]; statCsv: string; maintenanceMap?: string; previewColours?: string[] } {
    const sections = new Map<string, string>();
    let current: string | undefined;
    for (const line of stdout.split("\n")) {
        const heading = /^--- (inspect|stat|maintenance|preview)$/.exec(line);
        if (heading) sections.set((current = heading[1]), "");
        else if (current !== undefined) sections.set(current, `${sections.get(current)}${line}\n`);
    }
    const inspect = sections.get("inspect");
    const statCsv = sections.get("stat");
    if (inspect === undefined || statCsv === undefined) throw new Error(`stack-status printed no report: ${JSON.stringify(stdout.slice(0, 200))}`);
    const preview = sections.get("preview");
    return {
        inspected: JSON.parse(inspect) as InspectedContainer[],
        statCsv,
        maintenanceMap: sections.get("maintenance"),
        previewColours: preview === undefined ? undefined : preview.split("\n").filter((c) => c !== ""),
    };
}

async function main(): Promise<void> {
    const args = parseStatusArguments(process.argv.slice(2));
    const { config, outputs } = await readStack(args.stack, args.cwd);
    const names = hostNames(config.stack, config.hostStateDir);
    const controls = edgeControlFiles(names.edgeMountPoint);
    const env = {
        CONTAINERS: statusContainers(names).join(" "),
        EDGE_ADMIN_SOCKET: names.adminSocket,
        EDGE_BACKEND: EDGE_BACKEND_NAME,
        EDGE_MAINTENANCE_MAP: controls.maintenanceMap,
        EDGE_PREVIEW_MAP: controls.previewMap,
    };
    const run = await onHost(config, script(config, "stack-status", env, true), undefined, { quiet: true });
    if (run.status !== 0) throw new Error(`stack-status failed on the host (exit ${run.status})`);
    const report = splitHostReport(run.stdout);
    const status = stackStatus({
        stack: config.stack,
        names,
        outputs,
        inspected: report.inspected,
        edgeStats: parseEdgeStats(report.statCsv, EDGE_BACKEND_NAME),
        edgeControls: report.maintenanceMap === undefined ? undefined : { maintenance: parseMaintenanceMap(report.maintenanceMap), previewColours: report.previewColours ?? [] },
        now: new Date(),
    });
    console.log(args.json ? JSON.stringify(status, null, 2) : renderStatus(status));
    process.exitCode = status.problems.length === 0 ? 0 : 1;
}

if (require.main === module) {
    main().catch((error: Error) => {
        console.error(`status: ${error.message}`);
        process.exitCode = 2;
    });
}
