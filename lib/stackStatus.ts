// What `npm run status` reports: the stack's outputs (what the last deploy put where) joined with
// what the host says now (docker inspect of the stack's containers, the edge's `show stat`). Pure:
// tools/status.ts gathers the inputs on the host and prints the result.
import { Colour, COLOURS, isColour } from "./colour";
import { MaintenanceMode } from "./edgeControls";
import { HostNames } from "./hostNames";

/** The parts of `docker inspect` read here. */
export interface InspectedContainer {
    Name: string;
    State: { Status: string; StartedAt: string; Health?: { Status: string } };
    Config: { Image: string };
}

export interface ContainerStatus {
    name: string;
    /** running, exited, … or missing. */
    state: string;
    /** healthy, unhealthy, starting, or none (no health check). */
    health: string;
    /** Seconds since it started, when running. */
    uptimeSeconds?: number;
    image?: string;
}

export interface EdgeServerStatus {
    /** HAProxy's status: UP, DOWN, MAINT, DRAIN, … */
    status: string;
    check: string;
    /** Requests sent to it since the edge started. */
    requests: number;
    /** 5xx answers, connection and response errors. */
    errors: number;
}

export interface ColourStatus {
    colour: Colour;
    live: boolean;
    release?: string;
    image?: string;
    source?: string;
    server: ContainerStatus;
    worker: ContainerStatus;
    edge?: EdgeServerStatus;
}

export interface StackStatus {
    stack: string;
    url?: string;
    live?: Colour;
    /** Manual promotion: the colour staged with the new release, waiting for `npm run switch`. */
    awaitingSwitch?: Colour;
    colours: ColourStatus[];
    services: ContainerStatus[];
    lastBackup?: unknown;
    /** The edge's maintenance mode and preview routes (npm run maintenance, edge-preview); absent when not read. */
    edgeControls?: EdgeControlState;
    /** Why the stack is not serving as deployed, empty when it is. */
    problems: string[];
}

export interface EdgeControlState {
    maintenance: { mode: MaintenanceMode; holdSeconds: number };
    /** The colour each preview cookie reaches (the cookie itself is never read). */
    previewColours: string[];
}

/** The containers `npm run status` looks at, colours first. */
export function statusContainers(names: HostNames): string[] {
    return [...COLOURS.flatMap((c) => [names.server(c), names.worker(c)]), names.edge, names.postgres, names.redis, names.dailyBackup, names.registry];
}

function containerStatus(name: string, inspected: ReadonlyMap<string, InspectedContainer>, now: Date): ContainerStatus {
    const found = inspected.get(name);
    if (!found) return { name, state: "missing", health: "none" };
    const started = Date.parse(found.State.StartedAt);
    const running = found.State.Status === "running";
    return {
        name,
        state: found.State.Status,
        health: found.State.Health?.Status ?? "none",
        ...(running && Number.isFinite(started) ? { uptimeSeconds: Math.max(0, Math.round((now.getTime() - started) / 1000)) } : {}),
        image: found.Config.Image,
    };
}

/** Rows of `show stat` for the edge's backend, by server name; columns found by the header's names. */
export function parseEdgeStats(csv: string, backend: string): Map<string, EdgeServerStatus> {
    const lines = csv.split("\n").map((l) => l.trim()).filter((l) => l !== "");
    const header = lines.find((l) => l.startsWith("# "));
    const result = new Map<string, EdgeServerStatus>();
    if (!header) return result;
    const columns = header.slice(2).split(",");
    const at = (row: string[], name: string) => row[columns.indexOf(name)] ?? "";
    const number = (row: string[], name: string) => Number(at(row, name)) || 0;
    for (const line of lines) {
        if (line.startsWith("#")) continue;
        const row = line.split(",");
        if (row[0] !== backend || row[1] === "BACKEND" || row[1] === "FRONTEND") continue;
        result.set(row[1], {
            status: at(row, "status") || "-",
            check: at(row, "check_status").replace(/^\* /, "") || "-",
            requests: number(row, "stot"),
            errors: number(row, "hrsp_5xx") + number(row, "econ") + number(row, "eresp"),
        });
    }
    return result;
}

interface DeployedOutput {
    release?: string;
    image?: string;
    source?: string;
}

