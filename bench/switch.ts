// Switch benchmark: N blue/green switches with host/traffic-switch.sh through a real HAProxy edge
// under keep-alive load (8 clients, GET and POST, 10% slow responses of 200-500 ms). Measures failed
// requests and, per switch, the time from its start until every new request is served by the target.
//
//   npx ts-node bench/switch.ts [switches=20]
//
// Writes bench/results/switch.md. Needs haproxy, socat and curl (apt-get install -y haproxy socat curl).
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {  } from "../lib/haproxyConfig";
import { Colour } from "../lib/colour";
import { startColourBackends } from "../tests/support/colourBackends";
import { HaproxyEdge, freePort } from "../tests/support/haproxyEdge";
import { LoadClient, routingChangeWindow } from "../tests/support/loadClient";

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface SwitchSample {
    target: Colour;
    /** Switch start until the first request from which on every request went to the target (upper bound). */
    routedByMs: number;
    /** Switch start until the last request the old colour answered (lower bound). */
    routedAfterMs: number;
    /** Whole script run: lock, health gate, switch, persist, verification through the edge. */
    scriptMs: number;
    requestsDuring: number;
}

function stats(values: number[]): { min: number; median: number; max: number } {
    const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
    if (sorted.length === 0) return { min: NaN, median: NaN, max: NaN };
    const mid = Math.floor(sorted.length / 2);
    const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    return { min: sorted[0], median, max: sorted[sorted.length - 1] };
}

function firstLine(command: string, args: string[]): string {
    try {
        return execFileSync(command, args, { encoding: "utf8" }).split("\n")[0].trim();
    } catch (error) {
        return `unavailable (${(error as Error).message.split("\n")[0]})`;
    }
}

