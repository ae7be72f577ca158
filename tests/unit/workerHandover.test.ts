// The worker handover: which worker each plan stops, and where the stop sits in the graph (after the
// traffic switch, before the live colour's worker), under Pulumi mocks. host/stop-worker.sh itself
// runs against a real dockerd in tests/host/stopWorker.test.ts.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as pulumi from "@pulumi/pulumi";
import { hostScript } from "../../components/hostScripts";
import { renderHostInvocation } from "../../lib/hostInvocation";
import { hostNames } from "../../lib/hostNames";
import { PreviousState, planRelease } from "../../lib/releasePlan";
import { planWorkerHandover, stopWorkerEnv, WORKER_DRAIN_SECONDS } from "../../lib/workerHandover";
import { ProgramRun, hostCommandStdin, runProgram, valueOf } from "../support/pulumiProgram";
import { DEV, dependsOnNames, imageA, imageB, release, stackConfig } from "./testStacks";




/** The NAME=value words before `sh -c` of a rendered host invocation. */
function assignments(create: unknown): Record<string, string> {
    const words = String(create).split(" sh -c ")[0].split(" ").filter((w) => w.includes("="));
    return Object.fromEntries(words.map((w) => [w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1).replace(/^'|'$/g, "")]));
}

const workers = (run: ProgramRun) =>
    run
        .ofType("docker:index/container:Container")
        .map((r) => r.name)
        .filter((n) => n.endsWith("-worker"))
        .sort();

describe("worker handover: what each plan stops (pure)", () => {
    const names = hostNames("prod", "/var/lib/medusa-deploy/prod");
    const both: PreviousState = { live: "blue", colours: { blue: { release: "A", image: imageA }, green: { release: "B", image: imageB } } };

    const cases: Array<{ title: string; previous?: PreviousState; wanted: string; from: string; to: string; release: string; switching: boolean }> = [
        { title: "first deploy: the other colour has no worker yet; blue's starts", wanted: "A", from: "green", to: "blue", release: "A", switching: true },
        { title: "deploy to the idle colour: the live colour's worker stops", previous: { live: "blue", colours: { blue: { release: "A", image: imageA } } }, wanted: "B", from: "blue", to: "green", release: "B", switching: true },
        { title: "switch back: the same in reverse", previous: { ...both, live: "green" }, wanted: "A", from: "green", to: "blue", release: "A", switching: true },
        { title: "unchanged: declared as the deploy that made blue live did, not switching", previous: both, wanted: "A", from: "green", to: "blue", release: "A", switching: false },
    ];
    for (const c of cases) {
        it(c.title, () => {
            const handover = planWorkerHandover(planRelease(c.previous, c.wanted));
            assert.deepEqual(handover, { from: c.from, to: c.to, release: c.release, switching: c.switching });
        });
    }

    it("the script's environment: the worker to stop, the one that follows, the drain", () => {
        const handover = planWorkerHandover(planRelease({ live: "blue", colours: { blue: { release: "A", image: imageA } } }, "B"));
        assert.deepEqual(stopWorkerEnv({ handover, names }), {
            WORKER_NAME: "medusa-prod-blue-worker",
            NEXT_WORKER: "medusa-prod-green-worker",
            WORKER_DRAIN_SECONDS: String(WORKER_DRAIN_SECONDS),
        });
        assert.equal(stopWorkerEnv({ handover, names, drainSeconds: 0 }).WORKER_DRAIN_SECONDS, "0", "0: SIGKILL right after SIGTERM");
        for (const bad of [-1, 1.5, 3601, Number.NaN]) {
            assert.throws(() => stopWorkerEnv({ handover, names, drainSeconds: bad }), /drainSeconds .* is invalid: expected a whole number of seconds from 0 to 3600/);
        }
    });
});

