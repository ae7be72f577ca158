// The asset handover's report parsing; host/edge-assets.sh itself runs against a real HAProxy and
// dockerd in tests/host/edgeControls.test.ts and tests/host/blueGreenDocker.test.ts.
import { strict as assert } from "node:assert";
import { parseAssetReport } from "../../components/assetHandover";

describe("parseAssetReport", () => {
    it("reads the count of chunks kept on the other colour from the last line", () => {
        assert.deepEqual(parseAssetReport("the target's server lists no files\nassets: 12 kept on blue\n"), { kept: 12 });
        assert.deepEqual(parseAssetReport("assets: 0 kept on green"), { kept: 0 });
    });

    it("reads why the map was left as it was", () => {
        assert.deepEqual(parseAssetReport("assets: unchanged (cannot reach the edge: refused; the asset map is as it was)\n"), { unchanged: "cannot reach the edge: refused; the asset map is as it was" });
    });

    it("refuses output that is not a report, quoting the last line", () => {
        assert.throws(() => parseAssetReport("assets: 3 kept on\n"), /edge-assets did not report \(last line: "assets: 3 kept on"\)/);
        assert.throws(() => parseAssetReport(""), /did not report/);
        assert.throws(() => parseAssetReport("assets: 3 kept on green\nsomething after"), /something after/, "the report is the last line only");
    });
});
