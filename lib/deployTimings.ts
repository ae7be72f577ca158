// Per-phase timings of one `pulumi up`: which phase of a release each resource step belongs to, and
// how long each phase took. Pure: tools/pulumi-stack.ts feeds it the engine's step events with the
// time they arrived (the engine's own timestamps have whole-second resolution).

export type DeployPhase = "build+push" | "pull" | "backup" | "migrate" | "start" | "healthy" | "switch+verify" | "worker";

export const PHASE_ORDER: readonly DeployPhase[] = ["build+push", "pull", "backup", "migrate", "start", "healthy", "switch+verify", "worker"];

export interface StepEvent {
    urn: string;
    /** Resource type token, e.g. `docker:index/container:Container`. */
    type: string;
    /** The engine's step op: create, update, replace, same, delete, create-replacement, … */
    op: string;
    kind: "start" | "end" | "failed";
    /** Milliseconds on any monotonic clock. */
    at: number;
}

export interface DeployTimings {
    /** Wall time of the steps of each phase (overlapping steps counted once), in ms. */
    phases: Partial<Record<DeployPhase, number>>;
    /** First step start to last step end, in ms. */
    totalMs: number;
}

/** The phase of a resource step, from its type and its name (the URN's last segment). */
export function phaseOf(type: string, urn: string): DeployPhase | undefined {
    const name = urn.slice(urn.lastIndexOf("::") + 2);
    if (type === "docker-build:index:Image") return "build+push";
    if (type === "docker:index/remoteImage:RemoteImage" && /^(blue|green)-image$/.test(name)) return "pull";
    if (/^(blue|green)-backup(-retention)?$/.test(name)) return "backup";
    if (/^(blue|green)-migration$/.test(name)) return "migrate";
    if (type === "docker:index/container:Container" && /^(blue|green)-server$/.test(name)) return "start";
    if (/^(blue|green)-health-gate$/.test(name)) return "healthy";
    // The asset map is written right before the switch, as part of it.
    if (name === "traffic-switch" || name === "edge-assets") return "switch+verify";
    if (/^(blue|green)-worker$/.test(name) || name === "stop-worker") return "worker";
    return undefined;
}

/** Steps that do nothing on the host ("same", reads) are left out: they are not part of a deploy's time. */
const IDLE_OPS = new Set(["same", "read", "refresh", "discard"]);

export function deployTimings(events: readonly StepEvent[]): DeployTimings {
    const open = new Map<string, number>();
    const intervals: { phase?: DeployPhase; from: number; to: number }[] = [];
    for (const event of events) {
        if (IDLE_OPS.has(event.op)) continue;
        const key = `${event.urn}\u0000${event.op}`;
        if (event.kind === "start") {
            open.set(key, event.at);
            continue;
        }
        const from = open.get(key);
        if (from === undefined) continue;
        open.delete(key);
        intervals.push({ phase: phaseOf(event.type, event.urn), from, to: event.at });
    }
    const phases: Partial<Record<DeployPhase, number>> = {};
    for (const phase of PHASE_ORDER) {
        const mine = intervals.filter((i) => i.phase === phase);
        if (mine.length > 0) phases[phase] = unionLength(mine);
    }
    const totalMs = intervals.length === 0 ? 0 : Math.max(...intervals.map((i) => i.to)) - Math.min(...intervals.map((i) => i.from));
    return { phases, totalMs };
}

/** Length of the union of intervals: parallel steps of one phase (two images pulled at once) count once. */
function unionLength(intervals: { from: number; to: number }[]): number {
    const sorted = [...intervals].sort((a, b) => a.from - b.from);
    let total = 0;
    let [start, end] = [sorted[0].from, sorted[0].to];
    for (const { from, to } of sorted.slice(1)) {
        if (from > end) {
            total += end - start;
            [start, end] = [from, to];
        } else {
            end = Math.max(end, to);
        }
    }
    return total + (end - start);
}

/** One line for a log: `build+push 41.2s · pull 1.1s · … · total 63.0s`. */
export function describeTimings(timings: DeployTimings): string {
    const parts = PHASE_ORDER.filter((p) => timings.phases[p] !== undefined).map((p) => `${p} ${seconds(timings.phases[p] ?? 0)}`);
    return [...parts, `total ${seconds(timings.totalMs)}`].join(" · ");
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