describe("worker handover under Pulumi mocks", function () {
    this.timeout(60000);

    it("first deploy: blue's worker waits for the switch and a handover that finds no green worker", async () => {
        const run = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "A" });
        const stop = run.named("stop-worker");
        assert.equal(stop.type, "command:local:Command");
        const env = assignments(stop.inputs.create);
        assert.equal(env.WORKER_NAME, "medusa-dev-green-worker", "nothing runs there yet: the script reports it absent");
        assert.equal(env.NEXT_WORKER, "medusa-dev-blue-worker");
        assert.deepEqual(await dependsOnNames(stop), ["switch"]);
        const worker = run.named("blue-worker");
        assert.deepEqual(await dependsOnNames(worker), ["switch", "worker-handover"]);
        assert.deepEqual(workers(run), ["blue-worker"]);
    });

    it("deploy to the idle colour: stop blue's worker after the switch, then start green's; blue's worker is no longer declared", async () => {
        const previous = { live: "blue", blue: { release: "A", image: imageA } };
        const run = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "B", stackOutputs: { [DEV]: previous } });
        const stop = run.named("stop-worker");
        const env = assignments(stop.inputs.create);
        assert.equal(env.WORKER_NAME, "medusa-dev-blue-worker");
        assert.equal(env.NEXT_WORKER, "medusa-dev-green-worker");
        assert.equal(env.WORKER_DRAIN_SECONDS, "30");
        assert.match(hostCommandStdin(stop).script, /^#!\/bin\/sh\n# stop-worker\.sh/, "the script's text goes on stdin");
        assert.doesNotMatch(String(stop.inputs.create), /^sudo/);
        // The switch is the handover's dependency, so a failed switch never stops anything.
        assert.deepEqual(await dependsOnNames(stop), ["switch"]);
        assert.deepEqual((stop.inputs.triggers as unknown[]).slice(1), ["green", "B", "green-server-id"]);
        assert.deepEqual(stop.opts.ignoreChanges, []);
        // The new worker waits for the stop; the old one is left to the engine to delete (it stopped already).
        const worker = run.named("green-worker");
        assert.deepEqual(await dependsOnNames(worker), ["switch", "worker-handover"]);
        assert.deepEqual(workers(run), ["green-worker"], "blue-worker is not declared: the engine removes the stopped container at the end of up");
        assert.equal(worker.opts.deleteBeforeReplace, true, "a replaced worker stops before its successor starts");
        assert.equal(await valueOf(worker.opts.replacementTrigger as pulumi.Input<string>), "stop-worker-id", "the worker's generation is the handover's run");
        assert.equal(run.outputs.live, "green");
    });

    it("switch back (rollback): stop green's worker, then start blue's", async () => {
        const previous = { live: "green", blue: { release: "A", image: imageA }, green: { release: "B", image: imageB } };
        const run = await runProgram({ stack: "dev", config: stackConfig("dev", release("A")), appRelease: "B", stackOutputs: { [DEV]: previous } });
        const stop = run.named("stop-worker");
        assert.equal(assignments(stop.inputs.create).WORKER_NAME, "medusa-dev-green-worker");
        assert.deepEqual((stop.inputs.triggers as unknown[]).slice(1), ["blue", "A", "blue-server-id"]);
        assert.deepEqual(await dependsOnNames(stop), ["switch"]);
        assert.deepEqual(await dependsOnNames(run.named("blue-worker")), ["switch", "worker-handover"]);
        assert.deepEqual(workers(run), ["blue-worker"]);
        assert.equal(run.outputs.live, "blue");
    });

    it("unchanged: the handover is declared exactly as the deploy that made the colour live left it, so nothing runs", async () => {
        const first = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "A" });
        const deploy = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "B", stackOutputs: { [DEV]: first.outputs } });
        const again = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "B", stackOutputs: { [DEV]: deploy.outputs } });
        assert.equal(again.outputs.live, "green");
        const before = deploy.named("stop-worker");
        const now = again.named("stop-worker");
        assert.equal(now.inputs.create, before.inputs.create);
        assert.deepEqual(now.inputs.triggers, before.inputs.triggers);
        // Only a new script text alone is ignored there: replacing the command would restart the live worker.
        assert.deepEqual(now.opts.ignoreChanges, ["triggers[0]"]);
        assert.deepEqual(await dependsOnNames(again.named("green-worker")), ["switch", "worker-handover"]);

        // Also right after the first deploy (one colour only): same as the first deploy declared.
        const firstAgain = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "A", stackOutputs: { [DEV]: first.outputs } });
        assert.equal(firstAgain.named("stop-worker").inputs.create, first.named("stop-worker").inputs.create);
        assert.deepEqual(firstAgain.named("stop-worker").inputs.triggers, first.named("stop-worker").inputs.triggers);
    });

    it("every switch runs the handover again: its triggers differ from one deploy to the next", async () => {
        const steps: Array<{ release?: string; tree: string; stops: string }> = [
            { tree: "A", stops: "green" },
            { tree: "B", stops: "blue" },
            { tree: "C", stops: "green" },
            { release: "B", tree: "C", stops: "blue" },
            { release: "C", tree: "C", stops: "green" },
        ];
        let previous: Record<string, unknown> | undefined;
        let lastTriggers: unknown;
        for (const step of steps) {
            const run = await runProgram({ stack: "dev", config: stackConfig("dev", step.release ? release(step.release) : {}), appRelease: step.tree, stackOutputs: previous ? { [DEV]: previous } : {} });
            const stop = run.named("stop-worker");
            assert.equal(assignments(stop.inputs.create).WORKER_NAME, `medusa-dev-${step.stops}-worker`, `deploy of ${step.release ?? step.tree}`);
            assert.notDeepEqual(stop.inputs.triggers, lastTriggers, `deploy of ${step.release ?? step.tree} re-runs the handover`);
            lastTriggers = stop.inputs.triggers;
            previous = run.outputs;
        }
    });

    it("a remote host runs it over ssh, without sudo (the docker CLI is enough)", async () => {
        const run = await runProgram({ stack: "staging", config: stackConfig("staging", release("A")), appRelease: "A" });
        const stop = run.named("stop-worker");
        assert.equal(stop.type, "command:remote:Command");
        assert.match(String(stop.inputs.create), /^env NEXT_WORKER='medusa-staging-blue-worker' WORKER_DRAIN_SECONDS='?30'? WORKER_NAME='medusa-staging-green-worker' sh -c /);
    });
});

