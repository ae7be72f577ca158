import { strict as assert } from "node:assert";
import { parseByteSize, renderBuildkitdToml } from "../../lib/buildkitdToml";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

describe("builder buildkitd.toml (lib/buildkitdToml.ts)", () => {
    it("reads sizes as dockerd does: binary units, case-insensitive", () => {
        assert.equal(parseByteSize("20GB"), 20 * GiB);
        assert.equal(parseByteSize("20g"), 20 * GiB);
        assert.equal(parseByteSize("20GiB"), 20 * GiB);
        assert.equal(parseByteSize("512MB"), 512 * MiB);
        assert.equal(parseByteSize("1.5k"), 1536);
        assert.equal(parseByteSize("4096"), 4096);
        assert.equal(parseByteSize(1000), 1000);
        for (const bad of ["", "GB", "20XB", "-1GB", "0", "twenty"]) {
            assert.throws(() => parseByteSize(bad), Error, bad);
        }
    });

    it("renders GC on, the total bound, and policies that drop cheap records first and cap everything", () => {
        assert.equal(
            renderBuildkitdToml({ keepStorage: "20GB" }),
            [
                "# Rendered by medusa-deploy (lib/buildkitdToml.ts). Bounds this builder's cache.",
                "[worker.oci]",
                "  gc = true",
                `  gckeepstorage = ${20 * GiB}`,
                "",
                "  # Build contexts and git checkouts are cheap to send again: drop them first.",
                "  [[worker.oci.gcpolicy]]",
                '    filters = ["type==source.local", "type==source.git.checkout"]',
                `    keepDuration = ${48 * 3600}`,
                `    keepBytes = ${512 * MiB}`,
                "",
                "  # Then anything not used for a long time.",
                "  [[worker.oci.gcpolicy]]",
                `    keepDuration = ${30 * 24 * 3600}`,
                `    keepBytes = ${20 * GiB}`,
                "",
                "  # Then least recently used records until the whole cache fits the bound.",
                "  [[worker.oci.gcpolicy]]",
                "    all = true",
                `    keepBytes = ${20 * GiB}`,
                "",
            ].join("\n"),
        );
    });

    it("keeps cache mounts out of the first policy: they make dependency changes fast", () => {
        assert.doesNotMatch(renderBuildkitdToml({ keepStorage: "20GB" }), /exec\.cachemount/);
    });

    it("never lets the cheap-records bound exceed the total bound", () => {
        assert.match(renderBuildkitdToml({ keepStorage: "100MB" }), new RegExp(`filters = .*\\n.*\\n    keepBytes = ${100 * MiB}\\n`));
        assert.throws(() => renderBuildkitdToml({ keepStorage: "1GB", reproducibleKeepStorage: "2GB" }), /must not exceed keepStorage/);
    });

    it("takes optional durations and parallelism", () => {
        const toml = renderBuildkitdToml({ keepStorage: "10GB", reproducibleKeepSeconds: 3600, unusedKeepSeconds: 86400, maxParallelism: 2 });
        assert.match(toml, /\n {2}max-parallelism = 2\n/);
        assert.match(toml, /keepDuration = 3600\n/);
        assert.match(toml, /keepDuration = 86400\n/);
        assert.throws(() => renderBuildkitdToml({ keepStorage: "10GB", maxParallelism: 0 }), /maxParallelism/);
    });

    it("renders the same text for the same settings, so the builder's config hash is stable", () => {
        assert.equal(renderBuildkitdToml({ keepStorage: "20GB" }), renderBuildkitdToml({ keepStorage: 20 * GiB }));
    });
});
