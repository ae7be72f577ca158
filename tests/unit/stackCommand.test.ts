// tools/pulumi-stack.ts's arguments and where it finds the CLI (lib/stackCommand.ts).
import { strict as assert } from "node:assert";
import * as os from "node:os";
import * as path from "node:path";
import { parseStackCommand, pulumiCliRoot } from "../../lib/stackCommand";

describe("pulumi-stack arguments", () => {
    it("reads the action, the stack and the options", () => {
        assert.deepEqual(parseStackCommand(["up", "--stack", "staging", "--cwd", "infra", "--expect-no-changes", "--yes"]), {
            action: "up",
            stack: "staging",
            cwd: "infra",
            program: "index.ts",
            expectNoChanges: true,
            diff: false,
        });
        assert.equal(parseStackCommand(["destroy", "-s", "dev"]).stack, "dev");
        assert.equal(parseStackCommand(["preview", "--stack", "dev", "--program", "main.ts"]).program, "main.ts");
    });

    it("refuses an unknown action, an unknown option, a missing stack or a missing value, naming it", () => {
        assert.throws(() => parseStackCommand(["deploy", "--stack", "dev"]), /unknown action 'deploy': usage: pulumi-stack <preview\|up\|refresh\|destroy>/);
        assert.throws(() => parseStackCommand([]), /unknown action '': usage/);
        assert.throws(() => parseStackCommand(["up", "--stack", "dev", "--force"]), /unknown option '--force'/);
        assert.throws(() => parseStackCommand(["up"]), /--stack is required/);
        assert.throws(() => parseStackCommand(["up", "--stack"]), /--stack needs a value/);
        assert.throws(() => parseStackCommand(["up", "--stack", "--diff"]), /--stack needs a value/);
    });

    it("runs the CLI version the npm launcher pins, from the Pulumi home in use", () => {
        assert.equal(pulumiCliRoot({ PULUMI_HOME: "/srv/pulumi" }, "3.250.0"), "/srv/pulumi/versions/3.250.0");
        assert.equal(pulumiCliRoot({}, "3.250.0"), path.join(os.homedir(), ".pulumi", "versions", "3.250.0"));
        assert.match(pulumiCliRoot({ PULUMI_HOME: "/h" }), /^\/h\/versions\/\d+\.\d+\.\d+$/);
    });
});