export function stackStatus(input: {
    stack: string;
    names: HostNames;
    outputs: Record<string, unknown>;
    inspected: InspectedContainer[];
    edgeStats: Map<string, EdgeServerStatus>;
    edgeControls?: EdgeControlState;
    now: Date;
}): StackStatus {
    const byName = new Map(input.inspected.map((c) => [c.Name.replace(/^\//, ""), c]));
    const live = isColour(input.outputs.live) ? input.outputs.live : undefined;
    const problems: string[] = [];
    if (!live) problems.push(`stack ${input.stack} has no live colour in its outputs: it was never deployed, or its last deploy failed before traffic moved`);
    const colours: ColourStatus[] = [];
    for (const colour of COLOURS) {
        const deployed = input.outputs[colour] as DeployedOutput | undefined;
        const server = containerStatus(input.names.server(colour), byName, input.now);
        const worker = containerStatus(input.names.worker(colour), byName, input.now);
        if (!deployed && server.state === "missing" && worker.state === "missing") continue;
        const edge = input.edgeStats.get(colour);
        colours.push({ colour, live: colour === live, release: deployed?.release, image: deployed?.image, source: deployed?.source, server, worker, edge });
        if (colour !== live) continue;
        if (server.state !== "running") problems.push(`the live colour's server ${server.name} is ${server.state}`);
        else if (server.health !== "healthy") problems.push(`the live colour's server ${server.name} is ${server.health}`);
        if (worker.state !== "running") problems.push(`the live colour's worker ${worker.name} is ${worker.state}`);
        if (!edge) problems.push(`the edge does not answer, or has no server ${colour}`);
        else if (!/^UP/.test(edge.status)) problems.push(`the edge sees the live colour's server as ${edge.status} (last check ${edge.check})`);
    }
    const services = [input.names.edge, input.names.postgres, input.names.redis, input.names.dailyBackup, input.names.registry]
        .map((name) => containerStatus(name, byName, input.now))
        .filter((s) => s.state !== "missing" || s.name === input.names.edge);
    for (const service of services) {
        if (service.state !== "running") problems.push(`${service.name} is ${service.state}`);
        else if (service.health === "unhealthy") problems.push(`${service.name} is unhealthy${service.name === input.names.dailyBackup ? " (its last backup failed: docker logs " + service.name + ")" : ""}`);
    }
    // Maintenance is a choice, but the shop is not serving its visitors meanwhile: a monitor should say so.
    const maintenance = input.edgeControls?.maintenance.mode;
    if (maintenance === "page") problems.push("maintenance mode is on: visitors get the maintenance page (npm run maintenance -- --stack " + input.stack + " off)");
    if (maintenance === "hold") problems.push("maintenance hold is on: visitors' requests wait, then get the maintenance page (npm run maintenance -- --stack " + input.stack + " off)");
    return {
        stack: input.stack,
        url: typeof input.outputs.url === "string" ? input.outputs.url : undefined,
        live,
        ...(isColour(input.outputs.awaitingSwitch) ? { awaitingSwitch: input.outputs.awaitingSwitch } : {}),
        colours,
        services,
        lastBackup: input.outputs.lastBackup,
        edgeControls: input.edgeControls,
        problems,
    };
}

function duration(seconds: number | undefined): string {
    if (seconds === undefined) return "-";
    if (seconds < 120) return `${seconds}s`;
    if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
    if (seconds < 172800) return `${Math.floor(seconds / 3600)}h`;
    return `${Math.floor(seconds / 86400)}d`;
}

function containerLine(c: ContainerStatus): string {
    return `${c.name}: ${c.state}${c.health !== "none" ? `, ${c.health}` : ""}${c.uptimeSeconds !== undefined ? `, up ${duration(c.uptimeSeconds)}` : ""}`;
}

/** The report as an operator reads it. */
export function renderStatus(status: StackStatus): string {
    const lines = [`stack ${status.stack}${status.url ? ` at ${status.url}` : ""}: live ${status.live ?? "none"}`];
    if (status.awaitingSwitch) lines.push(`staged: ${status.awaitingSwitch} waits for \`npm run switch -- --stack ${status.stack}\` (look first: npm run edge-preview -- --stack ${status.stack})`);
    for (const c of status.colours) {
        lines.push(`${c.colour}${c.live ? " (live)" : ""}: release ${c.release ?? "-"}${c.source ? ` (${c.source})` : ""}`);
        if (c.image) lines.push(`  image  ${c.image}`);
        lines.push(`  ${containerLine(c.server)}`, `  ${containerLine(c.worker)}`);
        lines.push(`  edge   ${c.edge ? `${c.edge.status}, check ${c.edge.check}, ${c.edge.requests} requests, ${c.edge.errors} errors` : "no server in the edge"}`);
    }
    for (const s of status.services) lines.push(containerLine(s));
    if (status.lastBackup) lines.push(`last deploy backup: ${JSON.stringify(status.lastBackup)}`);
    if (status.edgeControls) {
        const { maintenance, previewColours } = status.edgeControls;
        const mode = maintenance.mode === "hold" ? `hold (up to ${maintenance.holdSeconds} s)` : maintenance.mode;
        lines.push(`maintenance: ${mode}; preview: ${previewColours.length === 0 ? "off" : `cookie to ${previewColours.join(", ")}`}`);
    }
    lines.push(status.problems.length === 0 ? "ok: the live colour is healthy and the edge sends it traffic" : `PROBLEMS:\n${status.problems.map((p) => `  - ${p}`).join("\n")}`);
    return lines.join("\n");
}