describe("host/stop-worker.sh as sent to a host", () => {
    it("stands alone as valid POSIX sh", () => {
        const text = hostScript("stop-worker");
        assert.doesNotMatch(text, /medusa-deploy:inline/);
        const parsed = spawnSync("sh", ["-n", "-c", text], { encoding: "utf8" });
        assert.equal(parsed.status, 0, parsed.stderr);
    });

    const run = (env: Record<string, string>) => {
        const command = renderHostInvocation({ script: hostScript("stop-worker"), name: "stop-worker", env, sudo: false });
        return spawnSync("/bin/sh", ["-c", command], { encoding: "utf8", env: { PATH: process.env.PATH }, timeout: 30000 });
    };

    it("refuses bad input before it asks docker anything, last line machine-readable", () => {
        const missing = run({});
        assert.equal(missing.status, 2);
        assert.match(missing.stderr, /WORKER_NAME is required/);
        assert.equal(missing.stdout.trim().split("\n").pop(), "result: unchanged worker=none");
        const badName = run({ WORKER_NAME: "bad name" });
        assert.equal(badName.status, 2);
        assert.match(badName.stderr, /WORKER_NAME 'bad name' is not a valid container name .*; nothing was stopped/);
        assert.equal(badName.stdout.trim(), "result: unchanged worker=invalid");
        const badDrain = run({ WORKER_NAME: "medusa-dev-blue-worker", WORKER_DRAIN_SECONDS: "30s" });
        assert.equal(badDrain.status, 2);
        assert.match(badDrain.stderr, /WORKER_DRAIN_SECONDS must be a whole number of seconds, got '30s'/);
        assert.equal(badDrain.stdout.trim(), "result: unchanged worker=medusa-dev-blue-worker");
    });
});
