import { strict as assert } from "node:assert";
import { hostNames } from "../../lib/hostNames";
import { oneoffColour, oneoffStamp, parseExecArguments } from "../../tools/exec";

describe("npm run exec: arguments, colour and container name", () => {
    it("takes everything after -- as the command, unchanged, flags of its own included", () => {
        const args = parseExecArguments(["--stack", "prod", "--colour", "green", "--", "npx", "medusa", "user", "--email", "a b@x", "--invite"]);
        assert.equal(args.stack, "prod");
        assert.equal(args.colour, "green");
        assert.deepEqual(args.command, ["npx", "medusa", "user", "--email", "a b@x", "--invite"]);
    });

    it("refuses a missing stack, a wrong colour and an empty command, naming what is valid", () => {
        assert.throws(() => parseExecArguments(["--", "true"]), /--stack is required/);
        assert.throws(() => parseExecArguments(["--stack", "prod", "--colour", "red", "--", "true"]), /--colour must be blue or green, got "red"/);
        assert.throws(() => parseExecArguments(["--stack", "prod"]), /say what to run after --/);
        assert.throws(() => parseExecArguments(["--stack", "prod", "--"]), /say what to run after --/);
        assert.throws(() => parseExecArguments(["--stack", "prod", "--follow", "--", "true"]), /unknown or incomplete argument "--follow"/);
    });

    it("runs in the named colour, else the live one; without either it refuses", () => {
        assert.equal(oneoffColour("green", "blue", "prod"), "green");
        assert.equal(oneoffColour(undefined, "blue", "prod"), "blue");
        assert.throws(() => oneoffColour(undefined, undefined, "prod"), /stack prod has no live colour recorded .*--colour; nothing ran/);
    });

    it("names the one-off container by stack, colour and start time", () => {
        const stamp = oneoffStamp(new Date("2026-12-03T10:15:00.123Z"));
        assert.equal(stamp, "20261203T101500Z");
        assert.equal(hostNames("prod", "/var/lib/medusa-deploy/prod").oneoff("blue", stamp), "medusa-prod-blue-oneoff-20261203T101500Z");
    });
});
