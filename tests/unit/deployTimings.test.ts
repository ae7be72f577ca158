import { strict as assert } from "node:assert";
import { deployTimings, describeTimings, phaseOf, StepEvent } from "../../lib/deployTimings";

const urn = (type: string, name: string) => `urn:pulumi:staging::medusa-deploy::medusa-deploy:index:BlueGreen$${type}::${name}`;
const step = (type: string, name: string, op: string, kind: StepEvent["kind"], at: number): StepEvent => ({ urn: urn(type, name), type, op, kind, at });

describe("deploy timings", () => {
    it("puts each of the program's release steps in its phase and nothing else", () => {
        assert.equal(phaseOf("docker-build:index:Image", urn("docker-build:index:Image", "app")), "build+push");
        assert.equal(phaseOf("docker:index/remoteImage:RemoteImage", urn("docker:index/remoteImage:RemoteImage", "green-image")), "pull");
        assert.equal(phaseOf("docker:index/remoteImage:RemoteImage", urn("docker:index/remoteImage:RemoteImage", "postgres-image")), undefined);
        assert.equal(phaseOf("command:local:Command", urn("command:local:Command", "green-migration")), "migrate");
        assert.equal(phaseOf("command:remote:Command", urn("command:remote:Command", "green-backup")), "backup");
        assert.equal(phaseOf("command:local:Command", urn("command:local:Command", "blue-backup-retention")), "backup");
        assert.equal(phaseOf("command:remote:Command", urn("command:remote:Command", "blue-health-gate")), "healthy");
        assert.equal(phaseOf("docker:index/container:Container", urn("docker:index/container:Container", "green-server")), "start");
        assert.equal(phaseOf("docker:index/container:Container", urn("docker:index/container:Container", "postgres")), undefined);
        assert.equal(phaseOf("command:local:Command", urn("command:local:Command", "traffic-switch")), "switch+verify");
        assert.equal(phaseOf("command:remote:Command", urn("command:remote:Command", "edge-assets")), "switch+verify");
        assert.equal(phaseOf("command:local:Command", urn("command:local:Command", "stop-worker")), "worker");
    });

    it("measures each phase as the union of its steps, skips unchanged steps, and spans the total", () => {
        const pull = "docker:index/remoteImage:RemoteImage";
        const timings = deployTimings([
            step("docker-build:index:Image", "base", "create", "start", 0),
            step("docker-build:index:Image", "app", "create", "start", 100),
            step("docker-build:index:Image", "base", "create", "end", 4000),
            step("docker-build:index:Image", "app", "create", "end", 9000),
            step("docker:index/container:Container", "postgres", "same", "start", 9000),
            step("docker:index/container:Container", "postgres", "same", "end", 99999),
            step(pull, "green-image", "create", "start", 9100),
            step(pull, "green-image", "create", "end", 9600),
            step("command:local:Command", "green-migration", "create", "start", 9700),
            step("command:local:Command", "green-migration", "create", "failed", 12700),
        ]);
        assert.deepEqual(timings.phases, { "build+push": 9000, pull: 500, migrate: 3000 });
        assert.equal(timings.totalMs, 12700);
        assert.equal(describeTimings(timings), "build+push 9.0s · pull 0.5s · migrate 3.0s · total 12.7s");
    });

    it("says nothing about a phase with no step and gives a zero total for a deploy that changed nothing", () => {
        assert.deepEqual(deployTimings([]), { phases: {}, totalMs: 0 });
    });
});
