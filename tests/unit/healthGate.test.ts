// The health gate in the graph, under Pulumi mocks: each colour's server is gated by
// host/health-gate.sh (not by the docker provider's `wait`), the traffic switch waits for the gate of
// its target, a new server is gated again, a kept colour's gate never runs again, and ssh stacks run
// it on the host. The script itself runs against a real dockerd in tests/host/healthGate.test.ts.
import { strict as assert } from "node:assert";
import * as pulumi from "@pulumi/pulumi";
import { KEPT_COMMAND_INPUTS } from "../../components/colourSet";
import { contentHash, hostScript } from "../../components/hostScripts";
import { RawConfig } from "../../lib/deployConfig";
import { GATE_LOG_LINES, healthGateCommandTimeout, healthGateEnv } from "../../lib/healthGate";
import { DeclaredResource, isWrappedSecret, hostCommandStdin, runProgram, valueOf } from "../support/pulumiProgram";
import { DEV, STAGING, dependsOnNames, digest, imageA, imageB, release, stackConfig } from "./testStacks";


const setting = (key: string, value: string): RawConfig => ({ [key]: { value, secret: false } });


/** The NAME=value words before `sh -c` of a rendered host invocation. */
function assignments(create: unknown): Record<string, string> {
    const words = String(create).split(" sh -c ")[0].split(" ").filter((w) => w.includes("="));
    return Object.fromEntries(words.map((w) => [w.slice(0, w.indexOf("=")), w.slice(w.indexOf("=") + 1).replace(/^'|'$/g, "")]));
}

/** The id the engine gave a declared resource (under mocks: `<name>-id`). */
async function idOf(r: DeclaredResource): Promise<string | undefined> {
    return valueOf((r.resource as pulumi.CustomResource).id);
}

