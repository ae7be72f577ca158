// Switch benchmark through a real HAProxy edge under keep-alive load (8 clients, GET and POST, 10%
// slow responses of 200-500 ms), with host/traffic-switch.sh verifying through the edge's operator
// socket as deployed (tests/support/haproxyEdge.ts lays the edge's folders out as on a host):
//   1. N blue/green switches (watch off): failed requests and, per switch, the time from its start
//      until every new request is served by the target;
//   2. targets that fail after the health gate, each case run a few times: failed requests, how long
//      clients saw errors, and the time until traffic was back on the previous colour;
//   3. N healthy switches with the post-switch watch on: how many were wrongly switched back.
//
//   npx ts-node bench/switch.ts [switches=20] [--watch-seconds 3] [--fault-runs 3]
//
// Writes bench/results/switch.md. Needs haproxy, socat and curl (apt-get install -y haproxy socat curl).
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Colour } from "../lib/colour";
import { ColourBackend, startColourBackends } from "../tests/support/colourBackends";
import { HaproxyEdge, SwitchResult, freePort, operatorUrl, parseServerStates, routedColours } from "../tests/support/haproxyEdge";
import { LoadClient, RequestRecord, routingChangeWindow } from "../tests/support/loadClient";

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

interface Options {
    switchCount: number;
    watchSeconds: number;
    faultRuns: number;
}

