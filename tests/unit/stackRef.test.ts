// Stack names in config (lib/stackRef.ts): short forms take this stack's organization and project.
import { strict as assert } from "node:assert";
import { fullStackName, parseStackRef } from "../../lib/stackRef";

describe("stack references", () => {
    const own = { organization: "acme", project: "medusa-deploy" };

    it("fills in the organization and project a short form leaves out", () => {
        assert.equal(fullStackName("staging", own), "acme/medusa-deploy/staging");
        assert.equal(fullStackName("shop-infra/staging", own), "acme/shop-infra/staging");
        assert.equal(fullStackName("other-org/medusa-deploy/staging", own), "other-org/medusa-deploy/staging");
        assert.equal(fullStackName("staging", { organization: "organization", project: "medusa-deploy" }), "organization/medusa-deploy/staging");
    });

    it("refuses what is not one to three names", () => {
        for (const bad of ["", "a/b/c/d", "my staging", "staging/", "/staging", "org//staging", "stag!ng"]) {
            assert.equal(parseStackRef(bad), undefined, bad);
            assert.throws(() => fullStackName(bad, own), /is not a stack name: use stack, project\/stack or org\/project\/stack/);
        }
    });
});
