// A settings change that would replace the edge, Postgres or Redis container (the provider deletes
// the running one first: the shop is down meanwhile) is refused unless the operator allows it for
// that run; the preview fails with the same message (lib/serviceRestarts.ts and the program).
import { strict as assert } from "node:assert";
import { requiredSettingValue } from "./fixtureSecrets";
import { RawConfig } from "../../lib/deployConfig";
import { parseAllowedRestarts, parseRecordedServices, refuseUnannouncedRestarts, restartsOf } from "../../lib/serviceRestarts";
import { runProgram } from "../support/pulumiProgram";
import { thrownBy } from "../support/thrown";
import { plainSetting, stackConfig } from "./testStacks";

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const STAGING = "organization/medusa-deploy/staging";

const stagingConfig = (overrides: RawConfig = {}): RawConfig => stackConfig("staging", { release: plainSetting("B"), ...overrides });

describe("service restarts (pure)", () => {
    const before = { edge: "edgeImage=haproxy:2.8 edgeAddress=0.0.0.0 edgePort=80 hostStateDir=/var/lib/m/edge", postgres: "postgresImage=postgres:16" };

    it("finds the services whose container settings changed, and what changed", () => {
        assert.deepEqual(restartsOf(before, before), []);
        assert.deepEqual(restartsOf(before, { ...before, edge: before.edge.replace("haproxy:2.8", "haproxy:2.9") }), [{ service: "edge", changes: ["edgeImage haproxy:2.8 → haproxy:2.9"] }]);
        assert.deepEqual(restartsOf(before, { edge: before.edge }), [], "a service that leaves (external) is not restarted");
        assert.deepEqual(restartsOf({}, before), [], "nothing recorded (first deploy, older state): nothing to compare");
    });

    it("refuses a restart nobody asked for, naming the service, the change, the impact and the opt-in", () => {
        const restarts = restartsOf(before, { ...before, postgres: "postgresImage=postgres:17" });
        const message = String((thrownBy(() => refuseUnannouncedRestarts(restarts, new Set())) as Error | undefined)?.message);
        assert.match(message, /would restart postgres, which interrupts the shop/);
        assert.match(message, /postgres: postgresImage postgres:16 → postgres:17: its container is replaced, and the running one is deleted first: every colour loses its database/);
        assert.match(message, /Nothing was changed\. .*MEDUSA_DEPLOY_ALLOW_RESTART=postgres/);
        refuseUnannouncedRestarts(restarts, new Set(["postgres"]));
        refuseUnannouncedRestarts(restarts, parseAllowedRestarts("all"));
    });

    it("reads the opt-in and the recorded output strictly", () => {
        assert.deepEqual([...parseAllowedRestarts("edge, redis")], ["edge", "redis"]);
        assert.deepEqual([...parseAllowedRestarts(undefined)], []);
        assert.throws(() => parseAllowedRestarts("edge,nginx"), /MEDUSA_DEPLOY_ALLOW_RESTART names nginx: use a comma-separated list of edge, postgres, redis, or all/);
        assert.throws(() => parseRecordedServices("s", { edge: 3 }), /stack "s" output "services" must map edge, postgres, redis to strings/);
        assert.deepEqual(parseRecordedServices("s", undefined), {});
    });
});

describe("service restarts under Pulumi mocks", function () {
    this.timeout(30000);

    async function deployAfter(overrides: RawConfig, allowRestart?: string) {
        const first = await runProgram({ stack: "staging", config: stagingConfig({ release: { value: "A", secret: false } }), appRelease: "A" });
        const previous = { live: "blue", blue: { release: "A", image: `registry.example.com/shop/medusa:A@${digest("a")}` }, services: first.outputs.services };
        return runProgram({ stack: "staging", config: stagingConfig(overrides), appRelease: "B", stackOutputs: { [STAGING]: previous }, allowRestart });
    }

    it("a deploy records the settings of each service's container", async () => {
        const run = await runProgram({ stack: "staging", config: stagingConfig(), appRelease: "B" });
        const services = run.outputs.services as Record<string, string>;
        assert.deepEqual(Object.keys(services).sort(), ["edge", "postgres", "redis"]);
        assert.match(services.edge, /edgeImage=haproxy:2\.8@sha256:[0-9a-f]{64} /);
        assert.match(services.edge, / edgeUser=70002:70002 edgeSandbox=non-root,read-only-config$/);
        assert.equal(services.redis, `redisImage=${requiredSettingValue("redisImage")} redisAuth=password-file`);
    });

    it("a release with unchanged service settings deploys", async () => {
        const run = await deployAfter({});
        assert.ok(run.resources.length > 10);
    });

    it("a new edge image is refused before any resource, and goes through when allowed for the run", async () => {
        const next = `haproxy:2.9@sha256:${"9".repeat(64)}`;
        await assert.rejects(deployAfter({ edgeImage: { value: next, secret: false } }), /would restart edge.*\n.*edgeImage haproxy:2\.8@sha256:[0-9a-f]{64} → haproxy:2\.9@sha256:9{64}.*shop answers no request/);
        const allowed = await deployAfter({ edgeImage: { value: next, secret: false } }, "edge");
        assert.equal(allowed.named("edge-image").inputs.name, next);
    });

    it("a stack deployed before the edge was sandboxed and Redis had a password is asked before both restart", () => {
        const before = { edge: "edgeImage=haproxy:2.8 edgeAddress=127.0.0.1 edgePort=8080 hostStateDir=/var/lib/m/edge", redis: "redisImage=redis:7" };
        const after = { edge: `${before.edge} edgeUser=70002:70002 edgeSandbox=non-root,read-only-config`, redis: "redisImage=redis:7 redisAuth=password-file" };
        assert.deepEqual(restartsOf(before, after), [
            { service: "edge", changes: ["edgeUser (unset) → 70002:70002", "edgeSandbox (unset) → non-root,read-only-config"] },
            { service: "redis", changes: ["redisAuth (unset) → password-file"] },
        ]);
    });

    it("Postgres gets room for parallel queries' shared memory; a stack deployed before is asked before Postgres restarts for it", async () => {
        const run = await runProgram({ stack: "staging", config: stagingConfig(), appRelease: "B" });
        assert.equal(run.named("postgres", "docker:index/container:Container").inputs.shmSize, 256);
        assert.match((run.outputs.services as Record<string, string>).postgres, / postgresShm=256m$/);
        const image = requiredSettingValue("postgresImage");
        assert.deepEqual(restartsOf({ postgres: `postgresImage=${image}` }, { postgres: `postgresImage=${image} postgresShm=256m` }), [
            { service: "postgres", changes: ["postgresShm (unset) → 256m"] },
        ]);
    });
});