describe("the health gate under Pulumi mocks", function () {
    this.timeout(60000);

    it("first deploy: the server is not created with the provider's wait; its gate runs after it, and the switch waits for the gate and the migration", async () => {
        const run = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "A" });
        const server = run.named("blue-server");
        assert.equal(server.inputs.wait, false, "the provider's wait ends only on healthy: not the gate");
        assert.equal(server.opts.customTimeouts, undefined, "creating the server no longer waits for anything");
        assert.deepEqual(server.inputs.healthcheck !== undefined, true, "the server keeps its Docker health check: the gate reads it");

        const gate = run.named("blue-health-gate");
        assert.equal(gate.type, "command:local:Command");
        assert.match(hostCommandStdin(gate).script, /^#!\/bin\/sh\n# health-gate\.sh/, "the script's text goes on stdin");
        assert.ok(String(gate.inputs.create).length < 1500, "the command line stays short: a provider's error quotes it before the script's output");
        assert.doesNotMatch(String(gate.inputs.create), /^sudo/, "the docker CLI is enough");
        assert.deepEqual(assignments(gate.inputs.create), {
            GATE_CONTAINER: "medusa-dev-blue-server",
            GATE_CONTAINER_ID: "blue-server-id",
            GATE_LOG_LINES: String(GATE_LOG_LINES),
            GATE_SECRET_KEYS: "",
            GATE_TIMEOUT: "300",
        });
        assert.deepEqual(await dependsOnNames(gate), ["blue-server"]);
        assert.deepEqual(gate.opts.ignoreChanges, [], "the colour being deployed is gated whatever changed");
        assert.deepEqual(gate.opts.customTimeouts, { create: "10m", update: "10m" }, "Pulumi's limit is above the script's own");

        const switchCommand = run.named("traffic-switch");
        const deps = await dependsOnNames(switchCommand);
        for (const needed of ["blue-health-gate", "blue-migration", "edge"]) assert.ok(deps.includes(needed), `switch depends on ${needed}: ${deps}`);
        assert.ok(!deps.includes("blue-server"), `the switch waits for the gate, not for the server alone: ${deps}`);
        // And so the worker (after the switch) never starts on a server that was not healthy.
        assert.deepEqual(await dependsOnNames(run.named("blue-worker")), ["switch", "worker-handover"]);
    });

    it("the gate's triggers hold the server's id: a replaced server is gated again", async () => {
        const run = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "A" });
        const gate = run.named("blue-health-gate");
        const triggers = gate.inputs.triggers as unknown[];
        assert.equal(triggers[0], contentHash(hostScript("health-gate")), "the script's text first, as for every host script");
        assert.deepEqual(triggers.slice(1), [await idOf(run.named("blue-server"))]);
        assert.equal(gate.inputs.addPreviousOutputInEnv, false);
    });

    it("the server's secrets reach the gate on stdin only, as a secret, for masking", async () => {
        const config = stackConfig("dev");
        const run = await runProgram({ stack: "dev", config, appRelease: "A" });
        const gate = run.named("blue-health-gate");
        assert.ok(isWrappedSecret(gate.inputs.stdin), "stdin is a secret");
        const stdin = hostCommandStdin(gate).data;
        assert.match(stdin, /^DATABASE_URL=/m);
        assert.match(stdin, /^JWT_SECRET=/m);
        assert.equal(stdin, hostCommandStdin(run.named("blue-migration")).data, "the same env lines as the migration's");
        const secrets = Object.values(config).filter((s) => s.secret).map((s) => s.value);
        for (const secret of secrets) assert.ok(!String(gate.inputs.create).includes(secret), "no secret on the command line");
    });

    it("a new release: the idle colour's new server is gated and the switch waits for that gate; the live colour's gate is kept as it is", async () => {
        const previous = { live: "blue", blue: { release: "A", image: imageA } };
        const run = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "B", stackOutputs: { [DEV]: previous } });
        const green = run.named("green-health-gate");
        assert.equal(assignments(green.inputs.create).GATE_CONTAINER, "medusa-dev-green-server");
        assert.deepEqual((green.inputs.triggers as unknown[]).slice(1), ["green-server-id"]);
        assert.deepEqual(green.opts.ignoreChanges, []);
        const deps = await dependsOnNames(run.named("traffic-switch"));
        assert.ok(deps.includes("green-health-gate") && deps.includes("green-migration"), `${deps}`);
        assert.ok(!deps.includes("blue-health-gate"), "the live colour's gate is not what the switch waits for");
        assert.deepEqual(run.named("blue-health-gate").opts.ignoreChanges, KEPT_COMMAND_INPUTS, "the live colour's gate never runs again");
        assert.deepEqual(run.named("blue-migration").opts.ignoreChanges, KEPT_COMMAND_INPUTS);
    });

    it("unchanged: a kept colour's gate is declared exactly as the deploy that made it live left it, and its settings are ignored", async () => {
        const first = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "A" });
        const deploy = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "B", stackOutputs: { [DEV]: first.outputs } });
        const again = await runProgram({ stack: "dev", config: stackConfig("dev"), appRelease: "B", stackOutputs: { [DEV]: deploy.outputs } });
        assert.equal(again.outputs.live, "green");
        for (const colour of ["green", "blue"]) {
            const before = (colour === "green" ? deploy : first).named(`${colour}-health-gate`);
            const now = again.named(`${colour}-health-gate`);
            assert.equal(now.inputs.create, before.inputs.create, `${colour}: same create`);
            assert.deepEqual(now.inputs.triggers, before.inputs.triggers, `${colour}: same triggers (same server id)`);
            assert.deepEqual(now.opts.ignoreChanges, KEPT_COMMAND_INPUTS, `${colour}: nothing of it is compared`);
        }
        // A new timeout (or script text, or secret) on an unchanged deploy changes create/stdin/triggers,
        // which a kept colour ignores: the live colour is not gated again.
        const tuned = await runProgram({ stack: "dev", config: stackConfig("dev", setting("healthTimeoutSeconds", "120")), appRelease: "B", stackOutputs: { [DEV]: deploy.outputs } });
        const gate = tuned.named("green-health-gate");
        assert.equal(assignments(gate.inputs.create).GATE_TIMEOUT, "120");
        for (const input of ["create", "stdin", "triggers"]) assert.ok((gate.opts.ignoreChanges ?? []).includes(input), `${input} is ignored on a kept colour`);
        assert.deepEqual(tuned.named("green-server").opts.ignoreChanges?.includes("wait"), true, "nor is the server's wait compared");
    });

    it("switch back: traffic moves to the kept idle colour after its gate (not run again) and its migration", async () => {
        const previous = { live: "green", blue: { release: "A", image: imageA }, green: { release: "B", image: imageB } };
        const run = await runProgram({ stack: "dev", config: stackConfig("dev", release("A")), appRelease: "B", stackOutputs: { [DEV]: previous } });
        const deps = await dependsOnNames(run.named("traffic-switch"));
        assert.ok(deps.includes("blue-health-gate") && deps.includes("blue-migration"), `${deps}`);
        assert.deepEqual(run.named("blue-health-gate").opts.ignoreChanges, KEPT_COMMAND_INPUTS);
        assert.deepEqual(run.named("green-health-gate").opts.ignoreChanges, KEPT_COMMAND_INPUTS);
    });

    it("the gate waits as long as the stack's healthTimeoutSeconds", async () => {
        const run = await runProgram({ stack: "dev", config: stackConfig("dev", setting("healthTimeoutSeconds", "1200")), appRelease: "A" });
        const gate = run.named("blue-health-gate");
        assert.equal(assignments(gate.inputs.create).GATE_TIMEOUT, "1200");
        assert.deepEqual(gate.opts.customTimeouts, { create: "25m", update: "25m" });
    });

    it("an ssh stack runs the gate on the host over ssh, without sudo; prod waits 600 s", async () => {
        const staging = await runProgram({ stack: "staging", config: stackConfig("staging", release("A")), appRelease: "A" });
        const gate = staging.named("blue-health-gate");
        assert.equal(gate.type, "command:remote:Command");
        assert.match(String(gate.inputs.create), /^env GATE_CONTAINER='medusa-staging-blue-server' GATE_CONTAINER_ID='blue-server-id' GATE_LOG_LINES='?40'? GATE_SECRET_KEYS='' GATE_TIMEOUT='?300'? sh -c /);
        assert.ok(isWrappedSecret(gate.inputs.connection), "the ssh connection (with the private key) is a secret");
        assert.ok(isWrappedSecret(gate.inputs.stdin));
        assert.ok((await dependsOnNames(staging.named("traffic-switch"))).includes("blue-health-gate"));

        const stagingOutputs = { live: "blue", blue: { release: "A", image: `registry.example.com/shop/medusa:A@${digest("a")}` } };
        const prod = await runProgram({ stack: "prod", config: stackConfig("prod"), stackOutputs: { [STAGING]: stagingOutputs } });
        const prodGate = prod.named("blue-health-gate");
        assert.equal(prodGate.type, "command:remote:Command");
        assert.equal(assignments(prodGate.inputs.create).GATE_TIMEOUT, "600");
        assert.deepEqual(prodGate.opts.customTimeouts, { create: "15m", update: "15m" });
    });
});

