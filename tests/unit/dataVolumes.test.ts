// Protected data volumes stay declared after their service leaves the stack (lib/dataVolumes.ts and
// the program under mocks): otherwise the engine refuses to delete them at the end of `up`, after
// traffic has moved, and the shop's data would hang on a failed deploy.
import { strict as assert } from "node:assert";
import { keptVolumeNotice, parseRecordedVolumes, planDataVolumes, recordedVolumes } from "../../lib/dataVolumes";
import { RawConfig } from "../../lib/deployConfig";
import { runProgram } from "../support/pulumiProgram";
import { plainSetting, stackConfig } from "./testStacks";

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const STAGING = "organization/medusa-deploy/staging";

const stagingConfig = (overrides: RawConfig = {}): RawConfig => stackConfig("staging", { release: plainSetting("B"), ...overrides });
/** Staging on an external database (postgresImage stays: its pg_dump backs the database up). */
const externalDatabaseConfig = (url: string): RawConfig => stagingConfig({ databaseUrl: { value: url, secret: true } });

describe("data volumes (pure)", () => {
    it("reads the recorded list, none on older deploys, and refuses anything else naming the output", () => {
        assert.deepEqual([...parseRecordedVolumes("s", undefined)], []);
        assert.deepEqual([...parseRecordedVolumes("s", ["postgres-data", "redis-data"])], ["postgres-data", "redis-data"]);
        assert.throws(() => parseRecordedVolumes("s", "postgres-data"), /stack "s" output "dataVolumes" must be a list of postgres-data, redis-data, registry-data/);
        assert.throws(() => parseRecordedVolumes("s", ["postgres-data", "uploads"]), /output "dataVolumes"/);
    });

    it("keeps every recorded volume, in use or not, and records them again", () => {
        const plan = planDataVolumes(["redis-data"], new Set(["postgres-data", "redis-data"]));
        assert.deepEqual([...plan.keptOnly], ["postgres-data"]);
        assert.deepEqual(recordedVolumes(plan), ["postgres-data", "redis-data"]);
        assert.deepEqual(recordedVolumes(planDataVolumes(["postgres-data"], new Set())), ["postgres-data"]);
        assert.match(keptVolumeNotice("postgres-data", "medusa-staging-postgres-data"), /is no longer used by this stack but is kept, protected.*pulumi state unprotect.*docker volume rm medusa-staging-postgres-data/);
    });
});

describe("data volumes under Pulumi mocks", function () {
    this.timeout(30000);
    const previous = (volumes?: string[]) => ({
        live: "blue",
        blue: { release: "A", image: `registry.example.com/shop/medusa:A@${digest("a")}` },
        ...(volumes ? { dataVolumes: volumes } : {}),
    });

    it("a deploy records the volumes it declares", async () => {
        const run = await runProgram({ stack: "staging", config: stagingConfig(), appRelease: "B", stackOutputs: { [STAGING]: previous() } });
        assert.deepEqual(run.outputs.dataVolumes, ["postgres-data", "redis-data"]);
    });

    it("switching to an external databaseUrl keeps the Postgres volume declared and protected, without its container", async () => {
        const config = externalDatabaseConfig("postgres://shop:Vq8rT2mZx4Lp9sKd@db.internal:5432/shop");
        delete config.postgresPassword;
        const run = await runProgram({ stack: "staging", config, appRelease: "B", stackOutputs: { [STAGING]: previous(["postgres-data", "redis-data"]) } });
        const volume = run.named("postgres-data");
        assert.equal(volume.opts.protect, true);
        assert.equal(volume.opts.retainOnDelete, true);
        assert.equal(run.resources.some((r) => r.name === "postgres"), false, "no Postgres container any more");
        assert.deepEqual(run.outputs.dataVolumes, ["postgres-data", "redis-data"], "still recorded for the next deploy");
    });

    it("a stack that never ran Postgres here declares no Postgres volume", async () => {
        const config = externalDatabaseConfig("postgres://shop:Vq8rT2mZx4Lp9sKd@db.internal:5432/shop");
        delete config.postgresPassword;
        const run = await runProgram({ stack: "staging", config, appRelease: "B", stackOutputs: { [STAGING]: previous(["redis-data"]) } });
        assert.equal(run.resources.some((r) => r.name === "postgres-data"), false);
        assert.deepEqual(run.outputs.dataVolumes, ["redis-data"]);
    });
});
