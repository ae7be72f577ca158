// tools/toolchain/versions.env must agree with what the npm packages ask the engine for and with
// the BuildKit image the dev stack names; a bump of one without the other fails here, not in a deploy.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { repoRoot } from "../support/stackFiles";

function pins(): Record<string, string> {
    const text = fs.readFileSync(path.join(repoRoot, "tools/toolchain/versions.env"), "utf8");
    return Object.fromEntries([...text.matchAll(/^([A-Z_]+)=(\S+)$/gm)].map((m) => [m[1], m[2]]));
}
const sdkVersion = (pkg: string) => (JSON.parse(fs.readFileSync(path.join(repoRoot, "node_modules", pkg, "package.json"), "utf8")) as { pulumi: { version: string } }).pulumi.version;

describe("toolchain pins", () => {
    it("the CLI is the npm launcher's version and each plugin the version its SDK asks for", () => {
        const pinned = pins();
        const launcher = (JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { devDependencies: Record<string, string> }).devDependencies.pulumi;
        assert.equal(pinned.PULUMI_VERSION, launcher);
        assert.equal(pinned.DOCKER_BUILD_PLUGIN_VERSION, sdkVersion("@pulumi/docker-build"));
        assert.equal(pinned.COMMAND_PLUGIN_VERSION, sdkVersion("@pulumi/command"));
        assert.equal(pinned.DOCKER_PLUGIN_VERSION, sdkVersion("@pulumi/docker"));
    });

    it("the dev stack's builder image is the BuildKit version the toolchain builds", () => {
        const dev = fs.readFileSync(path.join(repoRoot, "Pulumi.dev.yaml"), "utf8");
        assert.match(dev, new RegExp(`^  medusa-deploy:buildkitImage: medusa-deploy/buildkit:v${pins().BUILDKIT_VERSION.replace(/\./g, "\\.")}$`, "m"));
    });
});