async function main(): Promise<void> {
    const switchCount = Number(process.argv[2] ?? process.env.SWITCHES ?? 20);
    if (!Number.isInteger(switchCount) || switchCount < 1) throw new Error(`switch count must be a positive integer, got ${process.argv[2]}`);
    for (const tool of ["haproxy", "socat", "curl"]) {
        try {
            execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
        } catch {
            throw new Error(`${tool} is not installed: apt-get install -y haproxy socat curl`);
        }
    }

    const work = path.resolve(__dirname, "../.test-work/bench-switch", String(process.pid));
    fs.mkdirSync(work, { recursive: true });
    const backends = await startColourBackends();
    const edge = new HaproxyEdge(work, await freePort(), {
        blue: { address: backends.blue.address },
        green: { address: backends.green.address },
    });
    const load = new LoadClient({ baseUrl: edge.baseUrl, workers: 8, slowShare: 0.1, postShare: 0.5 });
    const samples: SwitchSample[] = [];
    let loadStartedAt = 0;
    let loadStoppedAt = 0;
    try {
        await edge.start();
        await edge.waitForHealth("blue", true);
        await edge.waitForHealth("green", true);
        const first = await edge.runSwitch("blue");
        if (first.code !== 0) throw new Error(`initial switch to blue failed: ${first.stderr}`);

        load.start();
        loadStartedAt = performance.now();
        await sleep(500);
        const runs: { target: Colour; startedAt: number; endedAt: number }[] = [];
        for (let i = 0; i < switchCount; i++) {
            const target: Colour = i % 2 === 0 ? "green" : "blue";
            const result = await edge.runSwitch(target);
            if (result.code !== 0) throw new Error(`switch ${i + 1} to ${target} failed (exit ${result.code}): ${result.stderr}`);
            runs.push({ target, startedAt: result.startedAt, endedAt: result.endedAt });
            process.stdout.write(`switch ${i + 1}/${switchCount} -> ${target}: ${(result.endedAt - result.startedAt).toFixed(0)} ms\n`);
            await sleep(300);
        }
        await sleep(600);
        await load.stop();
        loadStoppedAt = performance.now();

        runs.forEach((run, i) => {
            const until = runs[i + 1]?.startedAt ?? Infinity;
            const window = routingChangeWindow(load.records, run.target, run.startedAt, until);
            samples.push({
                target: run.target,
                routedByMs: window.firstOnlyTargetMs,
                routedAfterMs: window.lastOtherMs,
                scriptMs: run.endedAt - run.startedAt,
                requestsDuring: load.records.filter((r) => r.startedAt >= run.startedAt && r.startedAt < until).length,
            });
        });
    } finally {
        await load.stop();
        await edge.stop();
        await backends.blue.stop();
        await backends.green.stop();
        fs.rmSync(work, { recursive: true, force: true });
    }

    const records = load.records;
    const failures = load.failures;
    const routedBy = stats(samples.map((s) => s.routedByMs));
    const routedAfter = stats(samples.map((s) => s.routedAfterMs));
    const script = stats(samples.map((s) => s.scriptMs));
    const seconds = (loadStoppedAt - loadStartedAt) / 1000;
    const failureKinds = [...new Set(failures.map((f) => f.error))].join(", ");
    const ms = (v: number): string => v.toFixed(1);

    const report = [
        "# Traffic switch benchmark",
        "",
        "`npx ts-node bench/switch.ts` — host/traffic-switch.sh switching a real HAProxy edge (config from",
        "lib/haproxyConfig.ts, runtime API `set server … state ready|drain`, no reload) between two real HTTP",
        "backends on loopback, under continuous load: 8 keep-alive clients, half GET half POST (JSON body),",
        "10% of responses delayed 200-500 ms.",
        "",
        "## Machine",
        "",
        `- date: ${new Date().toISOString()}`,
        `- CPUs (nproc): ${firstLine("nproc", [])} (${os.cpus()[0]?.model ?? "unknown model"}); other work was running on the machine`,
        `- kernel: ${os.release()}`,
        `- node: ${process.version}`,
        `- haproxy: ${firstLine("haproxy", ["-v"])}`,
        `- shell: /bin/sh -> ${fs.realpathSync("/bin/sh")}`,
        "",
        "## Result",
        "",
        `- switches: ${samples.length} (alternating green/blue, 300 ms of load between them), all succeeded`,
        `- requests served: ${records.length - failures.length} over ${seconds.toFixed(1)} s (${records.filter((r) => r.endedAt - r.startedAt >= 200).length} slow)`,
        `- failed requests: ${failures.length}${failures.length > 0 ? ` (${failureKinds})` : ""}`,
        `- switch start → every new request served by the target (upper bound): min ${ms(routedBy.min)} ms, median ${ms(routedBy.median)} ms, max ${ms(routedBy.max)} ms`,
        `- switch start → last new request served by the old colour (lower bound): min ${ms(routedAfter.min)} ms, median ${ms(routedAfter.median)} ms, max ${ms(routedAfter.max)} ms`,
        `- whole script (lock, health gate, switch, persist, verify 5 responses through the edge): min ${ms(script.min)} ms, median ${ms(script.median)} ms, max ${ms(script.max)} ms`,
        "",
        "Measured from the client side with the edge's X-Medusa-Colour header, relative to the moment the",
        "script was launched. Upper bound: start of the first request from which on every request was served",
        "by the target. Lower bound: start of the last request the old colour served (0 when none started",
        "before routing changed). The real moment lies between them; the gap is the spacing of request starts,",
        "widened when the shared machine stalls the client process. Up to the switch command, the time is the",
        "script starting, taking the lock and reading the edge's state; the rest of the script run is persisting",
        "and verifying through the edge.",
        "",
        "## Per switch",
        "",
        "| # | target | all new requests on target by (ms) | last on old colour (ms) | script (ms) | requests started until next switch |",
        "|---|---|---|---|---|---|",
        ...samples.map((s, i) => `| ${i + 1} | ${s.target} | ${ms(s.routedByMs)} | ${ms(s.routedAfterMs)} | ${ms(s.scriptMs)} | ${s.requestsDuring} |`),
        "",
    ].join("\n");
    const out = path.resolve(__dirname, "results/switch.md");
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, report);
    process.stdout.write(`\n${report}\nwritten to ${path.relative(process.cwd(), out)}\n`);
    if (failures.length > 0) process.exitCode = 1;
}

main().catch((error: Error) => {
    process.stderr.write(`bench/switch.ts: ${error.message}\n`);
    process.exit(1);
});