function parseOptions(argv: string[]): Options {
    const options: Options = { switchCount: Number(process.env.SWITCHES ?? 20), watchSeconds: 3, faultRuns: 3 };
    for (let i = 0; i < argv.length; i++) {
        const flag = argv[i];
        if (flag === "--watch-seconds") options.watchSeconds = Number(argv[++i]);
        else if (flag === "--fault-runs") options.faultRuns = Number(argv[++i]);
        else if (/^[0-9]+$/.test(flag)) options.switchCount = Number(flag);
        else throw new Error(`unknown argument ${flag}: use [switches] [--watch-seconds S] [--fault-runs N]`);
    }
    for (const [name, value] of Object.entries(options)) {
        if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${value}`);
    }
    return options;
}

/** A target that breaks after HAProxy's health gate passed it. */
interface FaultCase {
    name: string;
    /** What the switch is expected to do. */
    expectedExit: number;
    env: (edge: HaproxyEdge) => Record<string, string>;
    /** Before the switch is launched (the fault is there from the start). */
    before?: (green: ColourBackend) => Promise<void>;
    /** Once the switch is watching: the fault starts then. */
    duringWatch?: (green: ColourBackend) => Promise<void>;
}

interface FaultSample {
    exit: number | null;
    lastLine: string;
    failed: number;
    requests: number;
    kinds: string;
    /** Start of the first failed request to the end of the last one. */
    errorsMs: number;
    /** Fault present from the start: script launch to exit. Fault during the watch: fault to exit. */
    revertedMs: number;
    /** From the same moment until every new request was served by blue (client side). */
    backOnBlueMs: number;
}

const FAULT_CASES: FaultCase[] = [
    {
        name: "target process stopped right after a passed check (HAProxy still calls it UP), VERIFY_URL /health",
        expectedExit: 4,
        env: () => ({ VERIFY_TIMEOUT: "30", WATCH_SECONDS: "30" }),
        before: async (green) => {
            await green.nextHealthCheck();
            await green.stop();
        },
    },
    {
        name: "target answers 500 on everything but /health, VERIFY_URL /store/products",
        expectedExit: 4,
        env: () => ({ VERIFY_URL: operatorUrl("/store/products"), VERIFY_TIMEOUT: "30", WATCH_SECONDS: "30" }),
        before: async (green) => {
            green.mode = "broken-app";
        },
    },
    {
        name: "target answers 500 on everything but /health, VERIFY_URL /health (as deployed): the watch",
        expectedExit: 7,
        env: () => ({ VERIFY_TIMEOUT: "30", WATCH_SECONDS: "30" }),
        before: async (green) => {
            green.mode = "broken-app";
        },
    },
    {
        name: "target starts answering 500 (but /health) 1.5 s into the watch",
        expectedExit: 7,
        env: () => ({ WATCH_SECONDS: "30" }),
        duringWatch: async (green) => {
            green.mode = "broken-app";
        },
    },
    {
        name: "target process dies 1.5 s into the watch",
        expectedExit: 7,
        env: () => ({ WATCH_SECONDS: "30" }),
        duringWatch: async (green) => {
            await green.stop();
        },
    },
];

function failureKinds(failures: RequestRecord[]): string {
    const kinds = new Map<string, number>();
    for (const f of failures) kinds.set(f.error ?? "?", (kinds.get(f.error ?? "?") ?? 0) + 1);
    return [...kinds].map(([kind, count]) => `${count} ${kind}`).join(", ") || "none";
}

const lastLine = (result: SwitchResult): string => result.stdout.trimEnd().split("\n").pop() ?? "";

async function routedNow(edge: HaproxyEdge): Promise<Colour[]> {
    return routedColours(await edge.serverStates());
}

/** One run of a fault case, starting and ending with blue live and green healthy. */
async function runFault(edge: HaproxyEdge, green: ColourBackend, fault: FaultCase): Promise<FaultSample> {
    const port = green.port;
    const load = new LoadClient({ baseUrl: edge.baseUrl, workers: 8, slowShare: 0.1, postShare: 0.5 });
    let result: SwitchResult | undefined;
    let from = 0;
    load.start();
    try {
        await sleep(300);
        if (fault.before) await fault.before(green);
        const switching = edge.runSwitch("green", fault.env(edge));
        from = performance.now();
        if (fault.duringWatch) {
            const deadline = Date.now() + 5000;
            const persisted = (): Colour[] => routedColours(parseServerStates(fs.readFileSync(edge.stateFile, "utf8")));
            while ((persisted()[0] !== "green" || (await routedNow(edge))[0] !== "green") && Date.now() < deadline) await sleep(50);
            await sleep(1500);
            from = performance.now();
            await fault.duringWatch(green);
        }
        result = await switching;
        await sleep(300);
    } finally {
        await load.stop();
        if (!green.running) await green.start(port);
        green.mode = "healthy";
    }
    await edge.waitForHealth("green", true, 15_000);
    if ((await routedNow(edge)).join() !== "blue") {
        const back = await edge.runSwitch("blue");
        if (back.code !== 0) throw new Error(`could not put blue back after "${fault.name}": ${back.stderr}`);
    }
    const failures = load.failures;
    return {
        exit: result.code,
        lastLine: lastLine(result),
        failed: failures.length,
        requests: load.records.length,
        kinds: failureKinds(failures),
        errorsMs: failures.length === 0 ? 0 : Math.max(...failures.map((f) => f.endedAt)) - Math.min(...failures.map((f) => f.startedAt)),
        revertedMs: result.endedAt - from,
        backOnBlueMs: routingChangeWindow(load.records, "blue", from, Infinity).firstOnlyTargetMs,
    };
}

interface WatchedSample {
    target: Colour;
    exit: number | null;
    lastLine: string;
    scriptMs: number;
    /** "watched green for 3s: N requests, M failed; it stays live" */
    summary: string;
}

async function main(): Promise<void> {
    const options = parseOptions(process.argv.slice(2));
    const switchCount = options.switchCount;
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
    const watchedLoad = new LoadClient({ baseUrl: edge.baseUrl, workers: 8, slowShare: 0.1, postShare: 0.5 });
    const samples: SwitchSample[] = [];
    const faults: { fault: FaultCase; runs: FaultSample[] }[] = [];
    const watched: WatchedSample[] = [];
    let loadStartedAt = 0;
    let loadStoppedAt = 0;
    let watchedSeconds = 0;
    try {
        await edge.start();
        await edge.waitForHealth("blue", true);
        await edge.waitForHealth("green", true);
        const first = await edge.runSwitch("blue");
        if (first.code !== 0) throw new Error(`initial switch to blue failed: ${first.stderr}`);

        // 1. plain switches, watch off
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
        if ((await routedNow(edge)).join() !== "blue") {
            const back = await edge.runSwitch("blue");
            if (back.code !== 0) throw new Error(`could not put blue back: ${back.stderr}`);
        }

        // 2. targets that fail after the gate
        for (const fault of FAULT_CASES) {
            const entry = { fault, runs: [] as FaultSample[] };
            faults.push(entry);
            for (let i = 0; i < options.faultRuns; i++) {
                const sample = await runFault(edge, backends.green, fault);
                entry.runs.push(sample);
                process.stdout.write(`${fault.name} #${i + 1}: exit ${sample.exit}, ${sample.failed} failed (${sample.kinds}), errors ${sample.errorsMs.toFixed(0)} ms, reverted ${sample.revertedMs.toFixed(0)} ms\n`);
            }
        }

        // 3. healthy switches with the watch on
        watchedLoad.start();
        const watchStartedAt = performance.now();
        await sleep(500);
        for (let i = 0; i < switchCount; i++) {
            const target: Colour = i % 2 === 0 ? "green" : "blue";
            const result = await edge.runSwitch(target, { WATCH_SECONDS: String(options.watchSeconds) });
            const summary = /^watched .*$/m.exec(result.stdout)?.[0] ?? "";
            watched.push({ target, exit: result.code, lastLine: lastLine(result), scriptMs: result.endedAt - result.startedAt, summary });
            process.stdout.write(`watched switch ${i + 1}/${switchCount} -> ${target}: exit ${result.code}, ${(result.endedAt - result.startedAt).toFixed(0)} ms; ${summary || lastLine(result)}\n`);
            if (result.code !== 0 && (await routedNow(edge)).join() !== target) {
                // A false positive switched back: carry on from where the edge is.
                process.stdout.write(`  (switched back: ${result.stderr.trim()})\n`);
            }
        }
        await sleep(600);
        await watchedLoad.stop();
        watchedSeconds = (performance.now() - watchStartedAt) / 1000;
    } finally {
        await load.stop();
        await watchedLoad.stop();
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
    const kinds = [...new Set(failures.map((f) => f.error))].join(", ");
    const ms = (v: number): string => v.toFixed(1);
    const whole = (v: number): string => (Number.isFinite(v) ? v.toFixed(0) : "n/a");
    const range = (values: number[]): string => {
        const s = stats(values);
        return values.length === 1 ? whole(s.min) : `${whole(s.min)} / ${whole(s.median)} / ${whole(s.max)}`;
    };
    const falsePositives = watched.filter((w) => w.exit !== 0);
    const watchedFailures = watchedLoad.failures;
    const faultsAsExpected = faults.every((f) => f.runs.every((r) => r.exit === f.fault.expectedExit));

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
        `- CPUs (nproc): ${firstLine("nproc", [])} (${os.cpus()[0]?.model ?? "unknown model"}); other work was running on the machine (load average at the end: ${os.loadavg().map((l) => l.toFixed(2)).join(", ")})`,
        `- kernel: ${os.release()}`,
        `- node: ${process.version}`,
        `- haproxy: ${firstLine("haproxy", ["-v"])}`,
        `- shell: /bin/sh -> ${fs.realpathSync("/bin/sh")}`,
        `- command: \`npx ts-node bench/switch.ts ${switchCount} --watch-seconds ${options.watchSeconds} --fault-runs ${options.faultRuns}\``,
        "",
        "## 1. Switches (watch off)",
        "",
        `- switches: ${samples.length} (alternating green/blue, 300 ms of load between them), all succeeded`,
        `- requests served: ${records.length - failures.length} over ${seconds.toFixed(1)} s (${records.filter((r) => r.endedAt - r.startedAt >= 200).length} slow)`,
        `- failed requests: ${failures.length}${failures.length > 0 ? ` (${kinds})` : ""}`,
        `- switch start → every new request served by the target (upper bound): min ${ms(routedBy.min)} ms, median ${ms(routedBy.median)} ms, max ${ms(routedBy.max)} ms`,
        `- switch start → last new request served by the old colour (lower bound): min ${ms(routedAfter.min)} ms, median ${ms(routedAfter.median)} ms, max ${ms(routedAfter.max)} ms`,
        `- whole script (lock, health gate, switch, persist, verify 5 responses through the edge's operator socket): min ${ms(script.min)} ms, median ${ms(script.median)} ms, max ${ms(script.max)} ms`,
        "",
        "Measured from the client side by the colour each backend names in its body (the public edge sends no",
        "colour header; the script verifies through the operator socket), relative to the moment the script",
        "was launched. Upper bound: start of the first request from which on every request was served",
        "by the target. Lower bound: start of the last request the old colour served (0 when none started",
        "before routing changed). The real moment lies between them; the gap is the spacing of request starts,",
        "widened when the shared machine stalls the client process. Up to the switch command, the time is the",
        "script starting, taking the lock and reading the edge's state; the rest of the script run is persisting",
        "and verifying through the edge.",
        "",
        "## 2. Targets that fail after the health gate",
        "",
        `Blue live, green healthy by HAProxy's checks, a switch to green; ${options.faultRuns} runs per case, fresh load for each`,
        "(from 300 ms before the switch to 300 ms after it ended). Figures are min / median / max over the runs.",
        "\"Reverted\": from the switch's launch (fault there from the start) or from the fault (fault during the",
        "watch) until the script exited, the revert verified; \"back on blue\": from the same moment until every new",
        "request was served by blue, client side. \"Errors lasted\": first failed request's start to the last one's end.",
        "The cost before this change, measured the same way: 352,132 failed requests over 29.6 s for the stopped",
        "process, 88,964 for the 500s (the verification retried until its deadline; nothing watched afterwards).",
        "",
        "| case | exit (expected) | failed requests | errors lasted (ms) | reverted (ms) | back on blue (ms) | last stdout line |",
        "|---|---|---|---|---|---|---|",
        ...faults.map(({ fault, runs }) =>
            `| ${fault.name} | ${[...new Set(runs.map((r) => r.exit))].join(", ")} (${fault.expectedExit}) | ${runs.map((r) => r.failed).join(", ")} | ${range(runs.map((r) => r.errorsMs))} | ${range(runs.map((r) => r.revertedMs))} | ${range(runs.map((r) => r.backOnBlueMs))} | \`${runs[0]?.lastLine ?? ""}\` |`,
        ),
        "",
        "When the process dies during the watch, the failed requests are the ones in flight at that moment (the",
        "connection is reset under them: no proxy can answer those); their \"errors lasted\" starts when they were",
        "sent, before the fault. Requests sent to a dead process that HAProxy still calls UP wait on its connection",
        "retries (1 s apart) and are redispatched to blue once the switch is reverted, so they succeed, late.",
        "",
        "Kinds of failed requests per case:",
        "",
        ...faults.map(({ fault, runs }) => `- ${fault.name}: ${runs.map((r) => `${r.kinds} (of ${r.requests})`).join("; ")}`),
        "",
        `## 3. Healthy switches with the watch on (WATCH_SECONDS=${options.watchSeconds}, WATCH_MAX_ERROR_RATE and WATCH_MIN_REQUESTS at their defaults 0.05 / 20)`,
        "",
        `- switches: ${watched.length} (alternating green/blue, each watched ${options.watchSeconds} s under the load)`,
        `- wrongly switched back (false positives): ${falsePositives.length}${falsePositives.length > 0 ? ` (${falsePositives.map((w) => `exit ${w.exit}: ${w.lastLine}`).join("; ")})` : ""}`,
        `- requests: ${watchedLoad.records.length} over ${watchedSeconds.toFixed(1)} s, failed: ${watchedFailures.length}${watchedFailures.length > 0 ? ` (${failureKinds(watchedFailures)})` : ""}`,
        `- whole script including the watch: ${range(watched.map((w) => w.scriptMs))} ms (min / median / max)`,
        `- what the watch counted, per switch: ${watched.map((w) => /: (\d+ requests, \d+ failed)/.exec(w.summary)?.[1] ?? w.lastLine).join("; ")}`,
        "",
        "## Per switch (section 1)",
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
    if (failures.length > 0 || falsePositives.length > 0 || watchedFailures.length > 0 || !faultsAsExpected) process.exitCode = 1;
}

main().catch((error: Error) => {
    process.stderr.write(`bench/switch.ts: ${error.message}\n`);
    process.exit(1);
});