describe("the health gate's inputs", () => {
    it("are the container, the timeout and the log lines, validated", () => {
        assert.deepEqual(healthGateEnv({ container: "medusa-prod-green-server", timeoutSeconds: 600 }), {
            GATE_CONTAINER: "medusa-prod-green-server",
            GATE_TIMEOUT: "600",
            GATE_LOG_LINES: "40",
        });
        assert.throws(() => healthGateEnv({ container: "bad name", timeoutSeconds: 60 }), /health gate: container "bad name" is invalid/);
        assert.throws(() => healthGateEnv({ container: "x", timeoutSeconds: 0 }), /timeoutSeconds 0 is invalid: expected a whole number of seconds from 1 to 86400/);
        assert.throws(() => healthGateEnv({ container: "x", timeoutSeconds: 1.5 }), /timeoutSeconds 1.5 is invalid/);
        assert.throws(() => healthGateEnv({ container: "x", timeoutSeconds: 60, logLines: 0 }), /logLines 0 is invalid/);
    });

    it("Pulumi's limit is the script's timeout plus a margin, in whole minutes", () => {
        assert.equal(healthGateCommandTimeout(300), "10m");
        assert.equal(healthGateCommandTimeout(30), "6m");
        assert.equal(healthGateCommandTimeout(3600), "65m");
    });
});
