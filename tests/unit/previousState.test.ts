import { strict as assert } from "node:assert";
import { MalformedStateError, parsePreviousState } from "../../lib/previousState";

const image = `registry.example.com/shop/medusa@sha256:${"c".repeat(64)}`;

describe("previous state from stack outputs", () => {
    it("no outputs means first deploy", () => {
        assert.equal(parsePreviousState("dev", undefined), undefined);
        assert.equal(parsePreviousState("dev", {}), undefined);
        assert.equal(parsePreviousState("dev", { url: "http://127.0.0.1:8080" }), undefined);
    });

    it("keeps where a colour's image came from", () => {
        const state = parsePreviousState("prod", { live: "blue", blue: { release: "A", image, source: "organization/medusa-deploy/staging (A)" } });
        assert.equal(state?.colours.blue?.source, "organization/medusa-deploy/staging (A)");
    });

    it("reads the live colour and each colour's release and image", () => {
        const state = parsePreviousState("dev", { live: "green", blue: { release: "A", image }, green: { release: "B", image }, url: "x" });
        assert.deepEqual(state, { live: "green", colours: { blue: { release: "A", image }, green: { release: "B", image } } });
    });

    const malformed: Array<[string, Record<string, unknown>, RegExp]> = [
        ["live is not a colour", { live: "purple", blue: { release: "A", image } }, /output "live" must be "blue" or "green", got "purple"/],
        ["colours without live", { blue: { release: "A", image } }, /output "live" must be "blue" or "green", got undefined/],
        ["live colour has no release", { live: "green", blue: { release: "A", image } }, /says green is live but records no release for green/],
        ["colour is not an object", { live: "blue", blue: "A" }, /output "blue" must be an object \{release, image\}/],
        ["release missing", { live: "blue", blue: { image } }, /output "blue"\.release must be a non-empty string/],
        ["source not a string", { live: "blue", blue: { release: "A", image, source: 7 } }, /output "blue"\.source must be a string/],
        ["image not pinned by digest", { live: "blue", blue: { release: "A", image: "registry/app:A" } }, /output "blue"\.image must be an image pinned by digest/],
    ];
    for (const [name, outputs, message] of malformed) {
        it(`malformed: ${name} is an error, not a first deploy`, () => {
            assert.throws(() => parsePreviousState("prod", outputs), (e: unknown) => e instanceof MalformedStateError && message.test(e.message) && /stack "prod"/.test(e.message));
        });
    }
});
